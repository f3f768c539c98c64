#!/usr/bin/env bash
# How each cost grows with the data: for every size, a synthetic MovieLens in ml-latest's shape
# (examples/synth_movielens.rs, seed 42; 33832162 is ml-latest itself) is generated in a
# scratch directory, then: `build` from scratch, a rebuild after 10,000 new ratings, a
# fresh-process search, warm search/recommend (examples/bench_query.rs), the server's resident
# memory after a few requests, and `evaluate --protocol full --sample-users N`. Prints one
# table: seconds and peak memory per stage and size.
# Usage: scripts/bench_scale.sh [SIZES="1000000 10000000 33832162"] [EVAL_USERS=2000]
#   KEEP=1 keeps the scratch directory (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"1000000 10000000 33832162"}
eval_users=${2:-2000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
export REELRANK_MODEL="${REELRANK_MODEL:-$(cd .. && pwd)/shared/models/all-MiniLM-L6-v2}"
cargo build --release --quiet --bin reelrank --example synth_movielens --example bench_query
bin="$CARGO_TARGET_DIR/release/reelrank"
examples="$CARGO_TARGET_DIR/release/examples"
work=$(mktemp -d "${TMPDIR:-/tmp}/reelrank-scale.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "scratch: $work"; else trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT; fi
server=

# Runs a command under /usr/bin/time; appends "seconds peak_mib" to $work/last.
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@"
  read -r secs kib < "$work/time"
  echo "$secs $(( kib / 1024 ))" > "$work/last"
}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

for n in $sizes; do
  data="$work/data-$n"; index="$work/index-$n"; out="$work/result-$n"
  mkdir -p "$out"
  echo "== $n ratings ($(nproc) cores)" >&2
  "$examples/synth_movielens" --ratings "$n" --out "$data" > "$out/synth.json"

  timed "$bin" -q build --data "$data" --index "$index" --json > "$out/build.json"
  cp "$work/last" "$out/build.time"

  # 10,000 new ratings: 100 new users (ids after the last) rate 100 movies each.
  python3 - "$data" "$out/synth.json" <<'PY'
import csv, json, random, sys
d, synth = sys.argv[1], json.load(open(sys.argv[2]))
rng = random.Random(7)
movies = [r["movieId"] for r in csv.DictReader(open(f"{d}/movies.csv", newline=""))]
with open(f"{d}/ratings.csv", "a") as out:
    for user in range(synth["users"] + 1, synth["users"] + 101):
        for movie in rng.sample(movies, 100):
            out.write(f"{user},{movie},{rng.randint(1, 10) / 2},1700000000\n")
PY
  timed "$bin" -q build --data "$data" --index "$index" --json > "$out/rebuild.json"
  cp "$work/last" "$out/rebuild.time"

  for i in 1 2 3 4 5; do
    timed "$bin" -q search --data "$data" --index "$index" "space travel and futuristic wars" > /dev/null
    cat "$work/last"
  done > "$out/fresh.times"

  REELRANK_DATA="$data" "$examples/bench_query" --index "$index" 3 > "$out/bench_query.txt"

  "$bin" -q serve --data "$data" --index "$index" --addr 127.0.0.1:0 --store "sqlite://$work/profiles-$n.sqlite" \
    > "$out/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 600); do grep -q "listening" "$out/serve.log" && break; sleep 0.5; done
  addr=$(grep -o "http://[0-9.:]*" "$out/serve.log" | head -1)
  for q in "space travel" "romantic comedy in paris" "haunted house horror" "heist"; do
    curl -sf "$addr/v1/search?q=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$q")" > /dev/null
    curl -sf "$addr/v1/recommend?user=1" > /dev/null
  done
  awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$server/status" > "$out/serve.rss"
  kill "$server"; wait "$server" 2>/dev/null || true; server=

  timed "$bin" -q evaluate --data "$data" --index "$index" --protocol full --sample-users "$eval_users" --json \
    > "$out/evaluate.json"
  cp "$work/last" "$out/evaluate.time"
done

python3 - "$work" "$sizes" "$eval_users" <<'PY'
import json, re, statistics, sys
work, sizes, eval_users = sys.argv[1], sys.argv[2].split(), sys.argv[3]
rows = {}
def put(name, n, value):
    rows.setdefault(name, {})[n] = value
for n in sizes:
    out = f"{work}/result-{n}"
    synth = json.load(open(f"{out}/synth.json"))
    put("movies / users / ratings", n, f"{synth['movies']:,} / {synth['users']:,} / {synth['ratings']:,}")
    build = json.load(open(f"{out}/build.json"))
    secs, mib = open(f"{out}/build.time").read().split()
    put("build: total s (peak MiB)", n, f"{float(secs):.0f} ({mib})")
    t = build["timings_ms"]
    for stage in ["load_data", "embed", "hnsw", "keyword", "stack"]:
        put(f"build: {stage} s", n, f"{t.get(stage, 0) / 1e3:.1f}")
    for stage, ms in sorted(build.get("stack", {}).get("timings_ms", {}).items()):
        put(f"  stack: {stage} s", n, f"{ms / 1e3:.1f}")
    rebuild = json.load(open(f"{out}/rebuild.json"))
    secs, mib = open(f"{out}/rebuild.time").read().split()
    c = rebuild["counts"]
    put("rebuild +10k ratings: s (peak MiB)", n, f"{float(secs):.0f} ({mib})")
    put("rebuild: embed s (vectors reused)", n,
        f"{rebuild['timings_ms']['embed'] / 1e3:.1f} ({c['reused_vectors']:,}/{c['movies']:,})")
    fresh = [l.split() for l in open(f"{out}/fresh.times")]
    put("fresh search: ms (peak MiB)", n,
        f"{statistics.median(float(s) for s, _ in fresh) * 1e3:.0f} ({statistics.median(int(m) for _, m in fresh)})")
    text = open(f"{out}/bench_query.txt").read()
    m = re.search(r"warm search --mode hybrid.*?p50 ([\d.]+) ms", text)
    put("warm hybrid search p50 ms", n, m.group(1) if m else "?")
    m = re.search(r"exact scan, f32: ([\d.]+) ms", text)
    put("stage one exact scan, f32 ms", n, m.group(1) if m else "?")
    m = re.search(r"exact scan, half precision then rescored: ([\d.]+) ms", text)
    put("stage one exact scan, half precision ms", n, m.group(1) if m else "?")
    m = re.search(r"recommend \(warm\): p50 ([\d.]+) ms, p95 ([\d.]+)", text)
    put("recommend warm p50 / p95 ms", n, f"{m.group(1)} / {m.group(2)}" if m else "?")
    put("server RSS MiB", n, open(f"{out}/serve.rss").read().strip())
    secs, mib = open(f"{out}/evaluate.time").read().split()
    put(f"evaluate full, {eval_users} users: s (peak MiB)", n, f"{float(secs):.0f} ({mib})")
    ev = json.load(open(f"{out}/evaluate.json"))
    for model in ["TwoStage", "Popularity"]:
        row = [r for r in ev["models"] if r["model"] == model]
        if row:
            put(f"  {model} NDCG@10", n, f"{row[0]['NDCG@10']:.4f}")
print("| stage | " + " | ".join(f"{int(n):,} ratings" for n in sizes) + " |")
print("|---|" + "---|" * len(sizes))
for name, values in rows.items():
    print(f"| {name} | " + " | ".join(values.get(n, "") for n in sizes) + " |")
PY
