#!/usr/bin/env bash
# Configures and builds Spoor into build/ (or $SPOOR_BUILD_DIR). Extra
# arguments go to the CMake configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${SPOOR_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPOOR_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
