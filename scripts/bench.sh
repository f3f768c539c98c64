#!/usr/bin/env bash
# Measures what README's Performance section reports: index build (docs/s, per-stage times,
# peak memory), fresh-process search latency and warm in-process latency + HNSW recall.
# Usage: scripts/bench.sh [BUILD_RUNS=3] [SEARCH_RUNS=20]; data and model as for the CLI
# (REELRANK_DATA / REELRANK_MODEL, defaulting to ../shared like .cargo/config.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
build_runs=${1:-3}
search_runs=${2:-20}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
export REELRANK_DATA="${REELRANK_DATA:-$(cd .. && pwd)/shared/data/ml-latest-small}"
export REELRANK_MODEL="${REELRANK_MODEL:-$(cd .. && pwd)/shared/models/all-MiniLM-L6-v2}"
cargo build --release --quiet --bin reelrank --example bench_query
bin="$CARGO_TARGET_DIR/release/reelrank"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export REELRANK_INDEX="$work/index"

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "== build ($build_runs runs, $(nproc) cores)"
for i in $(seq "$build_runs"); do
  # From scratch each time: a rebuild would reuse the previous run's vectors.
  rm -rf "$REELRANK_INDEX"
  /usr/bin/time -f "%M" -o "$work/rss" "$bin" -q build --json > "$work/manifest.json"
  python3 - "$work/manifest.json" "$(cat "$work/rss")" >> "$work/builds" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); t = m["timings_ms"]
print(m["counts"]["movies"] / (t["embed"] / 1e3), t["embed"] / 1e3, t["hnsw"] / 1e3, t["load_data"], t["total"] / 1e3, int(sys.argv[2]) / 1024)
PY
done
for col in 1 2 3 4 5 6; do
  name=$(echo "docs_per_s embed_s hnsw_s load_data_ms total_s peak_rss_mib" | cut -d' ' -f$col)
  printf '%s %s\n' "$name" "$(cut -d' ' -f$col "$work/builds" | median)"
done

echo "== fresh-process search ($search_runs runs)"
for i in $(seq "$search_runs"); do
  start=$(date +%s%N)
  "$bin" -q search "space travel and futuristic wars" > /dev/null
  echo $(( ($(date +%s%N) - start) / 1000000 ))
done | median | sed 's/^/median ms: /'

echo "== warm in-process"
"$CARGO_TARGET_DIR/release/examples/bench_query" 20
