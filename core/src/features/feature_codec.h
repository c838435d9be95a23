// The compact form local features are stored in (descriptor version
// kDescriptorVersion): 6 bytes a keypoint (x and y as 16-bit fractions of the
// image's width and height, size on a logarithmic byte scale, angle in
// 1/256 turns) and 64 bytes a descriptor (RootSIFT at 4 bits a bin, two bins
// a byte): 70 bytes a feature, against 144 unpacked.
//
// Only references (and, later, sightings) are stored, so only their features
// are quantised; a query keeps its full bytes and is compared against the
// quantised ones.
#ifndef SPOOR_FEATURES_FEATURE_CODEC_H_
#define SPOOR_FEATURES_FEATURE_CODEC_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "spoor/local_features.h"

namespace spoor {

inline constexpr int kPackedKeypointBytes = 6;
inline constexpr int kPackedDescriptorBytes = kDescriptorDim / 2;
// RootSIFT values per 4-bit step; 15 steps reach 0.333, above all but a few
// in 10,000 of RootSIFT's values (the rest are clipped).
inline constexpr float kNibbleScale = 45.0f;

std::vector<std::uint8_t> PackKeypoints(const LocalFeatures& features);
std::vector<std::uint8_t> PackDescriptors(const LocalFeatures& features);

// Fills out.keypoints and out.descriptors from packed bytes; out.width and
// out.height must already hold the image size the keypoints refer to.
// DataLoss when the two blobs' sizes disagree or do not divide evenly.
absl::Status UnpackFeatures(std::span<const std::uint8_t> keypoints,
                            std::span<const std::uint8_t> descriptors,
                            LocalFeatures& out);

// Rounds `features` to exactly what packing keeps, so what is inserted into
// the indexes equals what a rebuild reads back from the database.
void QuantiseForStorage(LocalFeatures& features);

}  // namespace spoor

#endif  // SPOOR_FEATURES_FEATURE_CODEC_H_
