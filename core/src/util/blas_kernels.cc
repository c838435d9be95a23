#include "spoor/blas_kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

namespace spoor {

std::string BlasKernels() {
  // Looked up at run time, as in util/blas_threads.cc: libblas.so.3 is
  // whichever BLAS the system chose.
  using CoreName = char* (*)();
  static auto* name =
      reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!name) return "";
  const char* n = name();
  return n ? n : "";
}

std::string FasterBlasKernels(std::string_view running, bool avx2_fma,
                              bool avx512) {
  if (running.empty()) return "";
  // OpenBLAS 0.3.21's x86-64 kernel sets that use AVX2 or AVX-512 (its
  // names, as openblas_get_corename gives them, in any case).
  constexpr std::array<std::string_view, 7> kWide = {
      "haswell", "zen",       "skylakex",      "cooperlake",
      "dhyana",  "excavator", "sapphirerapids"};
  std::string lower(running);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (std::find(kWide.begin(), kWide.end(), lower) != kWide.end()) return "";
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return "";
}

std::string FasterBlasKernelsForThisProcessor(std::string_view running) {
#if defined(__x86_64__) && defined(__GNUC__)
  // libgcc's checks include the operating system's support (XGETBV) for
  // the wider registers.
  __builtin_cpu_init();
  const bool avx2_fma =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool avx512 = avx2_fma && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512cd") &&
                      __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  return FasterBlasKernels(running, avx2_fma, avx512);
#else
  (void)running;
  return "";
#endif
}

void RerunWithFasterBlasKernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  if (argv == nullptr || argv[0] == nullptr) return;
  const std::string faster = FasterBlasKernelsForThisProcessor(BlasKernels());
  if (faster.empty()) return;
  // Set before the execv: should it fail, this process does not try again
  // and the programs it starts inherit the choice.
  if (setenv("OPENBLAS_CORETYPE", faster.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  // execv returned: /proc not mounted, or the binary gone. Run on as we are.
}

}  // namespace spoor
