#!/usr/bin/env bash
# Efficiency of `servelab load` against wrk.
#
# Both clients drive the same server, the floor (scripts/floor.c: one epoll
# thread that answers every request with fixed bytes) pinned to CPU 0, from
# CPU 1, in interleaved runs (the order alternates so drift hits both alike).
# Two modes:
#   plain:       wrk -t1 -c100 -d$DURATION   vs  servelab load -t1 -c100 -d$DURATION
#   pipeline-16: wrk with scripts/wrk-pipeline.lua (16 requests per write)
#                                            vs  servelab load ... --pipeline 16
# It prints every run, then a table of medians and ratios from those numbers,
# with the client's CPU time per response (user+sys of the client process).
# Targets: ratio >= 1.0 plain, >= 0.9 pipelined. Exit 1 if one is missed.
#
# Usage: scripts/load-vs-wrk.sh [DURATION [RUNS]]   (default 10s 5)
# Env:   PORT (default 9299), FLOOR_SRC (default scripts/floor.c),
#        SKIP_BUILD=1 to use the existing release binary.
# Needs: wrk, gcc, taskset (apt-get install -y wrk gcc util-linux), 2+ CPUs.
set -euo pipefail

DURATION=${1:-10s}
RUNS=${2:-5}
PORT=${PORT:-9299}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FLOOR_SRC=${FLOOR_SRC:-$ROOT/scripts/floor.c}
OUT_DIR=$ROOT/target/bench
URL=http://127.0.0.1:$PORT/

for tool in wrk gcc taskset cargo; do
    command -v "$tool" >/dev/null || { echo "load-vs-wrk: $tool is missing (apt-get install -y wrk gcc util-linux)" >&2; exit 2; }
done
[ -f "$FLOOR_SRC" ] || { echo "load-vs-wrk: no floor source at $FLOOR_SRC (set FLOOR_SRC)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "load-vs-wrk: needs 2 CPUs (server on 0, client on 1)" >&2; exit 2; }

mkdir -p "$OUT_DIR"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi
SERVELAB=$ROOT/target/release/servelab
gcc -O2 -o "$OUT_DIR/floor" "$FLOOR_SRC"

taskset -c 0 "$OUT_DIR/floor" "$PORT" &
FLOOR_PID=$!
trap 'kill "$FLOOR_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done

# Runs "$@" pinned to CPU 1; sets RPS (responses/s) and CPU_US (client CPU
# microseconds per response). $1 says how to read the output: wrk or servelab.
measure() {
    local kind=$1 out times user sys responses
    shift
    out=$(mktemp)
    times=$(mktemp)
    # bash's `time` reports the child's user and system CPU seconds.
    { TIMEFORMAT='%U %S'; time taskset -c 1 "$@" >"$out" 2>/dev/null; } 2>"$times"
    read -r user sys <"$times"
    if [ "$kind" = wrk ]; then
        RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
        responses=$(awk '/requests in/ {print $1}' "$out")
    else
        RPS=$(grep -o '"requests_per_sec":[0-9.]*' "$out" | cut -d: -f2)
        responses=$(grep -o '"responses":[0-9]*' "$out" | cut -d: -f2)
    fi
    [ -n "$RPS" ] && [ -n "$responses" ] || { echo "load-vs-wrk: no result from: $*" >&2; cat "$out" >&2; exit 1; }
    CPU_US=$(awk -v u="$user" -v s="$sys" -v n="$responses" 'BEGIN { printf "%.3f", (u + s) * 1e6 / n }')
    rm -f "$out" "$times"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# servelab load vs wrk: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# floor on CPU 0, clients on CPU 1, $RUNS interleaved runs of $DURATION per client and mode"

declare -A ROWS
STATUS=0
for mode in plain pipeline-16; do
    if [ "$mode" = plain ]; then
        wrk_cmd=(wrk -t1 -c100 "-d$DURATION" "$URL")
        sl_cmd=("$SERVELAB" load -t1 -c100 "-d$DURATION" --json "$URL")
        target=1.0
    else
        wrk_cmd=(wrk -t1 -c100 "-d$DURATION" -s "$ROOT/scripts/wrk-pipeline.lua" "$URL" -- 16)
        sl_cmd=("$SERVELAB" load -t1 -c100 "-d$DURATION" --pipeline 16 --json "$URL")
        target=0.9
    fi
    wrk_rps=() sl_rps=() wrk_cpu=() sl_cpu=()
    for run in $(seq "$RUNS"); do
        for client in $( ((run % 2)) && echo "wrk servelab" || echo "servelab wrk"); do
            if [ "$client" = wrk ]; then
                measure wrk "${wrk_cmd[@]}"
                wrk_rps+=("$RPS") wrk_cpu+=("$CPU_US")
            else
                measure servelab "${sl_cmd[@]}"
                sl_rps+=("$RPS") sl_cpu+=("$CPU_US")
            fi
            printf '%-12s run %d  %-8s %12.0f req/s  %7.3f us CPU/response\n' "$mode" "$run" "$client" "$RPS" "$CPU_US"
        done
    done
    w=$(median "${wrk_rps[@]}") s=$(median "${sl_rps[@]}")
    wc=$(median "${wrk_cpu[@]}") sc=$(median "${sl_cpu[@]}")
    ratio=$(awk -v s="$s" -v w="$w" 'BEGIN { printf "%.3f", s / w }')
    verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t) ? "met" : "MISSED" }')
    [ "$verdict" = met ] || STATUS=1
    ROWS[$mode]=$(printf '| %-11s | %10.0f | %14.0f | %5s | >= %s %-6s | %15.3f | %20.3f |' \
        "$mode" "$w" "$s" "$ratio" "$target" "$verdict" "$wc" "$sc")
done

echo
echo "| mode        | wrk req/s  | servelab req/s | ratio | target        | wrk us CPU/resp | servelab us CPU/resp |"
echo "|-------------|------------|----------------|-------|---------------|-----------------|----------------------|"
echo "${ROWS[plain]}"
echo "${ROWS[pipeline-16]}"
echo "(medians of $RUNS interleaved runs of $DURATION; req/s = responses per second)"
exit $STATUS
