#!/usr/bin/env bash
# The loop while a browser opens a big folder (README "The loop never waits"): a folder of FILES
# files (default 6,000; the page carries the first 5,000, about 2.3 MB of HTML), REQUESTS page
# requests (default 20, `curl -H 'Accept: text/html'` on LOAD_CPU, one after the other), a fresh
# duet on SERVER_CPU for each of ROUNDS rounds (default 3). Prints per round the loop's longest
# step (duet_loop_stall_max_seconds) and how many steps took over 5 ms, from duet's own
# histogram. DUET=/path/to/other/duet runs another build the same way, to compare.
# Usage: bench/page_stall.sh   (env: ROUNDS=3 FILES=6000 REQUESTS=20 DUET=build/duet)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
FILES=${FILES:-6000}
REQUESTS=${REQUESTS:-20}
need curl curl
need taskset util-linux
build_duet

DATA="$BENCH_TMP/data"
mkdir -p "$DATA/big"
for i in $(seq 1 "$FILES"); do echo "$i" >"$DATA/big/f$i.txt"; done

metric() { awk -v m="$1" '$1 == m { print $2 }'; }
echo "round  longest step (ms)  steps over 5 ms  (of $REQUESTS page requests, $FILES files)"
for round in $(seq 1 "$ROUNDS"); do
    start_duet "$BENCH_TMP/duet.log" --data "$DATA"
    base="http://127.0.0.1:$DUET_HTTP_PORT"
    # Copied in by hand: each file is listed once hashed.
    for _ in $(seq 1 600); do
        [ "$(curl -fsS "$base/files/big/" | grep -o '"name"' | wc -l)" = "$FILES" ] && break
        sleep 0.1
    done
    m=$(curl -fsS "$base/metrics")
    before=$(metric 'duet_loop_stall_seconds_bucket{le="+Inf"}' <<<"$m")
    quick=$(metric 'duet_loop_stall_seconds_bucket{le="0.005"}' <<<"$m")
    for _ in $(seq 1 "$REQUESTS"); do
        taskset -c "$LOAD_CPU" curl -fsS -o /dev/null -H 'Accept: text/html' "$base/files/big/"
    done
    m=$(curl -fsS "$base/metrics")
    after=$(metric 'duet_loop_stall_seconds_bucket{le="+Inf"}' <<<"$m")
    quick_after=$(metric 'duet_loop_stall_seconds_bucket{le="0.005"}' <<<"$m")
    max=$(metric duet_loop_stall_max_seconds <<<"$m")
    printf '%5d  %17.1f  %15d\n' "$round" "$(awk -v s="$max" 'BEGIN { print s * 1000 }')" \
        "$(((after - before) - (quick_after - quick)))"
    stop_pid "$DUET_PID"
done
echo "command: taskset -c $SERVER_CPU $DUET --data DATA (DATA/big: $FILES files); taskset -c $LOAD_CPU curl -H 'Accept: text/html' http://127.0.0.1:PORT/files/big/"
