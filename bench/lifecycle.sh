#!/usr/bin/env bash
# Lifecycle: stop latency (SIGINT to exit, idle and with 1,000 idle keep-alive connections), reload
# latency (cp -f over a --reload copy of the binary to the next generation's ready line, minus the
# 150 ms debounce), and RELOADS SIGHUP reloads (one a second) under wrk -t1 -c64 on GET /, counting
# wrk socket errors and non-2xx responses, twice: with keep-alive connections (handed over to the
# new image, never reconnecting) and with `Connection: close` (a new connection per request, so
# connections keep arriving during every reload and the listen backlog path is exercised: a
# refused connection shows up as a connect error). Then reloads with every kind of connection in flight
# (bench/reload_busy.c: BUSY_RELOADS reloads beside IDLE_RELOADS idle ones, fresh /healthz during
# them, every transfer checked), and LONG_RELOADS more under the same load for fd and RSS.
# duet on SERVER_CPU, clients on LOAD_CPU.
# Usage: bench/lifecycle.sh       (env: RUNS=10 CONNS=1000 RELOADS=20 BUSY_RELOADS=20
#                                  LONG_RELOADS=1000; reload_busy.c's own: DOWNLOADS=50 UPLOADS=10
#                                  HALF=20 IDLE=20 LISTS=10 RATE=5000000 UPLOAD_BYTES=67108864)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-10}
CONNS=${CONNS:-1000}
RELOADS=${RELOADS:-20}
BUSY_RELOADS=${BUSY_RELOADS:-20}
LONG_RELOADS=${LONG_RELOADS:-1000}
BIG_MIB=${BIG_MIB:-64}
LIST_FILES=${LIST_FILES:-2000}
WRK_SECONDS=$((RELOADS + 0))

need wrk wrk
need curl curl
need cc gcc
need taskset util-linux
build_duet
build_helper lifecycle
build_helper reload_busy
raise_nofile
LC="$BENCH_BUILD/lifecycle"
ARGS=(--http 127.0.0.1:0 --files 127.0.0.1:0 --data "$BENCH_TMP/data")

# 1. stop latency
taskset -c "$LOAD_CPU" "$LC" stop 0 "$RUNS" "$DUET" "${ARGS[@]}" >"$BENCH_TMP/stop0"
taskset -c "$LOAD_CPU" "$LC" stop "$CONNS" "$RUNS" "$DUET" "${ARGS[@]}" >"$BENCH_TMP/stopN"
bad_exit=$(awk '$2 != 0' "$BENCH_TMP/stop0" "$BENCH_TMP/stopN" | wc -l)

# 2. reload latency: cp -f over a copy started with --reload
mkdir -p "$BENCH_TMP/bin"
cp "$DUET" "$BENCH_TMP/bin/duet"
taskset -c "$LOAD_CPU" "$LC" reload "$RUNS" "$DUET" "$BENCH_TMP/bin/duet" --reload "${ARGS[@]}" >"$BENCH_TMP/reload"
awk '{ printf "%.3f\n", $1 - 150 }' "$BENCH_TMP/reload" >"$BENCH_TMP/reload_net"
early=$(awk '$1 < 150' "$BENCH_TMP/reload" | wc -l)
awk '$1 >= 150 { printf "%.3f\n", $1 - 150 }' "$BENCH_TMP/reload" >"$BENCH_TMP/reload_ok"

# 3. SIGHUP reloads under wrk load; MODE keepalive or close. Sets R_* for the report.
declare -A R_DONE R_GEN R_REQ R_ERR R_ERRS R_NON2XX R_LAT WRK_CMDS
reloads_under() {
    local mode=$1 hdr=() gen t0 left line
    [ "$mode" = close ] && hdr=(-H "Connection: close")
    start_duet "$BENCH_TMP/duet.$mode.log" "${ARGS[@]:4}"
    local cmd=(taskset -c "$LOAD_CPU" wrk -t1 -c64 -d"${WRK_SECONDS}s" --latency "${hdr[@]}"
               -s "$BENCH_DIR/count.lua" "http://127.0.0.1:$DUET_HTTP_PORT/")
    WRK_CMDS[$mode]="${cmd[*]/$DUET_HTTP_PORT/PORT}"
    "${cmd[@]}" >"$BENCH_TMP/wrk.$mode.out" &
    local wrk_pid=$!
    track "$wrk_pid"
    sleep 0.5
    R_DONE[$mode]=0
    for gen in $(seq 1 "$RELOADS"); do
        t0=$(now_ns)
        kill -HUP "$DUET_PID"
        for _ in $(seq 1 90); do grep -q "generation=$gen\$" "$BENCH_TMP/duet.$mode.log" && break; sleep 0.01; done
        grep -q "generation=$gen\$" "$BENCH_TMP/duet.$mode.log" && R_DONE[$mode]=$gen
        left=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { d = 0.95 - (b - a) / 1e9; print (d > 0 ? d : 0) }')
        [ "$gen" -lt "$RELOADS" ] && sleep "$left"
    done
    wait "$wrk_pid" || true
    untrack "$wrk_pid"
    kill -0 "$DUET_PID"  # still the same process
    line=$(grep '^RESULT ' "$BENCH_TMP/wrk.$mode.out") || { cat "$BENCH_TMP/wrk.$mode.out" >&2; exit 1; }
    get() { sed "s/.* $1=\([0-9]*\).*/\1/" <<<"$line"; }
    R_REQ[$mode]=$(get requests)
    R_ERR[$mode]=$(($(get connect) + $(get read) + $(get write) + $(get timeout)))
    R_ERRS[$mode]="connect $(get connect), read $(get read), write $(get write), timeout $(get timeout)"
    R_NON2XX[$mode]=$(get non2xx)
    R_LAT[$mode]="$(awk -v v="$(get p50_us)" 'BEGIN { printf "%.3f", v / 1000 }') / $(awk -v v="$(get p99_us)" 'BEGIN { printf "%.3f", v / 1000 }')"
    R_GEN[$mode]=$(curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/" | sed 's/.*"generation":\([0-9]*\).*/\1/')
    stop_pid "$DUET_PID" INT
}
reloads_under keepalive
reloads_under close

# 4. reloads with everything in flight (issue 12), then many more for fd and RSS
BUSY_DATA="$BENCH_TMP/busy"
mkdir -p "$BUSY_DATA"
head -c $((BIG_MIB << 20)) /dev/urandom >"$BUSY_DATA/big"
pad=$(printf 'x%.0s' $(seq 1 240))
for i in $(seq -w 1 "$LIST_FILES"); do : >"$BUSY_DATA/l$i$pad"; done
RB="$BENCH_BUILD/reload_busy"
# The half-sent heads and command lines must outlive the run (1,000 reloads take longer than the
# default 10 s --header-timeout, whose deadline crosses each reload unchanged).
BUSY_ARGS=(--http 127.0.0.1:0 --files 127.0.0.1:0 --data "$BUSY_DATA" --header-timeout 600)
LIST_NAMES=$LIST_FILES
export LIST_FILES=$((LIST_FILES + 1))  # what a LIST counts: the names and big
taskset -c "$LOAD_CPU" "$RB" "$BUSY_RELOADS" "$BUSY_DATA" "$DUET" "${BUSY_ARGS[@]}" >"$BENCH_TMP/busy.out" ||
    { cat "$BENCH_TMP/busy.out" >&2; echo "reload_busy failed" >&2; }
rm -f "$BUSY_DATA"/up* "$BUSY_DATA"/fup*
# Slower transfers for the long run, so that every connection is still open at its end and the
# fd count compares like with like (at 5 MB/s a 64 MiB download ends within the 1,000 reloads).
IDLE_RELOADS=0 GAP_MS=${LONG_GAP_MS:-5} RATE=${LONG_RATE:-1000000} taskset -c "$LOAD_CPU" "$RB" "$LONG_RELOADS" "$BUSY_DATA" \
    "$DUET" "${BUSY_ARGS[@]}" >"$BENCH_TMP/long.out" ||
    { cat "$BENCH_TMP/long.out" >&2; echo "reload_busy (long) failed" >&2; }
field() { awk -v k="$2" -v f="$3" '$1 == k { for (i = 2; i < NF; i++) if ($i == f) print $(i + 1) }' "$1"; }

st() { printf '%8.3f %8.3f %8.3f' "$(median <"$1")" "$(sort -g "$1" | head -1)" "$(sort -g "$1" | tail -1)"; }
echo
echo "== bench/lifecycle.sh (load average: $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-58s %8s %8s %8s  %s\n' "measure (ms)" median min max target
printf '%-58s %s  < 2 ms\n' "stop, idle: SIGINT to exit ($RUNS runs)" "$(awk '{ print $1 }' "$BENCH_TMP/stop0" >"$BENCH_TMP/s0"; st "$BENCH_TMP/s0")"
printf '%-58s %s  < 50 ms\n' "stop, $CONNS idle keep-alive connections ($RUNS runs)" "$(awk '{ print $1 }' "$BENCH_TMP/stopN" >"$BENCH_TMP/sN"; st "$BENCH_TMP/sN")"
printf '%-58s %s  < 50 ms\n' "reload: cp -f exit to new ready line, minus 150 ($RUNS runs)" "$(st "$BENCH_TMP/reload_net")"
[ -s "$BENCH_TMP/reload_ok" ] && printf '%-58s %s  < 50 ms\n' "  the same, only runs that waited the debounce ($((RUNS - early)))" "$(st "$BENCH_TMP/reload_ok")"
printf '%-58s %s\n' "  cp -f itself" "$(awk '{ print $2 }' "$BENCH_TMP/reload" >"$BENCH_TMP/cp"; st "$BENCH_TMP/cp")"
echo "  exit status other than 0 after SIGINT: $bad_exit run(s)"
echo "  reloads that fired less than 150 ms after cp -f exited (debounce cut short): $early of $RUNS"
echo
for mode in keepalive close; do
    printf '%-58s %s\n' "SIGHUP reloads under wrk -c64 $mode (one a second)" "${R_DONE[$mode]} of $RELOADS done, final generation ${R_GEN[$mode]}, same pid"
    printf '%-58s %s\n' "  wrk requests" "${R_REQ[$mode]}"
    printf '%-58s %s  (%s)  target 0\n' "  wrk socket errors" "${R_ERR[$mode]}" "${R_ERRS[$mode]}"
    printf '%-58s %s  target 0\n' "  non-2xx responses" "${R_NON2XX[$mode]}"
    printf '%-58s %s ms\n' "  wrk p50 / p99 latency over the run" "${R_LAT[$mode]}"
done
echo
printf '%-58s %8s %8s %8s  %s\n' "reload, SIGHUP to new ready line (ms)" median min max target
printf '%-58s %8s %8s %8s\n' "  idle ($(field "$BENCH_TMP/busy.out" reload_idle_ms count) runs)" \
    "$(field "$BENCH_TMP/busy.out" reload_idle_ms median)" "$(field "$BENCH_TMP/busy.out" reload_idle_ms min)" \
    "$(field "$BENCH_TMP/busy.out" reload_idle_ms max)"
printf '%-58s %8s %8s %8s  < 20 / < 50 ms\n' "  $(field "$BENCH_TMP/busy.out" connections count) connections in flight ($(field "$BENCH_TMP/busy.out" reload_busy_ms count) runs)" \
    "$(field "$BENCH_TMP/busy.out" reload_busy_ms median)" "$(field "$BENCH_TMP/busy.out" reload_busy_ms min)" \
    "$(field "$BENCH_TMP/busy.out" reload_busy_ms max)"
printf '%-58s %s ms max, %s mean, %s errors  max < 50 ms\n' "  fresh /healthz during those reloads" \
    "$(field "$BENCH_TMP/busy.out" healthz_fresh_ms max)" "$(field "$BENCH_TMP/busy.out" healthz_fresh_ms mean)" \
    "$(field "$BENCH_TMP/busy.out" healthz_fresh_ms errors)"
printf '%-58s %s  target 0\n' "  transfers failed or unfinished" "$(field "$BENCH_TMP/busy.out" connections errors)"
printf '%-58s fds %s -> %s, RSS %s -> %s KiB; reload median %s ms, max %s; %s errors\n' \
    "$LONG_RELOADS reloads under the same load (after 10 -> end)" \
    "$(field "$BENCH_TMP/long.out" server fds_after_10)" "$(field "$BENCH_TMP/long.out" server fds_end)" \
    "$(field "$BENCH_TMP/long.out" server rss_kib_after_10)" "$(field "$BENCH_TMP/long.out" server rss_kib_end)" \
    "$(field "$BENCH_TMP/long.out" reload_busy_ms median)" "$(field "$BENCH_TMP/long.out" reload_busy_ms max)" \
    "$(field "$BENCH_TMP/long.out" connections errors)"
echo
echo "commands:"
echo "  taskset -c $LOAD_CPU $LC stop 0 $RUNS $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR   # bench/lifecycle.c; duet pinned to CPU $SERVER_CPU"
echo "  taskset -c $LOAD_CPU $LC stop $CONNS $RUNS $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR"
echo "  taskset -c $LOAD_CPU $LC reload $RUNS $DUET TMP/duet --reload --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR   # cp -f $DUET TMP/duet every ~0.3 s"
echo "  taskset -c $SERVER_CPU $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR; kill -HUP PID once a second, $RELOADS times, during:"
echo "  ${WRK_CMDS[keepalive]}"
echo "  and, on a fresh duet, ${WRK_CMDS[close]}"
echo "  taskset -c $LOAD_CPU $RB $BUSY_RELOADS DIR $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR --header-timeout 600   # DIR: big ($BIG_MIB MiB) + $LIST_NAMES long-named files"
echo "  IDLE_RELOADS=0 GAP_MS=5 RATE=1000000 taskset -c $LOAD_CPU $RB $LONG_RELOADS DIR $DUET ...   # fd and RSS over many reloads"
