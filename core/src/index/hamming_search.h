// Search of a Hamming-embedded FAISS index ("IVFn,PCA64,SHm") that reads
// each visited list once for all the query vectors that visit it, with the
// processor's popcount instructions: eight signatures at a time with
// AVX-512's vector popcount where the processor has it.
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

// The instructions a scan runs on: the best this processor has, or one
// named (tests compare them; spoor-bench-kernels times them).
enum class HammingKernel { kBest, kPortable, kPopcnt, kAvx512 };
bool HasHammingKernel(HammingKernel kernel);

// True when SearchHamming can answer for `index`: 64-bit signatures.
bool CanSearchHamming(const faiss::IndexIVFSpectralHash& index);

// The k nearest of n query vectors among the signatures in the index's
// nprobe nearest lists to each that differ from the query's in at most
// max_bits bits: distances (in bits, ascending) and ids, n * k each, -1 ids
// past the last found. With max_bits 64, as index.search would answer. A
// small radius is also a faster one: most signatures are then passed over
// without being offered to the k best. A kernel this processor lacks falls
// back to kBest.
void SearchHamming(const faiss::IndexIVFSpectralHash& index, std::int64_t n,
                   const float* x, int k, int max_bits, float* distances,
                   std::int64_t* ids,
                   HammingKernel kernel = HammingKernel::kBest);

}  // namespace spoor

#endif  // SPOOR_INDEX_HAMMING_SEARCH_H_
