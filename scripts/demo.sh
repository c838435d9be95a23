#!/usr/bin/env bash
# The main job on the bundled photos: install, build, index
# reference_images/references (labels from its manifest.csv), then match
# every sample ad in reference_images/sample_ads and print the results.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${SPOOR_BUILD_DIR:-build}"
indexer="$build_dir/indexer/spoor-indexer"
index="$build_dir/demo-index"
rm -rf "$index"
"$indexer" build --index "$index" reference_images/references
"$indexer" stats --index "$index"
echo "--- matching the sample ads ---"
"$indexer" query --index "$index" reference_images/sample_ads/*
