#!/usr/bin/env bash
# The main job on the bundled photos: install, build, index
# reference_images/references (labels from its manifest.csv), start
# spoor-query-service on a free loopback port over that index, match every
# sample ad in reference_images/sample_ads through it with the `spoor`
# client, and stop the service.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${SPOOR_BUILD_DIR:-build}"
index="$build_dir/demo-index"
port_file="$build_dir/demo-port"
rm -rf "$index" "$port_file"
"$build_dir/indexer/spoor-indexer" build --index "$index" reference_images/references

"$build_dir/query_service/spoor-query-service" --index "$index" \
  --listen 127.0.0.1:0 --metrics-listen "" --port-file "$port_file" \
  --log-level warn &
service=$!
trap 'kill -TERM $service 2>/dev/null; wait $service 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [ -s "$port_file" ] && break
  kill -0 $service 2>/dev/null || { echo "demo: the service did not start" >&2; exit 1; }
  sleep 0.1
done
target="127.0.0.1:$(cat "$port_file")"
echo "--- spoor-query-service on $target: $("$build_dir/query_service/spoor" --target "$target" health)"
"$build_dir/query_service/spoor" --target "$target" stats
echo "--- matching the sample ads through the service ---"
"$build_dir/query_service/spoor" --target "$target" match reference_images/sample_ads/*
