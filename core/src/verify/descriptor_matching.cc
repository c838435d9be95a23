#include "verify/descriptor_matching.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <opencv2/core.hpp>

namespace spoor {
namespace {

// ---- kFloat ---------------------------------------------------------------

// The dot products come from one matrix product (cv::gemm, vectorised, on
// the calling thread only), then ||q||^2 + ||r||^2 - 2 q.r; about three times
// faster than OpenCV's brute-force matcher on 1000 x 1000, and unlike FAISS's
// k-NN it starts no OpenMP threads to compete with the other workers.
std::vector<std::int64_t> NearestByProduct(const LocalFeatures& query,
                                           const LocalFeatures& reference,
                                           float ratio2) {
  const std::size_t nq = query.keypoints.size();
  const std::size_t nr = reference.keypoints.size();
  std::vector<float> q = DescriptorsAsFloat(query);
  std::vector<float> r = DescriptorsAsFloat(reference);
  auto norm2 = [](const float* v) {
    float n = 0;
    for (int k = 0; k < kDescriptorDim; ++k) n += v[k] * v[k];
    return n;
  };
  std::vector<float> r_norm(nr);
  for (std::size_t j = 0; j < nr; ++j)
    r_norm[j] = norm2(&r[j * kDescriptorDim]);
  cv::Mat qm(static_cast<int>(nq), kDescriptorDim, CV_32F, q.data());
  cv::Mat rm(static_cast<int>(nr), kDescriptorDim, CV_32F, r.data());
  cv::Mat dot;
  cv::gemm(qm, rm, 1.0, cv::noArray(), 0.0, dot, cv::GEMM_2_T);

  std::vector<std::int64_t> ids(nq, -1);
  for (std::size_t i = 0; i < nq; ++i) {
    const float* row = dot.ptr<float>(static_cast<int>(i));
    // + ||q||^2 is the same for every j: added at the end.
    auto partial = [&](std::size_t j) { return r_norm[j] - 2 * row[j]; };
    // The two smallest values first, in kLanes independent running pairs
    // without branches, which the compiler keeps in vector registers (the
    // branchy scan that also tracked ids cost half as much as the matrix
    // product); then the pairs merged.
    constexpr std::size_t kLanes = 16;
    constexpr float kInf = std::numeric_limits<float>::max();
    std::array<float, kLanes> lo, hi;
    lo.fill(kInf);
    hi.fill(kInf);
    std::size_t j = 0;
    for (; j + kLanes <= nr; j += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        float d = partial(j + l);
        hi[l] = std::min(hi[l], std::max(lo[l], d));
        lo[l] = std::min(lo[l], d);
      }
    }
    float d0 = kInf, d1 = kInf;
    auto take = [&](float d) {
      d1 = std::min(d1, std::max(d0, d));
      d0 = std::min(d0, d);
    };
    for (std::size_t l = 0; l < kLanes; ++l) {
      take(lo[l]);
      take(hi[l]);
    }
    for (; j < nr; ++j) take(partial(j));
    const float qn = norm2(&q[i * kDescriptorDim]);
    const float nearest = std::max(0.0f, d0 + qn);
    const float second = std::max(0.0f, d1 + qn);
    // Which reference descriptor is nearest: the first at the smallest
    // value, as the scan that tracked ids found. Only the ratio test needs
    // it, and most rows fail that test, so it is looked up only for rows
    // that pass it.
    if (nearest < ratio2 * second) {
      for (std::size_t k = 0; k < nr; ++k) {
        if (partial(k) == d0) {
          ids[i] = static_cast<std::int64_t>(k);
          break;
        }
      }
    }
  }
  return ids;
}

// ---- kVnni ----------------------------------------------------------------
//
// VPDPBUSD multiplies unsigned by signed bytes, four pairs a 32-bit lane, 64
// pairs an instruction (four times as many as a float FMA). Descriptor bytes
// are unsigned (0..255), so the reference side is stored shifted by -128
// and q.r = q.(r - 128) + 128 * sum(q), exactly.

constexpr int kLanes = 16;                   // references a block
constexpr int kGroups = kDescriptorDim / 4;  // 4-byte groups a descriptor
constexpr int kBlockBytes = kLanes * kDescriptorDim;
constexpr int kRows = 4;  // query rows a tile
// Blocks a step: with kRows rows, 8 independent accumulators, enough to
// cover VPDPBUSD's latency.
constexpr int kStep = 2;
// A padding lane's squared norm: farther than any real descriptor (whose
// squared norms and products stay under 128 * 255^2 < 2^23), far from
// overflowing.
constexpr std::int32_t kPadNorm = 1 << 30;

// References in blocks of 16: block b, group g holds, for each lane, bytes
// 4g..4g+3 of reference 16b + lane, minus 128. Padded to a whole step.
struct Interleaved {
  std::vector<std::int8_t> bytes;
  std::vector<std::int32_t> norms;  // ||r||^2 a lane; kPadNorm for padding
  std::size_t blocks = 0;
};

Interleaved Interleave(const LocalFeatures& reference) {
  const std::size_t nr = reference.keypoints.size();
  constexpr std::size_t kPerStep = kLanes * kStep;
  Interleaved out;
  out.blocks = (nr + kPerStep - 1) / kPerStep * kStep;
  out.bytes.assign(out.blocks * kBlockBytes, 0);
  out.norms.assign(out.blocks * kLanes, kPadNorm);
  for (std::size_t j = 0; j < nr; ++j) {
    const std::uint8_t* v = &reference.descriptors[j * kDescriptorDim];
    std::int8_t* block = &out.bytes[(j / kLanes) * kBlockBytes];
    const std::size_t lane = j % kLanes;
    for (int g = 0; g < kGroups; ++g) {
      std::uint32_t four;  // bytes 4g..4g+3, each less 128
      std::memcpy(&four, v + g * 4, 4);
      four ^= 0x80808080u;
      std::memcpy(block + (g * kLanes + lane) * 4, &four, 4);
    }
    std::int32_t norm = 0;
    for (int d = 0; d < kDescriptorDim; ++d) norm += v[d] * v[d];
    out.norms[j] = norm;
  }
  return out;
}

// The two smallest values of ||r||^2 - 2 q.r over all references, and the
// first reference at the smallest, for one query row.
struct Nearest {
  std::int32_t d0, d1;
  std::int64_t at;
};

// One row's running pair of smallest values a lane, and where the smallest
// was seen.
struct Running {
  __m512i lo, hi, at;
};

// Offers a block's values `d` (references `ids`) to `run`. The masked forms
// with every lane set: GCC 12 warns that the plain ones' undefined source
// may be used uninitialised.
__attribute__((target("avx512f"), always_inline)) inline void Offer(
    Running& run, __m512i d, __m512i ids) {
  constexpr __mmask16 kAll = 0xFFFF;
  // Strictly smaller: a lane keeps the first of equal values.
  const __mmask16 closer = _mm512_cmplt_epi32_mask(d, run.lo);
  const __m512i far = _mm512_mask_max_epi32(d, kAll, run.lo, d);
  run.hi = _mm512_mask_min_epi32(far, kAll, run.hi, far);
  run.lo = _mm512_mask_min_epi32(d, kAll, run.lo, d);
  run.at = _mm512_mask_mov_epi32(run.at, closer, ids);
}

__attribute__((target("avx512f,avx512vnni"))) void NearestTwoVnni(
    const std::uint8_t* rows, const Interleaved& r,
    std::array<Nearest, kRows>& out) {
  std::array<std::int32_t, kRows> shift;  // 128 * sum(q), a row
  for (int k = 0; k < kRows; ++k) {
    std::int32_t sum = 0;
    for (int d = 0; d < kDescriptorDim; ++d)
      sum += rows[k * kDescriptorDim + d];
    shift[k] = 128 * sum;
  }
  const __m512i lane =
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i inf = _mm512_set1_epi32(std::numeric_limits<int>::max());
  // Every loop over rows and blocks is unrolled, so that the accumulators
  // stay in registers.
  std::array<Running, kRows> run;
  for (Running& x : run) x = {inf, inf, _mm512_setzero_si512()};
  for (std::size_t b = 0; b < r.blocks; b += kStep) {
    const std::int8_t* block = &r.bytes[b * kBlockBytes];
    __m512i acc[kStep][kRows];
#pragma GCC unroll 8
    for (int s = 0; s < kStep; ++s)
#pragma GCC unroll 8
      for (int k = 0; k < kRows; ++k) acc[s][k] = _mm512_set1_epi32(shift[k]);
#pragma GCC unroll 2
    for (int g = 0; g < kGroups; ++g) {
      __m512i four[kRows];
#pragma GCC unroll 8
      for (int k = 0; k < kRows; ++k) {
        std::int32_t bytes;
        std::memcpy(&bytes, rows + k * kDescriptorDim + g * 4, 4);
        four[k] = _mm512_set1_epi32(bytes);
      }
#pragma GCC unroll 8
      for (int s = 0; s < kStep; ++s) {
        const __m512i refs =
            _mm512_loadu_si512(block + s * kBlockBytes + g * kLanes * 4);
#pragma GCC unroll 8
        for (int k = 0; k < kRows; ++k)
          acc[s][k] = _mm512_dpbusd_epi32(acc[s][k], four[k], refs);
      }
    }
#pragma GCC unroll 8
    for (int s = 0; s < kStep; ++s) {
      const __m512i norms = _mm512_loadu_si512(&r.norms[(b + s) * kLanes]);
      const __m512i ids = _mm512_add_epi32(
          lane, _mm512_set1_epi32(static_cast<int>((b + s) * kLanes)));
#pragma GCC unroll 8
      for (int k = 0; k < kRows; ++k)
        Offer(run[k],
              _mm512_sub_epi32(norms, _mm512_add_epi32(acc[s][k], acc[s][k])),
              ids);
    }
  }
  for (int k = 0; k < kRows; ++k) {
    alignas(64) std::array<std::int32_t, kLanes> l, h, a;
    _mm512_store_si512(l.data(), run[k].lo);
    _mm512_store_si512(h.data(), run[k].hi);
    _mm512_store_si512(a.data(), run[k].at);
    // The lane with the smallest value, the first reference among equals;
    // the second smallest is the least of every other lane's smallest and
    // every lane's second.
    int best = 0;
    for (int i = 1; i < kLanes; ++i)
      if (l[i] < l[best] || (l[i] == l[best] && a[i] < a[best])) best = i;
    std::int32_t second = std::numeric_limits<std::int32_t>::max();
    for (int i = 0; i < kLanes; ++i) {
      if (i != best) second = std::min(second, l[i]);
      second = std::min(second, h[i]);
    }
    out[k] = Nearest{l[best], second, a[best]};
  }
}

std::vector<std::int64_t> NearestByVnni(const LocalFeatures& query,
                                        const LocalFeatures& reference,
                                        float ratio2) {
  const std::size_t nq = query.keypoints.size();
  const Interleaved r = Interleave(reference);
  std::vector<std::int64_t> ids(nq, -1);
  std::array<std::uint8_t, kRows * kDescriptorDim> tail{};
  std::array<Nearest, kRows> nearest;
  for (std::size_t i = 0; i < nq; i += kRows) {
    const std::size_t n = std::min<std::size_t>(kRows, nq - i);
    const std::uint8_t* rows = &query.descriptors[i * kDescriptorDim];
    if (n < kRows) {  // the last rows, padded with zeros
      std::copy(rows, rows + n * kDescriptorDim, tail.begin());
      rows = tail.data();
    }
    NearestTwoVnni(rows, r, nearest);
    for (std::size_t k = 0; k < n; ++k) {
      const std::uint8_t* q = rows + k * kDescriptorDim;
      std::int64_t qn = 0;
      for (int d = 0; d < kDescriptorDim; ++d) qn += q[d] * q[d];
      const double d0 = static_cast<double>(nearest[k].d0 + qn);
      const double d1 = static_cast<double>(nearest[k].d1 + qn);
      if (d0 < static_cast<double>(ratio2) * d1) ids[i + k] = nearest[k].at;
    }
  }
  return ids;
}

}  // namespace

bool HasMatchKernel(MatchKernel kernel) {
  if (kernel == MatchKernel::kVnni)
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vnni");
  return true;
}

std::vector<std::int64_t> NearestPassingRatio(const LocalFeatures& query,
                                              const LocalFeatures& reference,
                                              float ratio2,
                                              MatchKernel kernel) {
  if (kernel == MatchKernel::kBest)
    kernel = HasMatchKernel(MatchKernel::kVnni) ? MatchKernel::kVnni
                                                : MatchKernel::kFloat;
  if (kernel == MatchKernel::kVnni && HasMatchKernel(kernel) &&
      reference.keypoints.size() >= 2)
    return NearestByVnni(query, reference, ratio2);
  return NearestByProduct(query, reference, ratio2);
}

}  // namespace spoor
