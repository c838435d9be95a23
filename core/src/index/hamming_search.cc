#include "index/hamming_search.h"

#include <faiss/IndexIVFSpectralHash.h>
#include <faiss/VectorTransform.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace spoor {

using idx_t = faiss::Index::idx_t;

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

// The k smallest distances kept for one query, largest first at [0].
struct Best {
  int* dist;
  idx_t* id;
  int k;
  void Offer(int d, idx_t i) {
    if (d >= dist[0]) return;
    // Insertion into a short array kept in descending order.
    int j = 0;
    while (j + 1 < k && dist[j + 1] > d) {
      dist[j] = dist[j + 1];
      id[j] = id[j + 1];
      ++j;
    }
    dist[j] = d;
    id[j] = i;
  }
};

// One list against the queries that visit it. Inlined twice: into a
// function built for the popcount instruction, where the processor has it,
// and into one built without.
__attribute__((always_inline)) inline void ScanList(
    const std::uint64_t* codes, const idx_t* list_ids, std::size_t size,
    const std::uint64_t* query_codes, Best* best, std::size_t queries) {
  for (std::size_t q = 0; q < queries; ++q) {
    const std::uint64_t qc = query_codes[q];
    Best& b = best[q];
    int worst = b.dist[0];
    for (std::size_t j = 0; j < size; ++j) {
      const int d = std::popcount(codes[j] ^ qc);
      if (d < worst) {
        b.Offer(d, list_ids[j]);
        worst = b.dist[0];
      }
    }
  }
}

__attribute__((target("popcnt"))) void ScanListPopcnt(
    const std::uint64_t* codes, const idx_t* list_ids, std::size_t size,
    const std::uint64_t* query_codes, Best* best, std::size_t queries) {
  ScanList(codes, list_ids, size, query_codes, best, queries);
}

void ScanListPortable(const std::uint64_t* codes, const idx_t* list_ids,
                      std::size_t size, const std::uint64_t* query_codes,
                      Best* best, std::size_t queries) {
  ScanList(codes, list_ids, size, query_codes, best, queries);
}

bool HasPopcnt() {
  static const bool has = __builtin_cpu_supports("popcnt");
  return has;
}

}  // namespace

bool CanSearchHamming(const faiss::IndexIVFSpectralHash& index) {
  return index.is_trained && index.nbit == kBits && index.code_size == 8 &&
         index.vt != nullptr;
}

void SearchHamming(const faiss::IndexIVFSpectralHash& index, std::int64_t n,
                   const float* x, int k, float* distances, std::int64_t* ids) {
  const idx_t nprobe =
      std::min<idx_t>(std::max<idx_t>(1, index.nprobe), index.nlist);
  std::vector<float> coarse_dist(n * nprobe);
  std::vector<idx_t> coarse(n * nprobe);
  index.quantizer->search(n, x, nprobe, coarse_dist.data(), coarse.data());
  std::vector<float> projected(n * kBits);
  index.vt->apply_noalloc(n, x, projected.data());

  // (list, query) pairs by list: each list is read once.
  std::vector<std::size_t> start(index.nlist + 1, 0);
  for (idx_t l : coarse)
    if (l >= 0) ++start[l + 1];
  for (std::size_t l = 0; l < index.nlist; ++l) start[l + 1] += start[l];
  std::vector<std::int64_t> visitors(start[index.nlist]);
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::int64_t q = 0; q < n; ++q)
      for (idx_t p = 0; p < nprobe; ++p)
        if (idx_t l = coarse[q * nprobe + p]; l >= 0) visitors[next[l]++] = q;
  }

  std::vector<int> best_dist(n * k, kBits + 1);
  std::vector<idx_t> best_id(n * k, -1);
  std::vector<Best> best(n);
  for (std::int64_t q = 0; q < n; ++q)
    best[q] = {best_dist.data() + q * k, best_id.data() + q * k, k};

  const float freq = 2.0f / index.period;
  const bool global =
      index.threshold_type == faiss::IndexIVFSpectralHash::Thresh_global;
  const bool popcnt = HasPopcnt();
  std::vector<std::uint64_t> query_codes;
  std::vector<Best> list_best;
  // The list's signatures, copied: FAISS keeps them as bytes.
  std::vector<std::uint64_t> aligned;
  for (std::size_t l = 0; l < index.nlist; ++l) {
    const std::size_t count = start[l + 1] - start[l];
    const std::size_t size = index.invlists->list_size(l);
    if (count == 0 || size == 0) continue;
    const float* thresholds =
        global ? nullptr : index.trained.data() + l * kBits;
    query_codes.resize(count);
    list_best.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::int64_t q = visitors[start[l] + i];
      query_codes[i] =
          Signature(projected.data() + q * kBits, thresholds, freq);
      list_best[i] = best[q];  // shares the query's arrays
    }
    faiss::InvertedLists::ScopedCodes codes(index.invlists, l);
    faiss::InvertedLists::ScopedIds list_ids(index.invlists, l);
    aligned.resize(size);
    std::memcpy(aligned.data(), codes.get(), size * sizeof(std::uint64_t));
    if (popcnt) {
      ScanListPopcnt(aligned.data(), list_ids.get(), size, query_codes.data(),
                     list_best.data(), count);
    } else {
      ScanListPortable(aligned.data(), list_ids.get(), size, query_codes.data(),
                       list_best.data(), count);
    }
  }

  // Ascending, as FAISS answers.
  for (std::int64_t q = 0; q < n; ++q) {
    for (int j = 0; j < k; ++j) {
      const int from = k - 1 - j;
      const bool found = best_id[q * k + from] >= 0;
      distances[q * k + j] = found ? static_cast<float>(best_dist[q * k + from])
                                   : std::numeric_limits<float>::max();
      ids[q * k + j] = found ? best_id[q * k + from] : -1;
    }
  }
}

}  // namespace spoor
