#!/usr/bin/env bash
# Fit time and peak memory of each collaborative base model on a synthetic MovieLens-shaped
# set in ml-latest's shape (examples/synth_movielens.rs, seeded), one process per model.
# Usage: scripts/bench_models.sh [RATINGS=10000000]
set -euo pipefail
cd "$(dirname "$0")/.."
ratings=${1:-10000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
cargo build --release --quiet --example bench_models --example synth_movielens
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$CARGO_TARGET_DIR/release/examples/synth_movielens" --ratings "$ratings" --out "$work/data" > /dev/null
echo "== $ratings ratings, $(nproc) cores"
for model in item_knn ease rp3beta ials mf; do
  /usr/bin/time -f "%M" -o "$work/rss" "$CARGO_TARGET_DIR/release/examples/bench_models" "$work/data" "$model" \
    | tr -d '\n'
  printf '\tpeak_rss_mib %d\n' $(( $(cat "$work/rss") / 1024 ))
done
