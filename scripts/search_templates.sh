#!/usr/bin/env bash
# Compares the document templates (`build --document-template`) on the judged query sets:
# builds one index per template in a temporary directory, runs `evaluate --protocol search`
# on each (the seed template also with notebook 004's own recipe), prints one table.
# Usage: scripts/search_templates.sh [TEMPLATE ...]   (default: every template)
# KEEP=DIR keeps the indexes in DIR and reuses those already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
export REELRANK_DATA="${REELRANK_DATA:-$(cd .. && pwd)/shared/data/ml-latest-small}"
export REELRANK_MODEL="${REELRANK_MODEL:-$(cd .. && pwd)/shared/models/all-MiniLM-L6-v2}"
cargo build --release --quiet --bin reelrank
bin="$CARGO_TARGET_DIR/release/reelrank"
templates=("$@")
if [ ${#templates[@]} -eq 0 ]; then
  templates=(labelled plain seed tag-counts sentence title)
fi
if [ -n "${KEEP:-}" ]; then
  work="$KEEP"
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
for t in "${templates[@]}"; do
  if [ ! -e "$work/index-$t/CURRENT" ]; then
    echo "building with the $t template…" >&2
    "$bin" -q build --index "$work/index-$t" --document-template "$t" > /dev/null
  fi
  "$bin" -q evaluate --index "$work/index-$t" --protocol search --json > "$work/$t.json"
done
python3 - "$work" "${templates[@]}" <<'PY'
import json, sys
work, templates = sys.argv[1], sys.argv[2:]
print(f"{'template':<11} {'variant':<13} {'set':<12} {'half':<8} "
      f"{'Hit@1':>6} {'MRR@10':>6} {'Hit@10':>6} {'R@10':>6}")
for t in templates:
    for r in json.load(open(f"{work}/{t}.json"))["rows"]:
        if r["variant"] not in ("semantic", "hybrid", "seed recipe"):
            continue
        print(f"{t:<11} {r['variant']:<13} {r['set']:<12} {r['half']:<8} "
              f"{r['hit_at_1']:6.3f} {r['mrr_at_10']:6.3f} {r['hit_at_10']:6.3f} "
              f"{r['recall_at_10']:6.3f}")
PY
