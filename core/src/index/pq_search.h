// Search of a product-quantised IVF index (the global tier's "IVFn,PQm":
// residuals to the coarse centroid, 8-bit codes, L2) that reads each visited
// list once for all the query vectors that visit it.
//
// Why by hand: FAISS 1.7.3 builds a table of M * 256 distances for every
// (query vector, list) pair before scanning the list, in portable code,
// and Debian builds it for any x86-64, while a global-tier list holds a few
// dozen codes at 10k references. Without those tables a query's search at
// 10,103 references took 23.2 ms instead of 30.2 (one thread), and
// BM_PqScan 7.4 ms instead of 14.6. Here each code's distance is summed from
// the two tables FAISS already keeps apart (the list's precomputed terms,
// and the query's inner products with the PQ centroids, from one BLAS
// product for all the query vectors), and no per-pair table is built.
#ifndef SPOOR_INDEX_PQ_SEARCH_H_
#define SPOOR_INDEX_PQ_SEARCH_H_

#include <cstdint>

namespace faiss {
struct IndexIVFPQ;
}

namespace spoor {

// True when SearchPq can answer for `index`: trained, L2 on residuals,
// 8-bit codes, with FAISS's precomputed per-list table (as FAISS keeps it
// after training or reading an index of this size).
bool CanSearchPq(const faiss::IndexIVFPQ& index);

// The k nearest of n query vectors among the codes in the index's nprobe
// nearest lists to each: squared L2 distances (ascending) and ids, n * k
// each, -1 ids past the last found. As index.search would answer, up to
// the rounding of the sums (ties may come in another order).
void SearchPq(const faiss::IndexIVFPQ& index, std::int64_t n, const float* x,
              int k, float* distances, std::int64_t* ids);

}  // namespace spoor

#endif  // SPOOR_INDEX_PQ_SEARCH_H_
