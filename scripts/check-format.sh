#!/usr/bin/env bash
# Fails when a C++ file is not formatted as .clang-format (Google style) says.
# Fix with: git ls-files '*.cc' '*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror
echo "check-format: $(git ls-files '*.cc' '*.h' | wc -l) files formatted"
