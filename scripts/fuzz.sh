#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang under ASan+UBSan into
# build-fuzz/ and runs each for SECONDS (default 60) on its seed corpus.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   e.g. scripts/fuzz.sh 1800 decode_fuzzer
#
# Targets: decode_fuzzer manifest_fuzzer index_open_fuzzer service_fuzzer.
# Inputs that grow coverage are kept in build-fuzz/fuzz/corpus/TARGET (a
# later run starts from them); a crash, leak, timeout, out-of-memory or failed check is
# written to build-fuzz/fuzz/findings/TARGET/ and fails the script. Each
# run's libFuzzer log (executions, coverage) is build-fuzz/fuzz/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode_fuzzer manifest_fuzzer index_open_fuzzer service_fuzzer)
fi
build_dir="${SPOOR_FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSPOOR_FUZZ=ON -DSPOOR_SANITIZE=address,undefined -DSPOOR_BUILD_BENCHMARKS=OFF \
  >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target spoor-fuzz-seeds "${targets[@]}"

work="$build_dir/fuzz"
rm -rf "$work/seeds"
"$build_dir/tests/fuzz/spoor-fuzz-seeds" "$work/seeds" >/dev/null
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizers/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# One BLAS thread: the targets are single-input, and OpenMP's pool would
# only add noise to the coverage signal.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# One target on each core at a time (FUZZ_JOBS overrides): each still gets
# its SECONDS of a core, and the whole run takes SECONDS per nproc targets.
# (getconf, not nproc: nproc obeys the OMP_NUM_THREADS=1 set above.)
jobs="${FUZZ_JOBS:-$(getconf _NPROCESSORS_ONLN)}"
run_one() {
  local t="$1" corpus="$work/corpus/$1" findings="$work/findings/$1" status=0
  mkdir -p "$corpus" "$findings"
  "$build_dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=60 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$findings/" \
    "$corpus" "$work/seeds/${t%_fuzzer}" >"$work/$t.log" 2>&1 || status=$?
  echo "$status" >"$work/$t.status"
}
pending=("${targets[@]}")
while [ ${#pending[@]} -ne 0 ]; do
  batch=("${pending[@]:0:$jobs}")
  pending=("${pending[@]:$jobs}")
  echo "fuzz: ${batch[*]} for ${seconds}s"
  for t in "${batch[@]}"; do run_one "$t" & done
  wait
done

failed=()
for t in "${targets[@]}"; do
  findings="$work/findings/$t"
  status="$(cat "$work/$t.status")"
  echo "fuzz: $t"
  grep -E "^#[0-9]+\s+(DONE|INITED)|stat::number_of_executed_units|stat::peak_rss_mb" \
    "$work/$t.log" | sed "s/^/  /" || true
  # slow-unit-* files only report an input over 10 s (a busy machine, the
  # server starting); hangs past -timeout are timeout-* and do fail.
  if [ "$status" -ne 0 ] || compgen -G "$findings/[!s]*" >/dev/null; then
    echo "fuzz: $t FAILED (exit $status); findings in $findings, log $work/$t.log"
    tail -40 "$work/$t.log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each with no finding"
