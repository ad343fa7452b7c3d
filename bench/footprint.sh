#!/usr/bin/env bash
# Footprint: binary size, idle RSS, RSS with N idle connections (bare, and keep-alive after one
# request each), user-space bytes per idle connection, and time from fork+exec to the first
# answered GET / (median of STARTS starts).
# Idle RSS is the median over RSS_STARTS fresh starts: the kernel maps file pages 64 KiB around
# each one touched, and where those windows fall moves with address-space randomisation, so one
# start can read up to ~100 KiB more or less than the next.
# Usage: bench/footprint.sh       (env: CONNS=10000 STARTS=20 RSS_STARTS=15)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

CONNS=${CONNS:-10000}
STARTS=${STARTS:-20}
RSS_STARTS=${RSS_STARTS:-15}

need cc gcc
need nginx nginx-light
need curl curl
need taskset util-linux
build_duet
build_helper idle_conns
build_helper startup
build_helper floor_server
raise_nofile

size=$(stat -c %s "$DUET")

# rss_with MODE: start a fresh duet, read VmRSS right after ready, open CONNS connections
# (MODE "bare": connect only; "req": one GET / each, then idle keep-alive), read VmRSS again.
rss_with() {
    local mode=$1 held pid_h fifo="$BENCH_TMP/held.$1"
    start_duet "$BENCH_TMP/duet.$mode.log" --data "$BENCH_TMP/data" --max-conns 20000
    RSS_IDLE=$(status_kib "$DUET_PID" VmRSS)
    RSS_IDLE_ANON=$(status_kib "$DUET_PID" RssAnon)
    RSS_IDLE_FILE=$(status_kib "$DUET_PID" RssFile)
    mkfifo "$fifo"
    taskset -c "$LOAD_CPU" "$BENCH_BUILD/idle_conns" 127.0.0.1 "$DUET_HTTP_PORT" "$CONNS" \
        "$([ "$mode" = req ] && echo req || echo none)" >"$fifo" &
    pid_h=$!
    track "$pid_h"
    read -r held <"$fifo" || true  # "held N" once every connection is open
    [ "$held" = "held $CONNS" ] || { echo "idle_conns failed: '$held'" >&2; exit 1; }
    sleep 1  # let duet accept and settle every connection
    RSS_WITH=$(status_kib "$DUET_PID" VmRSS)
    HWM_WITH=$(status_kib "$DUET_PID" VmHWM)
    curl -fsS -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/"  # still serving
    stop_pid "$pid_h"
    stop_pid "$DUET_PID" INT
}

# idle_rss_sample: VmRSS right after the ready line of RSS_STARTS fresh starts, one per line
idle_rss_sample() {
    local i
    for i in $(seq 1 "$RSS_STARTS"); do
        start_duet "$BENCH_TMP/duet.idle.log" --data "$BENCH_TMP/data" --max-conns 20000
        status_kib "$DUET_PID" VmRSS
        stop_pid "$DUET_PID" INT
    done
}
idle_rss_sample >"$BENCH_TMP/idle_rss"
rss_med=$(median <"$BENCH_TMP/idle_rss")
rss_min=$(sort -g "$BENCH_TMP/idle_rss" | head -1)
rss_max=$(sort -g "$BENCH_TMP/idle_rss" | tail -1)

rss_with bare
idle_kib=$RSS_IDLE; idle_anon_kib=$RSS_IDLE_ANON; idle_file_kib=$RSS_IDLE_FILE; bare_kib=$RSS_WITH
rss_with req
idle2_kib=$RSS_IDLE; req_kib=$RSS_WITH; req_hwm=$HWM_WITH

per_conn() { awk -v a="$1" -v b="$2" -v n="$CONNS" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'; }

port=$(free_port)
mkdir -p "$BENCH_TMP/data-start"
start_cmd="$BENCH_BUILD/startup $STARTS $port $DUET --http 127.0.0.1:$port --files 127.0.0.1:0 --data $BENCH_TMP/data-start"
# shellcheck disable=SC2086
taskset -c "$LOAD_CPU" $start_cmd >"$BENCH_TMP/starts"
start_med=$(median <"$BENCH_TMP/starts")

# the floor: a 20-line C server that only binds and answers, under the same helper
floor_start_cmd="$BENCH_BUILD/startup $STARTS $port $BENCH_BUILD/floor_server $port"
# shellcheck disable=SC2086
taskset -c "$LOAD_CPU" $floor_start_cmd >"$BENCH_TMP/starts.floor"
floor_start_med=$(median <"$BENCH_TMP/starts.floor")

# the same for nginx (one process, master_process off), as a reference for this machine's noise
nginx_conf "$port"
ngx_start_cmd="$BENCH_BUILD/startup $STARTS $port $(command -v nginx) -p $BENCH_TMP/nginx -c $BENCH_TMP/nginx/nginx.conf"
# shellcheck disable=SC2086
taskset -c "$LOAD_CPU" $ngx_start_cmd >"$BENCH_TMP/starts.nginx"
ngx_start_med=$(median <"$BENCH_TMP/starts.nginx")
start_nginx
ngx_rss=$(status_kib "$NGINX_PID" VmRSS)
ngx_anon=$(status_kib "$NGINX_PID" RssAnon)
stop_pid "$NGINX_PID" INT
start_min=$(sort -g "$BENCH_TMP/starts" | head -1)
start_max=$(sort -g "$BENCH_TMP/starts" | tail -1)

echo
echo "== bench/footprint.sh (load average: $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-52s %14s  %s\n' measure value target
printf '%-52s %10.1f KiB  < 300 KiB (%d bytes)\n' "binary size (stat -c %s build/duet)" "$(awk -v s="$size" 'BEGIN { print s / 1024 }')" "$size"
printf '%-52s %10.2f MiB  < 2 MiB  (min %.2f, max %.2f)\n' "idle RSS (VmRSS right after ready), median of $RSS_STARTS" "$(awk -v k="$rss_med" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss_min" 'BEGIN { print k / 1024 }')" "$(awk -v k="$rss_max" 'BEGIN { print k / 1024 }')"
printf '%-52s %10.2f MiB  anon (RssAnon); %.2f MiB file-backed (RssFile: binary + shared libraries)\n' "  of which, in the first connection run's start" "$(awk -v k="$idle_anon_kib" 'BEGIN { print k / 1024 }')" "$(awk -v k="$idle_file_kib" 'BEGIN { print k / 1024 }')"
printf '%-52s %10.2f MiB  (anon %.2f MiB, file-backed/shared libs %.2f MiB)\n' "  nginx idle RSS (worker_connections $BENCH_MAX_CONNS)" "$(awk -v k="$ngx_rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$ngx_anon" 'BEGIN { print k / 1024 }')" "$(awk -v a="$ngx_anon" -v k="$ngx_rss" 'BEGIN { print (k - a) / 1024 }')"
printf '%-52s %10.2f MiB\n' "RSS with $CONNS bare idle connections" "$(awk -v k="$bare_kib" 'BEGIN { print k / 1024 }')"
printf '%-52s %10s B    < 256 B\n' "  user-space bytes per bare idle connection" "$(per_conn "$idle_kib" "$bare_kib")"
printf '%-52s %10.2f MiB  (peak %.2f MiB)\n' "RSS with $CONNS keep-alive conns after 1 GET / each" "$(awk -v k="$req_kib" 'BEGIN { print k / 1024 }')" "$(awk -v k="$req_hwm" 'BEGIN { print k / 1024 }')"
printf '%-52s %10s B    < 256 B\n' "  user-space bytes per idle keep-alive connection" "$(per_conn "$idle2_kib" "$req_kib")"
printf '%-52s %10.2f ms   < 5 ms  (min %.2f, max %.2f)\n' "fork+exec to first answered GET /, median of $STARTS" "$start_med" "$start_min" "$start_max"
printf '%-52s %10.2f ms   (min %.2f, max %.2f)\n' "  floor: bench/floor_server.c, same helper" "$floor_start_med" "$(sort -g "$BENCH_TMP/starts.floor" | head -1)" "$(sort -g "$BENCH_TMP/starts.floor" | tail -1)"
printf '%-52s %10.2f ms   (min %.2f, max %.2f)\n' "  nginx, same helper, for reference" "$ngx_start_med" "$(sort -g "$BENCH_TMP/starts.nginx" | head -1)" "$(sort -g "$BENCH_TMP/starts.nginx" | tail -1)"
echo
echo "commands:"
echo "  stat -c %s $DUET"
echo "  taskset -c $SERVER_CPU $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR --max-conns 20000   # VmRSS from /proc/PID/status"
echo "  taskset -c $LOAD_CPU $BENCH_BUILD/idle_conns 127.0.0.1 PORT $CONNS none|req   # bench/idle_conns.c; RSS read 1 s after all are open"
echo "  taskset -c $LOAD_CPU $BENCH_BUILD/startup $STARTS PORT $DUET --http 127.0.0.1:PORT --files 127.0.0.1:0 --data DIR   # bench/startup.c, duet pinned to CPU $SERVER_CPU"
echo "  taskset -c $LOAD_CPU $BENCH_BUILD/startup $STARTS PORT $(command -v nginx) -p PREFIX -c PREFIX/nginx.conf   # reference: 1 worker, master_process off, worker_connections $BENCH_MAX_CONNS"
echo "  (duet runs with --max-conns 20000 here so that $CONNS connections fit; it allocates nothing per"
echo "   unused slot, so its idle RSS and start do not depend on --max-conns. nginx does preallocate.)"
echo "  ulimit -n $(ulimit -n)"
