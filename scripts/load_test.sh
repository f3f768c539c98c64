#!/usr/bin/env bash
# Load test of `reelrank serve` with wrk (Debian's package, installed if missing) on this
# machine: what README's "Serving" performance table reports.
#   - search and personal search (a 5-rating profile), each with every query new (embedding
#     computed) and with repeated queries (cache hits), and recommend (users 1..610), at 4
#     connections;
#   - a search sweep over 1..32 connections: the highest throughput whose p99 ≤ 100 ms;
#   - the server's resident memory (now and peak).
# Usage: scripts/load_test.sh [SECONDS=15]; the index of the default location (built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-15}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/reelrank/target}"
export REELRANK_DATA="${REELRANK_DATA:-$(cd .. && pwd)/shared/data/ml-latest-small}"
export REELRANK_MODEL="${REELRANK_MODEL:-$(cd .. && pwd)/shared/models/all-MiniLM-L6-v2}"
command -v wrk >/dev/null || {
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null; else sudo -n apt-get install -y -qq wrk >/dev/null; fi
}
cargo build --release --quiet --bin reelrank
bin="$CARGO_TARGET_DIR/release/reelrank"
work=$(mktemp -d)
"$bin" -q search "warm up" > /dev/null   # builds the index if there is none
pid=""
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
# start_server N: a server keeping N query embeddings (0: every query embedded).
start_server() {
    [ -z "$pid" ] || { kill "$pid"; wait "$pid" 2>/dev/null || true; }
    "$bin" -q --store "sqlite://$work/people.sqlite" serve --addr 127.0.0.1:0 --watch 0 \
        --query-cache "$1" > "$work/out" &
    pid=$!
    for _ in $(seq 600); do grep -q "listening on" "$work/out" && break; sleep 0.1; done
    base=$(sed -n 's/^listening on //p' "$work/out")
}
start_server 0
profile=$(curl -sf -X POST "$base/v1/profiles" \
    -d '{"ratings":[{"movie_id":1,"rating":5},{"movie_id":2355,"rating":5},{"movie_id":3114,"rating":5},{"movie_id":4886,"rating":4.5},{"movie_id":260,"rating":2}]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# A wrk script per case: paths rotate through the 142 judged queries (or users 1..610).
python3 - "$work" "$profile" <<'PY'
import json, sys, urllib.parse
work, profile = sys.argv[1], sys.argv[2]
queries = []
for name in ["tests/queries/descriptive.jsonl", "tests/queries/navigational.jsonl"]:
    for line in open(name):
        if line.strip():
            queries.append(json.loads(line)["query"])
def script(name, paths):
    lua = "local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
    lua += "local i = 0\nrequest = function()\n  i = i + 1\n"
    lua += "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n"
    open(f"{work}/{name}.lua", "w").write(lua)
q = lambda s: urllib.parse.quote(s)
script("search", [f"/v1/search?q={q(s)}" for s in queries])
script("personal", [f"/v1/search?q={q(s)}&profile={profile}" for s in queries])
script("recommend", [f"/v1/recommend?user={u}" for u in range(1, 611)])
PY

# wrk's --latency percentiles and requests/s as "p50 p99 rps errors" (ms).
run() {
    wrk -t1 -c"$2" -d"${secs}s" --latency -s "$work/$1.lua" "$base" > "$work/wrk.txt"
    python3 - "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(v):
    n, unit = float(re.match(r"[\d.]+", v).group()), re.sub(r"[\d.]+", "", v)
    return n * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[unit]
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
print(f"{ms(lat['50']):.2f} {ms(lat['99']):.2f} {rps:.1f} {errors}")
PY
}

echo "$(nproc) cores, $secs s per run, wrk -t1; uncached: the server embeds every query (--query-cache 0)"
echo
echo "| case | connections | p50 ms | p99 ms | requests/s | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
run search 1 > /dev/null   # warm-up: stack, page cache
for case in personal recommend; do
    for c in 1 4; do
        read -r p50 p99 rps errors < <(run "$case" "$c")
        echo "| $case, uncached | $c | $p50 | $p99 | $rps | $errors |"
    done
done
best=""
for c in 1 2 4 8 16; do
    read -r p50 p99 rps errors < <(run search "$c")
    echo "| search, uncached | $c | $p50 | $p99 | $rps | $errors |"
    if python3 -c "import sys; sys.exit(0 if $p99 <= 100 and $errors == 0 else 1)"; then best="$rps req/s at $c connections"; fi
done
uncached_rss=$(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status")
start_server 4096
run search 1 > /dev/null   # fills the cache with the 142 queries
for case in search personal; do
    read -r p50 p99 rps errors < <(run "$case" 4)
    echo "| $case, cached | 4 | $p50 | $p99 | $rps | $errors |"
done
echo
echo "highest uncached search throughput with p99 ≤ 100 ms: ${best:-none}"
echo "server peak RSS: ${uncached_rss} MiB uncached, $(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status") MiB with the cache"
echo "query cache: $(curl -sf "$base/metrics" | grep -E '^reelrank_query_cache_(hits|misses) ' | tr '\n' ' ')"
