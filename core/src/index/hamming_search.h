// Search of a Hamming-embedded FAISS index ("IVFn,PCA64,SHm") that reads
// each visited list once for all the query vectors that visit it, with the
// processor's popcount instruction.
//
// Why by hand: FAISS 1.7.3 scans list by list for each query vector in turn,
// and Debian builds it for any x86-64, so its Hamming distance is a
// software popcount: about 4.5 ns a signature (spoor-bench-kernels,
// BM_DescriptorSearchHamming). A voting query visits 16 lists for each of
// its ~1000 descriptors, so lists are visited by many descriptors at once.
// The answers are FAISS's (the same signatures, the same k smallest
// distances; ties may come in another order).
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
