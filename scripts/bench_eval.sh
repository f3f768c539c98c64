#!/usr/bin/env bash
# Measures `reelrank evaluate` (seed protocol, every base model and stack): per-stage medians
# over RUNS runs on ml-latest-small, then time and peak memory on a synthetic MovieLens of SYNTH
# ratings (generated once by examples/synth_movielens.rs; its index is built once
# beside it, outside the timed run). SYNTH=0 skips the scale run.
# Usage: scripts/bench_eval.sh [RUNS=5] [SYNTH=10000000]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
synth=${2:-10000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
data="${REELRANK_DATA:-$(cd .. && pwd)/shared/data/ml-latest-small}"
export REELRANK_MODEL="${REELRANK_MODEL:-$(cd .. && pwd)/shared/models/all-MiniLM-L6-v2}"
cargo build --release --quiet --bin reelrank
bin="$CARGO_TARGET_DIR/release/reelrank"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== evaluate on $(basename "$data") ($runs runs, $(nproc) cores): median ms per stage"
for i in $(seq "$runs"); do
  start=$(date +%s%N)
  "$bin" -q evaluate --data "$data" --json > "$work/run$i.json"
  echo $(( ($(date +%s%N) - start) / 1000000 )) >> "$work/wall"
done
python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
reports = [json.load(open(f"{work}/run{i}.json")) for i in range(1, runs + 1)]
for stage in reports[0]["timings_ms"]:
    print(f"{stage:>18}: {statistics.median(r['timings_ms'][stage] for r in reports):8.1f}")
print(f"{'MF per epoch':>18}: {statistics.median(r['timings_ms']['fit_mf'] for r in reports) / len(reports[0]['mf_epoch_rmse']):8.1f}")
wall = [int(x) for x in open(f"{work}/wall")]
print(f"{'process wall':>18}: {statistics.median(wall):8.1f}")
PY

[ "$synth" = 0 ] && exit 0
synth_dir="${SYNTH_DIR:-/tmp/ml-synth-$synth}"
if [ ! -f "$synth_dir/ratings.csv" ]; then
  cargo build --release --quiet --example synth_movielens
  "$CARGO_TARGET_DIR/release/examples/synth_movielens" --ratings "$synth" --out "$synth_dir"
fi
[ -f "$synth_dir.index/manifest.json" ] \
  || "$bin" -q build --data "$synth_dir" --index "$synth_dir.index" > /dev/null
echo "== evaluate on $synth_dir (1 run)"
/usr/bin/time -f "%e s wall, %M KiB peak" -o "$work/time" \
  "$bin" -q evaluate --data "$synth_dir" --index "$synth_dir.index" --json > "$work/synth.json"
python3 - "$work/synth.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("split:", r["split"])
for stage, ms in r["timings_ms"].items():
    print(f"{stage:>18}: {ms / 1000:8.2f} s")
PY
sed 's/^/peak: /' "$work/time"
