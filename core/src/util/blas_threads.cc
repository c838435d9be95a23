#include "util/blas_threads.h"

#include <dlfcn.h>
#include <omp.h>

namespace spoor {

void SetBlasThreads(int threads) {
  // Looked up at run time: Debian's FAISS links libblas.so.3, which is
  // OpenBLAS or another implementation depending on the system's choice.
  using SetThreads = void (*)(int);
  static auto* set = reinterpret_cast<SetThreads>(
      dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set) set(threads);
}

FaissOnThisThread::FaissOnThisThread() : was_(omp_get_max_threads()) {
  omp_set_num_threads(1);
}

FaissOnThisThread::~FaissOnThisThread() { omp_set_num_threads(was_); }

}  // namespace spoor
