#!/usr/bin/env bash
# Loop stall under the four loads of SPEC §5 "The loop never waits". For each scenario a fresh
# duet runs the load for SECS seconds while a second client probes GET /healthz every 1 ms; the
# script prints the client-side latency (p50/p99/max) and duet's own duet_loop_stall_seconds
# histogram for the scenario: how long each loop step ran between two epoll_wait calls, so the
# longest gap between two epoll_wait returns is at most the wait plus the largest step shown.
#   hash8g   an 8 GiB sparse file dropped in and being hashed (a STAT waits for it)
#   list10k  10,000 files, 200 clients listing GET /files again and again
#   cold     page cache dropped, two 1 GiB downloads at once (needs root for drop_caches);
#            also prints their rate against the disk's own cold read rate (dd)
#   logpipe  --access-log into a pipe nobody reads, 8 clients hammering GET /
# Usage: bench/stall.sh [SCENARIO...]   (env: SECS=10, COLD_SIZE=1073741824)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECS=${SECS:-10}
COLD_SIZE=${COLD_SIZE:-$((1 << 30))}
need curl curl
need cc gcc
need python3 python3
build_duet
mkdir -p "$BENCH_BUILD"
src="$BENCH_DIR/stall_probe.c" PROBE="$BENCH_BUILD/stall_probe"
if [ ! -x "$PROBE" ] || [ "$src" -nt "$PROBE" ]; then
    cc -O2 -Wall -Wextra -Werror -std=gnu11 -o "$PROBE" "$src" -lpthread
fi
raise_nofile
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(hash8g list10k cold logpipe)

buckets() { curl -s "http://127.0.0.1:$DUET_HTTP_PORT/metrics" | grep '^duet_loop_stall_seconds_bucket'; }

# report NAME BEFORE AFTER: per-bucket step counts of the scenario, and the longest step
report() {
    local name=$1 before=$2 after=$3
    echo "  duet loop steps (duet_loop_stall_seconds, this scenario):"
    paste <(echo "$before") <(echo "$after") | awk '{
        split($1, a, "[{}\" =]+"); le = a[3];
        n = $4 - $2; cum = $4 - $2;
        printf "    le=%-7s %8d cumulative\n", le, cum }'
    curl -s "http://127.0.0.1:$DUET_HTTP_PORT/metrics" |
        awk '/^duet_loop_stall_max_seconds/ { printf "  longest step since start: %.2f ms\n", $2 * 1000 }'
}

run_hash8g() {
    local data="$BENCH_TMP/hash8g"
    mkdir -p "$data" && truncate -s 8G "$data/huge.img"
    start_duet "$BENCH_TMP/hash8g.log" --data "$data"
    local before; before=$(buckets)
    "$PROBE" files "$DUET_FILES_PORT" "STAT huge.img" "$SECS" >"$BENCH_TMP/stat.out" &
    local stat_pid=$!
    echo "  healthz: $("$PROBE" health "$DUET_HTTP_PORT" "$SECS")"
    report hash8g "$before" "$(buckets)"
    wait "$stat_pid" || true
    echo "  STAT huge.img after ${SECS} s: $(cat "$BENCH_TMP/stat.out")"
    local t0; t0=$(date +%s%N)
    stop_pid "$DUET_PID"
    echo "  SIGTERM to exit, hash still running: $((($(date +%s%N) - t0) / 1000000)) ms"
    rm -f "$data/huge.img"
}

run_list10k() {
    local data="$BENCH_TMP/list10k"
    mkdir -p "$data"
    python3 - "$data" <<'PY'
import os, sys
for i in range(10000):
    with open(os.path.join(sys.argv[1], "file-%05d.txt" % i), "w") as f:
        f.write("%016d" % i)
PY
    start_duet "$BENCH_TMP/list10k.log" --data "$data"
    curl -s -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/files"  # waits for the index
    local before; before=$(buckets)
    "$PROBE" crowd "$DUET_HTTP_PORT" 200 "$SECS" /files >"$BENCH_TMP/crowd.out" &
    local crowd_pid=$!
    echo "  healthz: $("$PROBE" health "$DUET_HTTP_PORT" "$SECS")"
    wait "$crowd_pid" || true
    echo "  200 clients listing: $(cat "$BENCH_TMP/crowd.out") in ${SECS} s"
    report list10k "$before" "$(buckets)"
    stop_pid "$DUET_PID"
}

run_cold() {
    if [ "$(id -u)" != 0 ]; then
        echo "  skipped: dropping the page cache needs root"
        return
    fi
    local data="$BENCH_TMP/cold"
    mkdir -p "$data"
    for f in a b c; do head -c "$COLD_SIZE" /dev/urandom >"$data/$f.bin"; done
    start_duet "$BENCH_TMP/cold.log" --data "$data"
    for f in a b; do  # digests first, so the downloads measure only the reads
        curl -s -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/files/$f.bin"
    done
    sync
    echo 3 >/proc/sys/vm/drop_caches
    local t0 t1 disk
    t0=$(date +%s%N)
    dd if="$data/c.bin" of=/dev/null bs=2M status=none
    t1=$(date +%s%N)
    disk=$(awk -v b="$COLD_SIZE" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", b / ns * 1e9 / 1048576 }')
    echo "  disk cold read (dd, one file): $disk MiB/s"
    echo 3 >/proc/sys/vm/drop_caches
    local before; before=$(buckets)
    "$PROBE" health "$DUET_HTTP_PORT" "$SECS" >"$BENCH_TMP/health.out" &
    local probe_pid=$!
    t0=$(date +%s%N)
    curl -s -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/files/a.bin" &
    local c1=$!
    curl -s -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/files/b.bin" &
    local c2=$!
    wait "$c1" "$c2"
    t1=$(date +%s%N)
    echo "  two cold downloads at once: $(awk -v b=$((2 * COLD_SIZE)) -v ns=$((t1 - t0)) \
        'BEGIN { printf "%.0f", b / ns * 1e9 / 1048576 }') MiB/s together"
    wait "$probe_pid" || true
    echo "  healthz (over ${SECS} s, downloads inside): $(cat "$BENCH_TMP/health.out")"
    report cold "$before" "$(buckets)"
    stop_pid "$DUET_PID"
    rm -f "$data"/*.bin
}

run_logpipe() {
    local fifo="$BENCH_TMP/access.fifo" data="$BENCH_TMP/logpipe"
    mkdir -p "$data"
    mkfifo "$fifo"
    sleep 100000 <"$fifo" &  # holds the read end open and never reads
    local reader=$!
    track "$reader"
    : >"$BENCH_TMP/logpipe.log"
    taskset -c "$SERVER_CPU" "$DUET" --http 127.0.0.1:0 --files 127.0.0.1:0 --data "$data" \
        --access-log >"$fifo" 2>"$BENCH_TMP/logpipe.log" &
    DUET_PID=$!
    track "$DUET_PID"
    wait_ready "$BENCH_TMP/logpipe.log" 0
    local before; before=$(buckets)
    "$PROBE" crowd "$DUET_HTTP_PORT" 8 "$SECS" / >"$BENCH_TMP/crowd.out" &
    local crowd_pid=$!
    echo "  healthz: $("$PROBE" health "$DUET_HTTP_PORT" "$SECS")"
    wait "$crowd_pid" || true
    echo "  8 clients GET /: $(cat "$BENCH_TMP/crowd.out") in ${SECS} s"
    curl -s "http://127.0.0.1:$DUET_HTTP_PORT/metrics" |
        awk '/^duet_log_lines_dropped_total/ { print "  log lines dropped: " $2 }'
    report logpipe "$before" "$(buckets)"
    local t0; t0=$(date +%s%N)
    stop_pid "$DUET_PID"
    echo "  SIGTERM to exit, log reader stalled: $((($(date +%s%N) - t0) / 1000000)) ms"
    stop_pid "$reader"
}

for s in "${SCENARIOS[@]}"; do
    echo "== $s (${SECS} s)"
    "run_$s"
done
