// The compact forms local features are stored in. Keypoints take 6 bytes
// (x and y as 16-bit fractions of the image's width and height, size on a
// logarithmic byte scale, angle in 1/256 turns). Descriptors are packed one
// of two ways, recorded per stored row, so rows of both are read:
//
//   packing 2  RootSIFT at 4 bits a bin, two bins a byte: 64 bytes (70 a
//              feature with the keypoint). Written by default.
//   packing 3  the first kPackedComponents principal axes of RootSIFT (a
//              fixed basis fitted on photos, descriptor_basis.inc), each at
//              4 bits over +-2.5 standard deviations: 48 bytes (54 a
//              feature). Written on request. The axes keep 98.7 % of
//              RootSIFT's variance; three re-photographed opencv-doc scenes
//              keep 96 % of their inliers (packing 2: 98 %;
//              tests/features_test.cc). 64 axes (38 bytes a feature) kept
//              93 % and cost the global tier its grid cells
//              (docs/BENCHMARKS.md).
//
// Unpacking gives 128-byte RootSIFT again, so everything downstream (voting,
// the global tier, verification) reads either packing alike. Only
// references and sightings are stored, so only their features are
// quantised; a query keeps its full bytes and is compared against them.
#ifndef SPOOR_FEATURES_FEATURE_CODEC_H_
#define SPOOR_FEATURES_FEATURE_CODEC_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "spoor/local_features.h"

namespace spoor {

inline constexpr int kPackedKeypointBytes = 6;
inline constexpr int kNibblePacking = 2;
inline constexpr int kBasisPacking = 3;
// What new rows are written with unless IndexOptions.stored_packing says
// otherwise.
inline constexpr int kStoredPacking = kNibblePacking;
// RootSIFT values per 4-bit step of packing 2; 15 steps reach 0.333, above
// all but a few in 10,000 of RootSIFT's values (the rest are clipped).
inline constexpr float kNibbleScale = 45.0f;
// Principal axes kept by packing 3.
inline constexpr int kPackedComponents = 96;

// Bytes of one descriptor in `packing`; 0 for a packing this build does not
// know.
int PackedDescriptorBytes(int packing);

std::vector<std::uint8_t> PackKeypoints(const LocalFeatures& features);
std::vector<std::uint8_t> PackDescriptors(const LocalFeatures& features,
                                          int packing = kStoredPacking);

// Fills out.keypoints and out.descriptors from packed bytes; out.width and
// out.height must already hold the image size the keypoints refer to.
// DataLoss for an unknown packing, or when the two blobs' sizes disagree or
// do not divide evenly.
absl::Status UnpackFeatures(std::span<const std::uint8_t> keypoints,
                            std::span<const std::uint8_t> descriptors,
                            int packing, LocalFeatures& out);

// Rounds `features` to exactly what packing keeps, so what is inserted into
// the indexes equals what a rebuild reads back from the database.
void QuantiseForStorage(LocalFeatures& features, int packing = kStoredPacking);

}  // namespace spoor

#endif  // SPOOR_FEATURES_FEATURE_CODEC_H_
