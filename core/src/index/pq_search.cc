#include "index/pq_search.h"

#include <faiss/IndexIVFPQ.h>

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "index/list_scan.h"

namespace spoor {

using idx_t = faiss::Index::idx_t;
static_assert(std::is_same_v<idx_t, std::int64_t>);

namespace {

constexpr std::size_t kCentroids = 256;  // 8-bit codes

}  // namespace

bool CanSearchPq(const faiss::IndexIVFPQ& index) {
  const std::size_t table = index.nlist * index.pq.M * kCentroids;
  return index.is_trained && index.by_residual &&
         index.metric_type == faiss::METRIC_L2 && index.pq.nbits == 8 &&
         index.pq.ksub == kCentroids && index.code_size == index.pq.M &&
         index.polysemous_ht == 0 && index.use_precomputed_table == 1 &&
         index.precomputed_table.size() == table;
}

void SearchPq(const faiss::IndexIVFPQ& index, std::int64_t n, const float* x,
              int k, float* distances, std::int64_t* ids) {
  const idx_t nprobe =
      std::min<idx_t>(std::max<idx_t>(1, index.nprobe), index.nlist);
  const std::size_t m_count = index.pq.M;
  const std::size_t row = m_count * kCentroids;
  std::vector<float> coarse_dist(n * nprobe);
  std::vector<idx_t> coarse(n * nprobe);
  index.quantizer->search(n, x, nprobe, coarse_dist.data(), coarse.data());
  // ||x - c - r||^2 = ||x - c||^2 + (||r||^2 + 2 <c, r>) - 2 <x, r> for the
  // residual r a code stands for: the coarse distance, a term FAISS keeps
  // for each list and sub-centroid, and one for each query and sub-centroid.
  std::vector<float> inner(n * row);
  index.pq.compute_inner_prod_tables(n, x, inner.data());
  const ListVisits by_list = GroupByList(coarse.data(), n, nprobe, index.nlist);

  std::vector<float> best_dist(n * k, std::numeric_limits<float>::max());
  std::vector<idx_t> best_id(n * k, -1);
  for (std::size_t l = 0; l < index.nlist; ++l) {
    const std::size_t size = index.invlists->list_size(l);
    if (size == 0 || by_list.start[l] == by_list.start[l + 1]) continue;
    faiss::InvertedLists::ScopedCodes codes(index.invlists, l);
    faiss::InvertedLists::ScopedIds list_ids(index.invlists, l);
    const float* list_terms = index.precomputed_table.data() + l * row;
    for (std::size_t v = by_list.start[l]; v < by_list.start[l + 1]; ++v) {
      const std::int64_t at = by_list.visits[v];
      const std::int64_t q = at / nprobe;
      const float* query_terms = inner.data() + q * row;
      KBest<float> best{best_dist.data() + q * k, best_id.data() + q * k, k};
      const float coarse_term = coarse_dist[at];
      for (std::size_t j = 0; j < size; ++j) {
        const std::uint8_t* code = codes.get() + j * m_count;
        float d = coarse_term;
        for (std::size_t m = 0; m < m_count; ++m) {
          const std::size_t c = m * kCentroids + code[m];
          d += list_terms[c] - 2.0f * query_terms[c];
        }
        best.Offer(d, list_ids.get()[j]);
      }
    }
  }
  WriteAscending(n, k, best_dist.data(), best_id.data(), distances, ids);
}

}  // namespace spoor
