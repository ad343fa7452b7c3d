#!/usr/bin/env bash
# A reload while slow clients stream big listings (issue 10: no loop step grows with the store).
# FILES empty files in a store on tmpfs, CLIENTS curls reading GET /files at RATE each (so each
# still owes nearly the whole listing), then ROUNDS SIGHUPs one after another, each while the
# curls still read (every reload's streams are new curls). bench/probe.c asks GET / 1000 times a
# second meanwhile (on SERVER_CPU, as in bench/stall.sh; not /healthz, which answers 503 while a
# reload runs). For each reload: SIGHUP to the new ready line, the loop steps during it from
# duet's duet_loop_stall_seconds (it carries over a reload, the hand-over step included), and the
# probe's max over the reload (from 5 ms before the SIGHUP to 200 ms after the ready line).
# Usage: bash bench/reload_listing.sh   env: FILES=100000 CLIENTS=6 RATE=200k ROUNDS=5
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FILES=${FILES:-100000}
CLIENTS=${CLIENTS:-6}
RATE=${RATE:-200k}
ROUNDS=${ROUNDS:-5}
need curl taskset
build_duet
build_helper probe
echo "command: FILES=$FILES CLIENTS=$CLIENTS RATE=$RATE ROUNDS=$ROUNDS bash bench/reload_listing.sh"

store=$(mktemp -d /dev/shm/duet-bench-reload.XXXXXX)
trap 'rm -rf "$store"; bench_cleanup' EXIT
mkdir "$store/data"
(cd "$store/data" && seq -f "f%06g-padding-that-makes-each-entry-longer" 0 $((FILES - 1)) |
    xargs touch)
log="$BENCH_TMP/duet.log"
start_duet "$log" --data "$store/data"
url() { echo "http://127.0.0.1:$DUET_HTTP_PORT$1"; }
length=$(curl -s -o /dev/null -w '%{size_download}' "$(url /files)")  # waits for the index
echo "store: $FILES files, a listing is $length bytes"
# steps: "count over1ms over10ms over50ms" from duet's loop-step histogram
steps() {
    curl -s "$(url /metrics)" | awk '
        $1 == "duet_loop_stall_seconds_count" { n = $2 }
        $1 == "duet_loop_stall_seconds_bucket{le=\"0.001\"}" { a = $2 }
        $1 == "duet_loop_stall_seconds_bucket{le=\"0.01\"}" { b = $2 }
        $1 == "duet_loop_stall_seconds_bucket{le=\"0.05\"}" { c = $2 }
        END { print n, n - a, n - b, n - c }'
}
probe_file="$BENCH_TMP/probe.txt"
: >"$probe_file"
PROBE_STAMPS=1 taskset -c "$SERVER_CPU" "$BENCH_BUILD/probe" "$DUET_HTTP_PORT" 1000 "$probe_file" \
    1000 / 2>/dev/null &
track $!
printf '%-6s %10s %8s %9s %10s %10s %12s\n' round reload_ms steps over_1ms over_10ms over_50ms probe_max
for r in $(seq 1 "$ROUNDS"); do
    pids=()
    for c in $(seq 1 "$CLIENTS"); do
        taskset -c "$LOAD_CPU" curl -s --limit-rate "$RATE" -o "$BENCH_TMP/list.$r.$c" "$(url /files)" &
        pids+=($!)
    done
    sleep 0.5  # the curls have their heads and their first bytes: each owes nearly all
    read -r n0 a0 b0 c0 <<<"$(steps)"
    t0=$(now_ns)
    kill -HUP "$DUET_PID"
    wait_ready "$log" "$r"
    t1=$(now_ns)
    sleep 0.2
    read -r n1 a1 b1 c1 <<<"$(steps)"
    max=$(awk -v a=$((t0 / 1000000)) -v b=$((t1 / 1000000 + 200)) \
        '$1 >= a - 5 && $1 <= b { if ($2 == "inf" || $2 > m) m = $2 } END { print m + 0 }' "$probe_file")
    printf '%-6s %10.1f %8s %9s %10s %10s %9s ms\n' "$r" "$(((t1 - t0) / 1000))e-3" $((n1 - n0)) \
        $((a1 - a0)) $((b1 - b0)) $((c1 - c0)) "$max"
    for p in "${pids[@]}"; do stop_pid "$p"; done  # the next round's reload gets new streams
done
echo "reloads that wrote $CLIENTS streams ahead: $(grep -c "writing ahead what $CLIENTS streamed" "$log")"
