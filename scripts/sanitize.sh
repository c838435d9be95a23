#!/usr/bin/env bash
# The test suite under sanitizers, as CI runs it (.ci/run):
#   asan  build-asan/: clang, ASan+UBSan (and libFuzzer's coverage, so the
#         fuzz targets come from the same build); the whole ctest suite but
#         the two benchmark smoke tests (bench/ is not built: its accuracy
#         floors are set on the gcc build, and the quick benchmark alone took
#         4 of the 9 minutes under ASan), the load and crash tests
#         shortened; then every fuzz target for FUZZ_SECONDS (default 60)
#         via scripts/fuzz.sh, one per core at a time.
#   tsan  build-tsan/: clang, TSan; the tests that run the service, its
#         worker pool, rate limiter and the index's concurrent writers.
#
#   scripts/sanitize.sh [asan|tsan|all]   (default all)
# Any sanitizer report fails the test that triggered it (-fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
jobs="$(nproc)"

run_asan() {
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSPOOR_SANITIZE=address,undefined -DSPOOR_FUZZ=ON -DSPOOR_BUILD_BENCHMARKS=OFF \
    -DSPOOR_LOAD_SECONDS=20 -DSPOOR_LOAD_MAX_RSS_MB=6144 -DSPOOR_KILL9_KILLS=20 >/dev/null
  cmake --build build-asan -j "$jobs"
  (
    cd build-asan
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1" \
    LSAN_OPTIONS="suppressions=$PWD/../tests/sanitizers/lsan.supp" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      ctest --output-on-failure -j "$jobs"
  )
  SPOOR_FUZZ_BUILD_DIR=build-asan scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
}

run_tsan() {
  CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSPOOR_SANITIZE=thread -DSPOOR_BUILD_BENCHMARKS=OFF >/dev/null
  cmake --build build-tsan -j "$jobs" --target service_e2e_test worker_pool_test \
    rate_limiter_test index_test sightings_test
  (
    cd build-tsan
    # One OpenMP thread: libgomp and LLVM's libomp are not instrumented,
    # and TSan cannot see their barriers. FAISS then runs each search on the
    # calling thread; OMP_THREAD_LIMIT also holds Tesseract, whose parallel
    # loops ask for four threads by name (num_threads), to one.
    # GLib's slice allocator hands memory between threads under its own
    # (uninstrumented) locks; plain malloc lets TSan see every hand-over.
    OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1 OMP_TOOL=disabled OPENBLAS_NUM_THREADS=1 \
    G_SLICE=always-malloc \
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/../tests/sanitizers/tsan.supp" \
      ctest --output-on-failure -j "$jobs" \
        -R "^(service_e2e_test|sightings_test|WorkerPoolTest|RateLimiterTest|ReferenceIndexTest\.Concurrent)"
  )
}

case "$what" in
  asan) run_asan ;;
  tsan) run_tsan ;;
  all) run_asan; run_tsan ;;
  *) echo "usage: scripts/sanitize.sh [asan|tsan|all]" >&2; exit 2 ;;
esac
