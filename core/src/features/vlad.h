// VLAD aggregation (Jégou et al. 2010) of an image's RootSIFT descriptors
// into a few fixed-size global vectors, one per region of the image: the
// compact descriptors of the global tier, which shortlists candidate
// references without storing every local descriptor.
//
// Each descriptor is reduced by PCA to kVladReducedDim dimensions and
// assigned to the nearest of kVladWords visual words; a region's vector is
// the sum of its descriptors' residuals per word, signed-square-rooted,
// normalised per word and then as a whole (unit length, so squared L2
// distance = 2 - 2 cos). The PCA and words are learnt from an index's own
// references (Train).
//
// Regions (fractions of the image the features came from):
//   0      the whole image
//   1..4   a 2x2 grid of windows 2/3 the width and height, half overlapping
//   5..13  a 3x3 grid of windows 1/2 the width and height, half overlapping
//   14..38 a 5x5 grid of windows 1/3 the width and height, half overlapping
// References store regions 0..4, whose windows still hold most of a crop down
// to a third of the picture; queries search all 39, whose smaller windows
// isolate a reference shown as a collage cell or inside a screenshot; the
// 1/3 windows frame one cell of a seller's 3x3 grid of listings exactly and
// one of a 4x4 grid with little else.
//
// Thread safety: a trained codebook is immutable; Describe may be called
// from many threads.
#ifndef SPOOR_FEATURES_VLAD_H_
#define SPOOR_FEATURES_VLAD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/local_features.h"

namespace faiss {
struct IndexPreTransform;
}

namespace spoor {

inline constexpr int kVladWords = 16;
inline constexpr int kVladReducedDim = 64;
inline constexpr int kGlobalDim = kVladWords * kVladReducedDim;
// Bumped whenever the global vectors change meaning; see kDescriptorVersion.
inline constexpr int kGlobalVersion = 1;
inline constexpr int kQueryRegions = 39;
// Regions 0..13: the whole query and its 2x2 and 3x3 windows. The 5x5
// windows after them are searched for candidates of their own (see
// ReferenceIndex::SearchGlobal), so that their many small windows do not
// crowd out what the larger ones find.
inline constexpr int kCoarseQueryRegions = 14;
inline constexpr int kReferenceRegions = 5;
// A region with fewer keypoints gives no vector: too few to aggregate.
inline constexpr int kMinRegionKeypoints = 12;
// Fewest descriptors Train accepts (about 60 per visual word).
inline constexpr std::int64_t kMinVladTraining = 1000;

// Global vectors of one image: region numbers and their kGlobalDim floats.
struct RegionVectors {
  std::vector<int> regions;
  std::vector<float> vectors;  ///< regions.size() * kGlobalDim

  int size() const { return static_cast<int>(regions.size()); }
};

class VladCodebook {
 public:
  // Learns the PCA and visual words from n RootSIFT descriptors (floats, as
  // DescriptorsAsFloat gives). FailedPrecondition below kMinVladTraining.
  // Deterministic for the same input.
  static absl::StatusOr<std::unique_ptr<VladCodebook>> Train(std::int64_t n,
                                                             const float* x);
  // DataLoss when the file is missing, damaged or of another shape.
  static absl::StatusOr<std::unique_ptr<VladCodebook>> Read(
      const std::string& path);
  ~VladCodebook();

  // The index as FAISS writes it to a file (Read reads it back); Internal
  // if FAISS throws. ReferenceIndex::Save writes these bytes atomically.
  absl::StatusOr<std::vector<std::uint8_t>> Serialize() const;

  // Vectors of the first `regions` regions (kReferenceRegions or
  // kQueryRegions) that hold at least kMinRegionKeypoints keypoints.
  RegionVectors Describe(const LocalFeatures& features, int regions) const;

 private:
  explicit VladCodebook(std::unique_ptr<faiss::IndexPreTransform> model);

  // PCA then nearest word; the words are the inner flat index's vectors.
  std::unique_ptr<faiss::IndexPreTransform> model_;
};

}  // namespace spoor

#endif  // SPOOR_FEATURES_VLAD_H_
