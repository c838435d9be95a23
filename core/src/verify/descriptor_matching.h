// Tentative matches for verification: each query descriptor's nearest
// reference descriptor, kept when it passes Lowe's ratio test against the
// second nearest. Two kernels, which keep the same pairs but where float
// rounding moves one that sits on the ratio's edge:
//
//   kFloat  one matrix product (cv::gemm, OpenBLAS on the calling thread)
//           of the descriptors as floats, then a branch-free scan of each
//           row for its two smallest distances.
//   kVnni   AVX-512 VNNI on the bytes themselves: squared distances in
//           exact integers, the two smallest kept as they are computed, so
//           no distance matrix is written or read back. Chosen at run time
//           where the processor has it.
//
// Thread safety: pure functions.
#ifndef SPOOR_VERIFY_DESCRIPTOR_MATCHING_H_
#define SPOOR_VERIFY_DESCRIPTOR_MATCHING_H_

#include <cstdint>
#include <vector>

#include "spoor/local_features.h"

namespace spoor {

enum class MatchKernel {
  kBest,   ///< kVnni where the processor has it, else kFloat
  kFloat,  ///< any x86-64
  kVnni,   ///< AVX-512 F, BW and VNNI
};

// Whether this processor runs `kernel` (kBest and kFloat: always).
bool HasMatchKernel(MatchKernel kernel);

// For each query descriptor, the index of the nearest reference descriptor
// (the first of equals) when its squared distance is under `ratio2` times
// the second nearest's, else -1. `ratio2` is Lowe's ratio squared. kVnni
// compares exact squared distances of the bytes; kFloat the same distances
// in float, which may move a pair that sits on the ratio's edge. A kernel
// the processor lacks falls back to kFloat.
std::vector<std::int64_t> NearestPassingRatio(
    const LocalFeatures& query, const LocalFeatures& reference, float ratio2,
    MatchKernel kernel = MatchKernel::kBest);

}  // namespace spoor

#endif  // SPOOR_VERIFY_DESCRIPTOR_MATCHING_H_
