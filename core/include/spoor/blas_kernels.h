// Which kernels OpenBLAS runs, and a way out of its slowest ones on
// processors newer than it knows.
//
// OpenBLAS picks its matrix kernels from the processor's model number as it
// loads. Debian 12's OpenBLAS (0.3.21) does not know models released after
// it (Intel's Emerald Rapids, model 207, for one) and falls back to its
// oldest x86-64 kernels, "Prescott" (SSE3), whatever the processor can do.
// Every matrix product Spoor makes goes through it: verification's
// descriptor matching, the voting tier's search, FAISS's searches and
// training. On such a processor they ran 1.7 to 3.9 times slower than with
// the AVX-512 kernels the processor supports (docs/BENCHMARKS.md, "Engine
// v2, fifth step"). OpenBLAS reads OPENBLAS_CORETYPE only as it loads, before
// main() runs, so the way out is to run the program again with it set.
//
// Thread safety: call RerunWithFasterBlasKernels first thing in main(),
// before any thread of the program's own starts; the rest are pure.
#ifndef SPOOR_BLAS_KERNELS_H_
#define SPOOR_BLAS_KERNELS_H_

#include <string>
#include <string_view>

namespace spoor {

// The kernels OpenBLAS runs in this process ("SkylakeX", "Haswell",
// "Prescott", ...), or "" when the BLAS linked is not OpenBLAS.
std::string BlasKernels();

// The OpenBLAS kernels to ask for when `running` are weaker than what the
// processor supports: "SkylakeX" with AVX-512 (F, CD, DQ, BW, VL), "Haswell"
// with AVX2 and FMA; "" to keep `running` (they already use AVX2, or the
// processor has nothing better, or `running` is "", not OpenBLAS).
std::string FasterBlasKernels(std::string_view running, bool avx2_fma,
                              bool avx512);

// FasterBlasKernels(running, ...) with what this processor supports (and
// its operating system enables).
std::string FasterBlasKernelsForThisProcessor(std::string_view running);

// When OpenBLAS runs kernels weaker than this processor supports and
// OPENBLAS_CORETYPE is not set, runs this program again (same arguments,
// environment and process id: execv of /proc/self/exe) with
// OPENBLAS_CORETYPE set to FasterBlasKernelsForThisProcessor's choice, and does
// not return. Returns otherwise: OPENBLAS_CORETYPE already set (by the caller
// or by an earlier run of this function; it is never overridden), nothing
// faster, not OpenBLAS, or the execv failed. OPENBLAS_CORETYPE=Prescott keeps
// OpenBLAS's fallback (to measure what this saves).
void RerunWithFasterBlasKernels(char** argv);

}  // namespace spoor

#endif  // SPOOR_BLAS_KERNELS_H_
