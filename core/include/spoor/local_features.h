// RootSIFT local features: keypoints and descriptors used both to find
// candidate references (descriptor voting) and to verify a match
// geometrically.
//
// Thread safety: ExtractLocalFeatures may be called from many threads.
#ifndef SPOOR_LOCAL_FEATURES_H_
#define SPOOR_LOCAL_FEATURES_H_

#include <cstdint>
#include <vector>

namespace spoor {

struct Image;

inline constexpr int kDescriptorDim = 128;
// Bumped whenever the descriptor values change (detector, normalisation,
// quantisation); an index written with another version is refused on load.
inline constexpr int kDescriptorVersion = 2;

struct FeatureOptions {
  // Most keypoints kept per image, strongest first. Default: 1000. At most
  // 4096 (the descriptor index packs the keypoint number into 12 bits).
  int max_features = 1000;
  // Images whose longest side is smaller are upscaled to this before
  // detection, so heavily downscaled copies still yield keypoints; pixels.
  // Default: 480.
  int min_side = 480;
  // Longest side of SIFT's first octave, pixels. OpenCV's SIFT doubles its
  // input before the first octave (4x the pixels); an image whose doubled
  // side would exceed this is given to SIFT shrunk so that it does not. The
  // finest scales it drops are the costliest and the first lost to
  // recompression. 1600 keeps every octave of an 800 px image (the first
  // engine's setting). Default: 800, 3.7x cheaper on an 800 px image
  // (BM_LocalFeaturesOctave, docs/BENCHMARKS.md).
  int octave_side = 800;
  // SIFT's contrast threshold: keypoints of lower contrast are discarded
  // before the strongest max_features are kept. Default: 0.04 (OpenCV's).
  double contrast_threshold = 0.04;
  // Feature floor: an image that yields fewer keypoints than this at
  // contrast_threshold (a smooth table, a studio backdrop, a small item on
  // a plain background) is lifted to this many with the strongest found at
  // a quarter of the threshold, so its faint but real structure is kept.
  // Textured photos keep exactly what the threshold gives. Both come from
  // one SIFT pass at the quarter threshold (a few percent dearer than one
  // at the threshold on a textured photo). 0: none.
  // Default: 0 (references); queries use IndexOptions.query_min_features.
  int min_features = 0;
};

struct Keypoint {
  float x = 0;      ///< column in the image the features were taken from
  float y = 0;      ///< row
  float size = 0;   ///< diameter of the keypoint's region, pixels
  float angle = 0;  ///< dominant orientation, degrees
};

// Features of one image. Descriptor i is descriptors[i * kDescriptorDim + j],
// RootSIFT quantised to bytes (value = round(rootsift * kDescriptorScale)).
struct LocalFeatures {
  int width = 0;  ///< size of the image the coordinates refer to
  int height = 0;
  std::vector<Keypoint> keypoints;
  std::vector<std::uint8_t> descriptors;

  int size() const { return static_cast<int>(keypoints.size()); }
};

inline constexpr float kDescriptorScale = 512.0f;

LocalFeatures ExtractLocalFeatures(const Image& image,
                                   const FeatureOptions& options);

// The features ExtractLocalFeatures would give for the image mirrored left to
// right, computed from `features` without a second extraction: SIFT's
// detector is symmetric, a keypoint's x becomes width - x and its angle
// 180 - angle, and the descriptor of a mirrored patch is a fixed permutation
// of the original's bins (spatial rows reversed, orientation bins negated).
// Matches a real extraction from the flipped image to within quantisation
// for the keypoints both find (tested against one).
LocalFeatures MirrorFeatures(const LocalFeatures& features);

// Descriptors as floats (RootSIFT scale), n * kDescriptorDim values.
std::vector<float> DescriptorsAsFloat(const LocalFeatures& features);

}  // namespace spoor

#endif  // SPOOR_LOCAL_FEATURES_H_
