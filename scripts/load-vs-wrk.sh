#!/usr/bin/env bash
# Efficiency of `servelab load`, on each of its engines, against wrk.
#
# The clients drive the same server, the floor (scripts/floor.c: one epoll
# thread that answers every request with fixed bytes) pinned to CPU 0, from
# CPU 1, in interleaved runs (the order rotates so drift hits all alike).
# Clients: wrk, `servelab load --engine uring`, `servelab load --engine
# epoll` (and, with BASELINE_BIN, another servelab binary on its default
# engine, e.g. an older build to compare the epoll engine with). Two modes:
#   plain:       wrk -t1 -c100 -d$DURATION   vs  servelab load -t1 -c100 -d$DURATION
#   pipeline-16: wrk with scripts/wrk-pipeline.lua (16 requests per write)
#                                            vs  servelab load ... --pipeline 16
# It prints every run, then a table of medians and ratios from those numbers:
# responses per second, and the client's CPU time per response (user+sys of
# the client process, from bash's `time`, over its responses), with the
# spread (min-max) of each.
# Targets: req/s ratio to wrk >= 1.0 plain, >= 0.9 pipelined (both engines);
# the uring engine's CPU per response <= 0.6x wrk's plain. Exit 1 if one is
# missed.
#
# Usage: scripts/load-vs-wrk.sh [DURATION [RUNS]]   (default 10s 5)
# Env:   PORT (default 9299), FLOOR_SRC (default scripts/floor.c),
#        SKIP_BUILD=1 to use the existing release binary, ENGINES (default
#        "uring epoll"), BASELINE_BIN (a servelab binary to measure too).
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

CLIENTS=(wrk)
for engine in ${ENGINES:-uring epoll}; do CLIENTS+=("$engine"); done
[ -n "${BASELINE_BIN:-}" ] && CLIENTS+=(baseline)

echo "# servelab load vs wrk: $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# floor on CPU 0, clients on CPU 1, $RUNS interleaved runs of $DURATION per client and mode"
echo "# clients: ${CLIENTS[*]}"

# spread FORMAT VALUES...: "min-max" of the values, each printed with FORMAT.
spread() { local f=$1; shift; printf '%s\n' "$@" | sort -g | awk -v f="$f" 'NR == 1 { lo = $1 } { hi = $1 } END { printf f "-" f, lo, hi }'; }

TABLE=()
STATUS=0
for mode in plain pipeline-16; do
    if [ "$mode" = plain ]; then
        wrk_cmd=(wrk -t1 -c100 "-d$DURATION" "$URL")
        sl_args=(load -t1 -c100 "-d$DURATION" --json "$URL")
        target=1.0
    else
        wrk_cmd=(wrk -t1 -c100 "-d$DURATION" -s "$ROOT/scripts/wrk-pipeline.lua" "$URL" -- 16)
        sl_args=(load -t1 -c100 "-d$DURATION" --pipeline 16 --json "$URL")
        target=0.9
    fi
    declare -A RPS_OF=() CPU_OF=()
    n=${#CLIENTS[@]}
    for run in $(seq "$RUNS"); do
        for k in $(seq 0 $((n - 1))); do
            client=${CLIENTS[$(((k + run) % n))]}
            case $client in
                wrk) measure wrk "${wrk_cmd[@]}" ;;
                baseline) measure servelab "$BASELINE_BIN" "${sl_args[@]}" ;;
                *) measure servelab "$SERVELAB" "${sl_args[@]}" --engine "$client" ;;
            esac
            RPS_OF[$client]+="$RPS "
            CPU_OF[$client]+="$CPU_US "
            printf '%-12s run %d  %-8s %12.0f req/s  %7.3f us CPU/response\n' "$mode" "$run" "$client" "$RPS" "$CPU_US"
        done
    done
    # shellcheck disable=SC2086
    w=$(median ${RPS_OF[wrk]}) wc=$(median ${CPU_OF[wrk]})
    for client in "${CLIENTS[@]}"; do
        # shellcheck disable=SC2086
        r=$(median ${RPS_OF[$client]}) c=$(median ${CPU_OF[$client]})
        # shellcheck disable=SC2086
        rs=$(spread %.0f ${RPS_OF[$client]}) cs=$(spread %.3f ${CPU_OF[$client]})
        ratio=$(awk -v s="$r" -v w="$w" 'BEGIN { printf "%.3f", s / w }')
        cratio=$(awk -v s="$c" -v w="$wc" 'BEGIN { printf "%.3f", s / w }')
        verdict=""
        if [ "$client" = uring ] || [ "$client" = epoll ]; then
            verdict=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t) ? "met" : "MISSED" }')
            verdict="req/s >= $target $verdict"
            [[ $verdict == *MISSED ]] && STATUS=1
            if [ "$client" = uring ] && [ "$mode" = plain ]; then
                cv=$(awk -v r="$cratio" 'BEGIN { print (r <= 0.6) ? "met" : "MISSED" }')
                verdict="$verdict; CPU <= 0.6 $cv"
                [ "$cv" = met ] || STATUS=1
            fi
        fi
        TABLE+=("$(printf '| %-11s | %-8s | %10.0f | %-17s | %5s | %11.3f | %-11s | %5s | %s |' \
            "$mode" "$client" "$r" "$rs" "$ratio" "$c" "$cs" "$cratio" "$verdict")")
    done
done

echo
echo "| mode        | client   | req/s      | req/s range       | ratio | us CPU/resp | CPU range   | ratio | targets |"
echo "|-------------|----------|------------|-------------------|-------|-------------|-------------|-------|---------|"
printf '%s\n' "${TABLE[@]}"
echo "(medians of $RUNS interleaved runs of $DURATION; req/s = responses per second; ratios to wrk's median)"
exit $STATUS
