#include "index/hamming_search.h"

#include <faiss/IndexIVFSpectralHash.h>
#include <faiss/VectorTransform.h>
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "index/list_scan.h"

namespace spoor {

using idx_t = faiss::Index::idx_t;
static_assert(std::is_same_v<idx_t, std::int64_t>);

namespace {

constexpr int kBits = 64;

// The query's signature in one list, bit for bit as FAISS encodes
// (IndexIVFSpectralHash's binarize_with_freq): bit i is set when
// floor((x_i - c_i) * 2 / period) is odd.
std::uint64_t Signature(const float* projected, const float* thresholds,
                        float freq) {
  std::uint64_t code = 0;
  for (int i = 0; i < kBits; ++i) {
    const float c = thresholds ? thresholds[i] : 0.0f;
    const auto step =
        static_cast<std::int64_t>(std::floor((projected[i] - c) * freq));
    code |= static_cast<std::uint64_t>(step & 1) << i;
  }
  return code;
}

using Best = KBest<int>;

// A signature read where FAISS stored its bytes: any alignment, and allowed
// to alias them.
using Signature64 = std::uint64_t __attribute__((may_alias, aligned(1)));

// One list against the queries that visit it. Inlined twice: into a
// function built for the popcount instruction, where the processor has it,
// and into one built without.
__attribute__((always_inline)) inline void ScanList(
    const std::uint8_t* codes, const idx_t* list_ids, std::size_t size,
    const std::uint64_t* query_codes, Best* best, std::size_t queries) {
  // FAISS keeps the signatures as bytes: each read in place, 8 bytes.
  const auto* signatures = reinterpret_cast<const Signature64*>(codes);
  for (std::size_t q = 0; q < queries; ++q) {
    const std::uint64_t qc = query_codes[q];
    Best& b = best[q];
    int worst = b.dist[0];
    // Four a step, with one branch for the four while none beats the
    // worst kept (nearly always, once the best are found).
    std::size_t j = 0;
    for (; j + 4 <= size; j += 4) {
      const int d[4] = {std::popcount(signatures[j] ^ qc),
                        std::popcount(signatures[j + 1] ^ qc),
                        std::popcount(signatures[j + 2] ^ qc),
                        std::popcount(signatures[j + 3] ^ qc)};
      if (std::min(std::min(d[0], d[1]), std::min(d[2], d[3])) >= worst)
        continue;
      for (int i = 0; i < 4; ++i) b.Offer(d[i], list_ids[j + i]);
      worst = b.dist[0];
    }
    for (; j < size; ++j) {
      const int d = std::popcount(signatures[j] ^ qc);
      if (d < worst) {
        b.Offer(d, list_ids[j]);
        worst = b.dist[0];
      }
    }
  }
}

__attribute__((target("popcnt"))) void ScanListPopcnt(
    const std::uint8_t* codes, const idx_t* list_ids, std::size_t size,
    const std::uint64_t* query_codes, Best* best, std::size_t queries) {
  ScanList(codes, list_ids, size, query_codes, best, queries);
}

void ScanListPortable(const std::uint8_t* codes, const idx_t* list_ids,
                      std::size_t size, const std::uint64_t* query_codes,
                      Best* best, std::size_t queries) {
  ScanList(codes, list_ids, size, query_codes, best, queries);
}

// The signatures among eight whose distances are `below` the query's worst
// kept one, offered in list order; the query's new worst, in every lane.
__attribute__((target("avx512f,avx512vpopcntdq"))) __m512i OfferEight(
    Best& best, __m512i dist, __mmask8 below, const idx_t* ids) {
  alignas(64) std::int64_t d[8];
  _mm512_store_si512(d, dist);
  for (; below != 0; below &= below - 1) {
    const int i = std::countr_zero(static_cast<unsigned>(below));
    best.Offer(static_cast<int>(d[i]), ids[i]);
  }
  return _mm512_set1_epi64(best.dist[0]);
}

// Eight signatures a step with AVX-512's vector popcount: one compare tells
// whether any of the eight beats the query's worst kept distance, and only
// then (rarely, once the best are found or when a radius bounds them) are
// they offered, in list order, as the scalar scan would.
__attribute__((target("avx512f,avx512vpopcntdq"))) void ScanListAvx512(
    const std::uint8_t* codes, const idx_t* list_ids, std::size_t size,
    const std::uint64_t* query_codes, Best* best, std::size_t queries) {
  const std::size_t whole = size & ~std::size_t{7};
  const auto tail = static_cast<__mmask8>((1u << (size & 7)) - 1);
  for (std::size_t q = 0; q < queries; ++q) {
    const __m512i qc =
        _mm512_set1_epi64(static_cast<long long>(query_codes[q]));
    Best& b = best[q];
    __m512i worst = _mm512_set1_epi64(b.dist[0]);
    for (std::size_t j = 0; j < whole; j += 8) {
      const __m512i dist = _mm512_popcnt_epi64(
          _mm512_xor_si512(_mm512_loadu_si512(codes + j * 8), qc));
      if (const __mmask8 below = _mm512_cmplt_epi64_mask(dist, worst))
        worst = OfferEight(b, dist, below, list_ids + j);
    }
    if (tail != 0) {
      const __m512i dist = _mm512_popcnt_epi64(_mm512_xor_si512(
          _mm512_maskz_loadu_epi64(tail, codes + whole * 8), qc));
      if (const __mmask8 below =
              _mm512_mask_cmplt_epi64_mask(tail, dist, worst))
        OfferEight(b, dist, below, list_ids + whole);
    }
  }
}

using ScanFn = void (*)(const std::uint8_t*, const idx_t*, std::size_t,
                        const std::uint64_t*, Best*, std::size_t);

ScanFn Scanner(HammingKernel kernel) {
  if (kernel == HammingKernel::kBest) {
    kernel = HasHammingKernel(HammingKernel::kAvx512) ? HammingKernel::kAvx512
             : HasHammingKernel(HammingKernel::kPopcnt)
                 ? HammingKernel::kPopcnt
                 : HammingKernel::kPortable;
  }
  switch (kernel) {
    case HammingKernel::kAvx512:
      return ScanListAvx512;
    case HammingKernel::kPopcnt:
      return ScanListPopcnt;
    default:
      return ScanListPortable;
  }
}

}  // namespace

bool HasHammingKernel(HammingKernel kernel) {
  switch (kernel) {
    case HammingKernel::kAvx512:
      return __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512vpopcntdq");
    case HammingKernel::kPopcnt:
      return __builtin_cpu_supports("popcnt");
    default:
      return true;
  }
}

bool CanSearchHamming(const faiss::IndexIVFSpectralHash& index) {
  return index.is_trained && index.nbit == kBits && index.code_size == 8 &&
         index.vt != nullptr;
}

void SearchHamming(const faiss::IndexIVFSpectralHash& index, std::int64_t n,
                   const float* x, int k, int max_bits, float* distances,
                   std::int64_t* ids, HammingKernel kernel) {
  if (kernel != HammingKernel::kBest && !HasHammingKernel(kernel))
    kernel = HammingKernel::kBest;
  const ScanFn scan = Scanner(kernel);
  const idx_t nprobe =
      std::min<idx_t>(std::max<idx_t>(1, index.nprobe), index.nlist);
  std::vector<float> coarse_dist(n * nprobe);
  std::vector<idx_t> coarse(n * nprobe);
  index.quantizer->search(n, x, nprobe, coarse_dist.data(), coarse.data());
  std::vector<float> projected(n * kBits);
  index.vt->apply_noalloc(n, x, projected.data());

  // (list, query) pairs by list: each list is read once.
  const ListVisits by_list = GroupByList(coarse.data(), n, nprobe, index.nlist);
  const std::vector<std::size_t>& start = by_list.start;

  // A signature is kept only when it differs in at most max_bits bits: one
  // "worse" than that starts as each query's worst kept distance.
  std::vector<int> best_dist(n * k, std::clamp(max_bits, -1, kBits) + 1);
  std::vector<idx_t> best_id(n * k, -1);
  std::vector<Best> best(n);
  for (std::int64_t q = 0; q < n; ++q)
    best[q] = {best_dist.data() + q * k, best_id.data() + q * k, k};

  const float freq = 2.0f / index.period;
  const bool global =
      index.threshold_type == faiss::IndexIVFSpectralHash::Thresh_global;
  std::vector<std::uint64_t> query_codes;
  std::vector<Best> list_best;
  for (std::size_t l = 0; l < index.nlist; ++l) {
    const std::size_t count = start[l + 1] - start[l];
    const std::size_t size = index.invlists->list_size(l);
    if (count == 0 || size == 0) continue;
    const float* thresholds =
        global ? nullptr : index.trained.data() + l * kBits;
    query_codes.resize(count);
    list_best.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::int64_t q = by_list.visits[start[l] + i] / nprobe;
      query_codes[i] =
          Signature(projected.data() + q * kBits, thresholds, freq);
      list_best[i] = best[q];  // shares the query's arrays
    }
    faiss::InvertedLists::ScopedCodes codes(index.invlists, l);
    faiss::InvertedLists::ScopedIds list_ids(index.invlists, l);
    scan(codes.get(), list_ids.get(), size, query_codes.data(),
         list_best.data(), count);
  }

  WriteAscending(n, k, best_dist.data(), best_id.data(), distances, ids);
}

}  // namespace spoor
