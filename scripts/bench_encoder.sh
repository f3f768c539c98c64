#!/usr/bin/env bash
# The encoder against its peer, back to back in one invocation: reelrank's fused encoder
# (examples/bench_encoder.rs), then ONNX Runtime's fused BERT graph (../shared/tools/ort_bench.py),
# on the same 9,742 documents and 12 queries; prints both and their ratios. Compare ratios, never
# absolute times across machines.
# Usage: scripts/bench_encoder.sh [RUNS=3]. ONNX Runtime runs from the virtualenv in
# $ORT_VENV (default ~/.cache/reelrank/ort-venv), made with pip (onnxruntime, tokenizers, numpy)
# if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shared="$(cd .. && pwd)/shared"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
export REELRANK_MODEL="${REELRANK_MODEL:-$shared/models/all-MiniLM-L6-v2}"
texts="$shared/tools/docs_seed004.jsonl"
venv="${ORT_VENV:-$HOME/.cache/reelrank/ort-venv}"
if ! "$venv/bin/python" -c "import onnxruntime, tokenizers, numpy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet onnxruntime tokenizers numpy
fi
cargo build --release --quiet --example bench_encoder
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== reelrank ($(nproc) cores; $(grep -o -m1 'avx512f' /proc/cpuinfo || echo 'no avx512f'))"
"$CARGO_TARGET_DIR/release/examples/bench_encoder" "$texts" "$runs" | tee "$work/ours"
echo "== onnxruntime"
"$venv/bin/python" "$shared/tools/ort_bench.py" --texts "$texts" --runs "$runs" | tee "$work/peer"
ours_docs=$(sed -n 's/^reelrank: \([0-9.]*\) docs\/s.*/\1/p' "$work/ours")
ours_query=$(sed -n 's/^reelrank: query p50 \([0-9.]*\) ms.*/\1/p' "$work/ours")
peer_docs=$(sed -n 's/^onnxruntime: \([0-9.]*\) docs\/s.*/\1/p' "$work/peer")
peer_query=$(sed -n 's/.*query p50 \([0-9.]*\) ms.*/\1/p' "$work/peer")
echo "== ratios (reelrank / onnxruntime, same run)"
awk -v a="$ours_docs" -v b="$peer_docs" 'BEGIN { printf "catalogue docs/s: %.2f (goal >= 1.25)\n", a / b }'
awk -v a="$ours_query" -v b="$peer_query" 'BEGIN { printf "query p50: %.2f (goal <= 0.80)\n", a / b }'
