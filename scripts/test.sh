#!/usr/bin/env bash
# The test suite, as README.md and .ci/run run it: starts the services the tests need, then
# `cargo test --release` (extra arguments are passed on, e.g. `scripts/test.sh server::`).
#
# Chromium and chromedriver (for the browser tests of the web page) are installed from Debian's
# packages if missing. So is PostgreSQL (for the two-replica test of `reelrank serve`), of
# which a private cluster is started in a temporary directory on a free port and stopped again
# on exit. REELRANK_TEST_POSTGRES tells the tests where it is; a test that
# needs it fails with a clear message when it is not set.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

postgres_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ -z "${REELRANK_TEST_POSTGRES:-}" ]; then
    if [ -z "$(postgres_bin)" ] || [ ! -x "$(postgres_bin)/postgres" ]; then
        echo "installing PostgreSQL from Debian's packages" >&2
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin="$(postgres_bin)"
    [ -x "$bin/postgres" ] || { echo "PostgreSQL could not be installed" >&2; exit 1; }
    pgdir="$(mktemp -d /tmp/reelrank-pg.XXXXXX)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # PostgreSQL refuses to run as root: the cluster belongs to the postgres user then.
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$pgdir"
        as_pg() { runuser -u postgres -- "$@"; }
    else
        as_pg() { "$@"; }
    fi
    as_pg "$bin/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    as_pg "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
        -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
    trap 'as_pg "$bin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
    as_pg "$bin/psql" -q -h "$pgdir" -p "$port" -U postgres \
        -c "CREATE ROLE reelrank LOGIN PASSWORD 'reelrank'" \
        -c "CREATE DATABASE reelrank_test OWNER reelrank" >/dev/null
    export REELRANK_TEST_POSTGRES="postgres://reelrank:reelrank@127.0.0.1:$port/reelrank_test"
    echo "PostgreSQL for the tests: $REELRANK_TEST_POSTGRES" >&2
fi

# Headless Chromium and its driver, for the browser tests of the web page.
if ! command -v chromedriver >/dev/null || [ ! -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium and chromium-driver" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

cargo test --release "$@"
