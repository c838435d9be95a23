// Search of a Hamming-embedded FAISS index ("IVFn,PCA64,SHm") that reads
// each visited list once for all the query vectors that visit it, with the
// processor's popcount instruction.
//
// Why by hand: FAISS 1.7.3 scans list by list for each query vector in turn,
// and Debian builds it for any x86-64, so its Hamming distance is a
// software popcount. A voting query visits 16 lists for each of its ~1000
// descriptors, so many descriptors visit each list. FAISS's scan took 5-7
// times as long (spoor-bench-kernels, BM_HammingScan).
// The query signatures are the ones FAISS encodes for a batch of vectors
// (FAISS's own search projects each query alone, and the rounding can flip
// a bit), and the k smallest distances are exact; ties at the k-th may come
// in another order.
#ifndef SPOOR_INDEX_HAMMING_SEARCH_H_
#define SPOOR_INDEX_HAMMING_SEARCH_H_

#include <cstdint>

namespace faiss {
struct IndexIVFSpectralHash;
}

namespace spoor {

// True when SearchHamming can answer for `index`: 64-bit signatures.
bool CanSearchHamming(const faiss::IndexIVFSpectralHash& index);

// The k nearest of n query vectors among the signatures in the index's
// nprobe nearest lists to each: distances (in bits, ascending) and ids,
// n * k each, -1 ids past the last found. As index.search would answer.
void SearchHamming(const faiss::IndexIVFSpectralHash& index, std::int64_t n,
                   const float* x, int k, float* distances, std::int64_t* ids);

}  // namespace spoor

#endif  // SPOOR_INDEX_HAMMING_SEARCH_H_
