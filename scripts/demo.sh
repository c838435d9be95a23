#!/usr/bin/env bash
# The main job on the bundled photos: install, build, index
# reference_images/references (labels from its manifest.csv), start
# spoor-query-service on a free loopback port over that index, match every
# sample ad in reference_images/sample_ads through it with the `spoor`
# client; then, as a marketplace would, feed a few ads from three sellers
# with their ad context (each becomes a sighting), and show an investigator
# which sellers relist the same item and write a case report; stop the
# service.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir="${SPOOR_BUILD_DIR:-build}"
index="$build_dir/demo-index"
port_file="$build_dir/demo-port"
rm -rf "$index" "$port_file"
"$build_dir/indexer/spoor-indexer" build --index "$index" reference_images/references

# The demo marketplace's policy lets Spoor keep small thumbnails of its ad
# images, so the case report below can show them (off by default).
config="$build_dir/demo-spoor.toml"
echo 'sighting_thumbnail_platforms = ["demo-market"]' > "$config"
"$build_dir/query_service/spoor-query-service" --config "$config" --index "$index" \
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
echo "--- a marketplace sends four ads from three sellers, each with its ad context ---"
ads="$build_dir/demo-ads"
/usr/bin/python3 scripts/demo_ads.py reference_images/sample_ads "$ads"
spoor=("$build_dir/query_service/spoor" --target "$target")
ad() {  # ad ID SELLER LISTED IMAGE
  "${spoor[@]}" match --platform demo-market --ad-id "$1" --seller "$2" \
    --listing-time "$3" --title "ad $1" --url "https://demo-market.example/ad/$1" "$4"
}
ad 101 savanna_curios 2026-11-02T09:00:00Z reference_images/sample_ads/ad_unrelated_lion.jpg
ad 102 fresh_fruit_stall 2026-11-03T10:30:00Z reference_images/sample_ads/ad_unrelated_fruits.jpg
ad 205 curios_again 2026-11-16T18:05:00Z "$ads/lion_relisted.jpg"
ad 206 curios_again 2026-11-17T08:40:00Z reference_images/sample_ads/ad_elephant_mirrored_crop_phone.jpg
echo "--- an investigator asks who savanna_curios is linked to, and for the clusters ---"
"${spoor[@]}" seller-links demo-market savanna_curios
"${spoor[@]}" seller-links demo-market fresh_fruit_stall
"${spoor[@]}" clusters --min-sellers 2
echo "--- and writes a case report: HTML with the pictures, CSV and JSON of the same facts ---"
rm -rf "$build_dir/demo-report"
"${spoor[@]}" report --seller demo-market/savanna_curios --out "$build_dir/demo-report"
