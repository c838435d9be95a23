// How many threads OpenBLAS may use, when OpenBLAS is the BLAS FAISS was
// linked with; a no-op with any other BLAS. See index/vector_index.cc for
// why Spoor keeps it at one outside training.
#ifndef SPOOR_UTIL_BLAS_THREADS_H_
#define SPOOR_UTIL_BLAS_THREADS_H_

namespace spoor {

void SetBlasThreads(int threads);

}  // namespace spoor

#endif  // SPOOR_UTIL_BLAS_THREADS_H_
