// How many threads the numeric libraries under FAISS may use: OpenBLAS's
// pool (when OpenBLAS is the BLAS FAISS was linked with; a no-op with any
// other BLAS), and the OpenMP team a search starts. See
// index/vector_index.cc for why Spoor keeps both at one outside training.
#ifndef SPOOR_UTIL_BLAS_THREADS_H_
#define SPOOR_UTIL_BLAS_THREADS_H_

namespace spoor {

void SetBlasThreads(int threads);

// Within its scope, OpenMP regions started by the calling thread (FAISS's
// searches, adds and removals) run on that thread alone; the thread's
// previous setting comes back at the end. Other threads are unaffected.
//
// Spoor answers one query per core at a time, and the indexer describes
// images on every core while one thread inserts, so FAISS's OpenMP team
// cannot find an idle core: its extra threads wait spinning after each
// call, on the cores SIFT needs (measured on 2 cores, docs/BENCHMARKS.md,
// "Engine v2, sixth step" for searches and "eighth step" for adds).
class FaissOnThisThread {
 public:
  FaissOnThisThread();
  ~FaissOnThisThread();
  FaissOnThisThread(const FaissOnThisThread&) = delete;
  FaissOnThisThread& operator=(const FaissOnThisThread&) = delete;

 private:
  int was_;
};

}  // namespace spoor

#endif  // SPOOR_UTIL_BLAS_THREADS_H_
