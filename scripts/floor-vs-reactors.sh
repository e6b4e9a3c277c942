#!/usr/bin/env bash
# The floor (scripts/floor.c), v4 (event) and v5 (uring) side by side in one
# `servelab bench` run: server pinned to one CPU, load to another, the three
# servers interleaved run by run, 3 runs of each point, medians with min–max.
# Scenarios: seed (100 connections, unpipelined), pipeline (16 deep) and idle
# (1,000 and 10,000 keep-alive connections: RSS per connection). Every
# table with server CPU per request gets its ratio to the floor's, taken run
# by run (--baseline floor), and the reactors' targets against the floor are
# checked from the numbers (--check floor-vs-reactors). Report in
# bench-floor/ (git-ignored).
#
# Usage: scripts/floor-vs-reactors.sh [--update-readme] [servelab bench flags...]
#   --update-readme  also rewrite README.md's floor-vs-reactors block with
#                    this run's tables (must come first)
#   anything else goes to servelab bench, after the script's own flags
#   (e.g. --runs 5 --duration 5s, or --full)
# Env:   FLOOR_SRC   (default scripts/floor.c)
#        SERVER_CPUS (default 0), CLIENT_CPUS (default 1)
#        OUT         (default bench-floor)
# Needs: gcc (for the floor only: servelab itself builds without a C
#        compiler), cargo, 2+ CPUs, an open-files hard limit above 10,064
#        for the 10,000-connection idle point (else it is shown as not run).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLOOR_SRC=${FLOOR_SRC:-$ROOT/scripts/floor.c}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
OUT=${OUT:-bench-floor}

fail() { echo "floor-vs-reactors: $*" >&2; exit 2; }

command -v gcc >/dev/null ||
    fail "gcc is missing: it builds the floor, $FLOOR_SRC (apt-get install -y gcc); servelab itself needs no C compiler"
command -v cargo >/dev/null || fail "cargo is missing"
[ -f "$FLOOR_SRC" ] || fail "no floor source at $FLOOR_SRC (set FLOOR_SRC)"
[ "$(nproc)" -ge 2 ] || fail "needs 2 CPUs: the servers on one, the load on another"

readme=()
if [ "${1:-}" = --update-readme ]; then
    shift
    readme=(--update-readme README.md --readme-block floor-vs-reactors)
fi

cd "$ROOT"
cargo build --release --quiet
gcc -O2 -o target/floor "$FLOOR_SRC"
[ -x target/floor ] || fail "gcc did not produce target/floor"

# `exec`: the bench's child is the floor itself, not a shell around it, so
# its /proc figures are the floor's alone. The floor ends by dying of the
# bench's SIGTERM, which the bench counts as a clean stop for a --server.
exec target/release/servelab bench \
    --models event,uring,tokio \
    --server 'floor=exec target/floor {port}' \
    --scenarios seed,pipeline,idle \
    --runs 3 \
    --server-cpus "$SERVER_CPUS" --client-cpus "$CLIENT_CPUS" \
    --baseline floor --check floor-vs-reactors \
    --out "$OUT" \
    ${readme[@]+"${readme[@]}"} "$@"
