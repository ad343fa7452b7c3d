#!/usr/bin/env bash
# Stress: wrk -t1 -c64 on GET / unloaded, then with SLOW slowloris connections (one header byte a
# second each, bench/slowloris.c) and IDLE idle connections (bench/idle_conns.c) open, alternating
# ROUNDS times in the same run. duet (default options) on SERVER_CPU; wrk and helpers on LOAD_CPU.
# Reports median (min–max) and the loaded/unloaded ratio of each round; a target is met only when
# the whole range clears it.
# Usage: bench/stress.sh          (env: ROUNDS=5 DURATION=10 SLOW=500 IDLE=5000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
SLOW=${SLOW:-500}
IDLE=${IDLE:-5000}

need wrk wrk
need curl curl
need cc gcc
need taskset util-linux
build_duet
build_helper slowloris
build_helper idle_conns
raise_nofile

start_duet "$BENCH_TMP/duet.log" --data "$BENCH_TMP/data"
RESULTS="$BENCH_TMP/results"  # "mode round rps cpu_s p50_ms p99_ms errors"
: >"$RESULTS"
WRK_CMD="taskset -c $LOAD_CPU wrk -t1 -c64 -d${DURATION}s --latency -s $BENCH_DIR/report.lua http://127.0.0.1:$DUET_HTTP_PORT/"

run_wrk() {  # run_wrk MODE ROUND
    local t0 t1 out line
    t0=$(cpu_ticks "$DUET_PID")
    out=$($WRK_CMD)
    t1=$(cpu_ticks "$DUET_PID")
    line=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; exit 1; }
    awk -v m="$1" -v rnd="$2" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
        END { printf "%s %d %.0f %.2f %.3f %.3f %d\n", m, rnd, r["requests"] / (r["duration_us"] / 1e6),
              (t1 - t0) / hz, r["p50_us"] / 1000, r["p99_us"] / 1000,
              r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"] }' <<<"$line" |
        tee -a "$RESULTS" >&2
}

# open_helper VAR CMD...: start a helper that prints "held N" when its connections are open
open_helper() {
    local var=$1 fifo="$BENCH_TMP/fifo.$1" held; shift
    rm -f "$fifo"; mkfifo "$fifo"
    taskset -c "$LOAD_CPU" "$@" >"$fifo" &
    printf -v "$var" '%s' "$!"
    track "$!"
    exec {fd}<"$fifo"
    read -r held <&"$fd" || true
    eval "${var}_FD=$fd"
    [[ "$held" == held* ]] || { echo "helper $1 failed: '$held'" >&2; exit 1; }
}

taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s "http://127.0.0.1:$DUET_HTTP_PORT/" >/dev/null  # warm-up
echo "mode round req/s cpu_s p50_ms p99_ms errors" >&2
for round in $(seq 1 "$ROUNDS"); do
    run_wrk unloaded "$round"
    open_helper SL "$BENCH_BUILD/slowloris" "$DUET_HTTP_PORT" "$SLOW"
    open_helper ID "$BENCH_BUILD/idle_conns" 127.0.0.1 "$DUET_HTTP_PORT" "$IDLE" req
    sleep 1
    open_conns=$(curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/metrics" | awk '/open_conn|connections_open/ && /http/ && $1 !~ /^#/ { print $NF; exit }')
    echo "  duet reports ${open_conns:-?} open HTTP connections before the loaded run" >&2
    run_wrk loaded "$round"
    stop_pid "$ID"
    stop_pid "$SL"
    replaced=$(cat <&"$SL_FD" || true)
    exec {SL_FD}<&- {ID_FD}<&-
    echo "  slowloris: ${replaced:-?} during the round" >&2
    sleep 1
done

med() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$RESULTS" | median; }
echo
echo "== bench/stress.sh: GET / with $SLOW slowloris + $IDLE idle connections vs unloaded, medians of $ROUNDS x ${DURATION}s (load average: $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-10s %10s %8s %8s %8s %7s\n' mode "req/s" cpu_s p50_ms p99_ms errors
for m in unloaded loaded; do
    printf '%-10s %10.0f %8.2f %8.3f %8.3f %7.0f\n' "$m" "$(med "$m" 3)" "$(med "$m" 4)" "$(med "$m" 5)" "$(med "$m" 6)" "$(med "$m" 7)"
done
printf '%-10s %10s %8s %8s %8s\n' ratio "$(ratio "$(med loaded 3)" "$(med unloaded 3)")x" \
    "$(ratio "$(med loaded 4)" "$(med unloaded 4)")x" "$(ratio "$(med loaded 5)" "$(med unloaded 5)")x" \
    "$(ratio "$(med loaded 6)" "$(med unloaded 6)")x"
col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$RESULTS"; }
per_round() { awk -v c="$1" '{ v[$1 " " $2] = $c; n[$2] = 1 } END { for (r in n) if (v["unloaded " r] > 0) print v["loaded " r] / v["unloaded " r] }' "$RESULTS"; }
echo "median (min–max): unloaded req/s $(col unloaded 3 | spread %.0f), loaded req/s $(col loaded 3 | spread %.0f); loaded p99 $(col loaded 6 | spread %.3f) ms"
echo "loaded/unloaded req/s per round: $(per_round 3 | spread)x; >= 0.8x: $(per_round 3 | verdict 0.8 ge); loaded p99 < 10 ms: $(col loaded 6 | verdict 10 le)"
echo "per run:"; sed 's/^/  /' "$RESULTS"
echo "commands (duet: taskset -c $SERVER_CPU $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR, default --max-conns and --header-timeout):"
echo "  ${WRK_CMD/$DUET_HTTP_PORT/PORT}"
echo "  taskset -c $LOAD_CPU $BENCH_BUILD/slowloris PORT $SLOW            # bench/slowloris.c"
echo "  taskset -c $LOAD_CPU $BENCH_BUILD/idle_conns 127.0.0.1 PORT $IDLE req   # bench/idle_conns.c"
