# shellcheck shell=bash
# Shared shell functions for the bench/ scripts. Source it after `set -euo pipefail`.
# Every process started through these functions is recorded and stopped by PID in the EXIT trap.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$ROOT/bench"
BENCH_BUILD="$ROOT/build/bench"
DUET=${DUET:-$ROOT/build/duet}  # another binary to compare: DUET=/path bash bench/...
SERVER_CPU=${SERVER_CPU:-0}  # duet and nginx
# One connection limit for both servers: nginx worker_connections and duet --max-conns.
BENCH_MAX_CONNS=${BENCH_MAX_CONNS:-1024}
LOAD_CPU=${LOAD_CPU:-1}      # wrk, curl, nc and the helpers
BENCH_PIDS=()
BENCH_TMP=$(mktemp -d /tmp/duet-bench.XXXXXX)

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        # give each a moment, then force it
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

track() { BENCH_PIDS+=("$1"); }

# forget PID after it was stopped on purpose
untrack() {
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

# stop PID started by us: SIGTERM (or $2), wait for it, forget it
stop_pid() {
    local pid=$1 sig=${2:-TERM}
    kill -"$sig" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    untrack "$pid"
}

# need CMD PACKAGE...: apt-get install PACKAGE when CMD is missing
need() {
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    echo "installing $* (for $cmd)" >&2
    if [ -z "${BENCH_APT_UPDATED:-}" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        BENCH_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

build_duet() { make -s -C "$ROOT" build/duet >&2; }

# build_helper NAME: compile bench/NAME.c into build/bench/NAME when stale
build_helper() {
    local src="$BENCH_DIR/$1.c" bin="$BENCH_BUILD/$1"
    mkdir -p "$BENCH_BUILD"
    if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$BENCH_DIR/http_client.h" -nt "$bin" ]; then
        cc -O2 -Wall -Wextra -Werror -std=gnu11 -o "$bin" "$src" -lm
    fi
}

raise_nofile() { ulimit -n "$(ulimit -Hn)"; }

# start_duet LOG [ARGS...]: start duet pinned to SERVER_CPU on free ports, wait for the ready line.
# Sets DUET_PID, DUET_HTTP_PORT, DUET_FILES_PORT.
start_duet() {
    local log=$1; shift
    : >"$log"
    taskset -c "$SERVER_CPU" "$DUET" --http 127.0.0.1:0 --files 127.0.0.1:0 "$@" 2>"$log" &
    DUET_PID=$!
    track "$DUET_PID"
    wait_ready "$log" 0
}

# float_helpers PID: duet's loop (the main thread) stays on SERVER_CPU; its helper threads (which
# write and hash uploads, README "Uploads never hold the loop") may run on both CPUs, as they would
# on a server whose clients are elsewhere.
float_helpers() {
    local t
    for t in /proc/"$1"/task/*; do
        [ "${t##*/}" = "$1" ] || taskset -p -c "$SERVER_CPU,$LOAD_CPU" "${t##*/}" >/dev/null
    done
}

# big_file FILE MIB: FILE holds MIB MiB of random bytes (made once, kept for later runs), and is
# read into the page cache
big_file() {
    if [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" != "$(($2 << 20))" ]; then
        echo "making $1 ($2 MiB of random bytes, kept for later runs)" >&2
        head -c "$(($2 << 20))" /dev/urandom >"$1.tmp" && mv "$1.tmp" "$1"
    fi
    cat "$1" >/dev/null
}

# wait_ready LOG GENERATION: wait (max 10 s) for the ready line of GENERATION, parse its ports
wait_ready() {
    local log=$1 gen=$2 line=""
    for _ in $(seq 1 1000); do
        line=$(grep -m1 "^duet: ready .* generation=$gen\$" "$log" || true)
        [ -n "$line" ] && break
        sleep 0.01
    done
    [ -n "$line" ] || { echo "duet did not get ready; log:" >&2; cat "$log" >&2; exit 1; }
    DUET_HTTP_PORT=$(sed 's/.* http=[^ ]*:\([0-9]*\) .*/\1/' <<<"$line")
    DUET_FILES_PORT=$(sed 's/.* files=[^ ]*:\([0-9]*\) .*/\1/' <<<"$line")
}

# free_port: a TCP port below the ephemeral range that no socket uses
free_port() {
    local p
    while :; do
        p=$((12000 + RANDOM % 20000))
        ss -Htan "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

# start_nginx [SENDFILE_ROOT]: one nginx process (master_process off) pinned to SERVER_CPU on a
# free port, answering every request with duet's GET / body, or serving SENDFILE_ROOT under
# /files/. Sets NGINX_PID and NGINX_PORT; tries another port if the chosen one got taken.
start_nginx() {
    local try
    for _ in 1 2 3 4 5; do
        NGINX_PORT=$(free_port)
        start_nginx_on "$NGINX_PORT" "${1:-}" && return 0
    done
    echo "nginx did not start" >&2; cat "$BENCH_TMP/nginx/logs/stderr" >&2; exit 1
}

# nginx_conf PORT [SENDFILE_ROOT]: write $BENCH_TMP/nginx/nginx.conf
nginx_conf() {
    local port=$1 root=${2:-} prefix="$BENCH_TMP/nginx"
    mkdir -p "$prefix/logs" "$prefix/tmp"
    local files_loc=""
    [ -n "$root" ] && files_loc="location /files/ { alias $root/; sendfile on; }"
    cat >"$prefix/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $((BENCH_MAX_CONNS * 2 + 64));
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
# The same connection limit duet runs with in every script (--max-conns \$BENCH_MAX_CONNS):
# nginx preallocates its connection table, so a larger value inflates its footprint and start.
events { worker_connections $BENCH_MAX_CONNS; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 100000000;
    sendfile on;
    client_body_temp_path $prefix/tmp;
    proxy_temp_path $prefix/tmp;
    fastcgi_temp_path $prefix/tmp;
    uwsgi_temp_path $prefix/tmp;
    scgi_temp_path $prefix/tmp;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 '{"name":"duet","version":"1.0.0","generation":0}\n'; }
        $files_loc
    }
}
EOF
}

start_nginx_on() {
    local port=$1 prefix="$BENCH_TMP/nginx"
    nginx_conf "$port" "${2:-}"
    taskset -c "$SERVER_CPU" nginx -p "$prefix" -c "$prefix/nginx.conf" 2>"$prefix/logs/stderr" &
    NGINX_PID=$!
    track "$NGINX_PID"
    for _ in $(seq 1 500); do
        kill -0 "$NGINX_PID" 2>/dev/null || { wait "$NGINX_PID" || true; untrack "$NGINX_PID"; return 1; }
        curl -fs -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
        sleep 0.01
    done
    return 1
}

# cpu_ticks PID: utime+stime of PID in clock ticks (fields 14 and 15 of /proc/PID/stat)
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)

# status_kib PID FIELD: a VmRSS/VmHWM-style field of /proc/PID/status, in KiB
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# reset_hwm PID: reset the peak RSS (VmHWM) to the current RSS
reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }

now_ns() { date +%s%N; }

# median of the numbers on stdin
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# percentile P of the numbers on stdin (nearest rank)
percentile() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'; }

# spread: "median (min–max)" of the numbers on stdin, printf format $1 (default %.2f)
spread() {
    sort -g | awk -v f="${1:-%.2f}" '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf f " (" f "–" f ")\n", m, v[1], v[NR] }'
}

# verdict LINE [ge|le]: reads one ratio per round on stdin; prints "met" only when every round
# (the whole min–max range) is on the right side of LINE, "not met" when every round is on the
# wrong side, else "unclear (the spread straddles LINE)". A median alone never meets a target.
verdict() {
    sort -g | awk -v line="$1" -v dir="${2:-ge}" -v need="${MIN_ROUNDS:-5}" '{ v[NR] = $1 } END {
        if (NR == 0) { print "no data"; exit }
        if (NR < need) { print "unclear (" NR " rounds, " need " needed)"; exit }
        lo = v[1]; hi = v[NR]
        if (dir == "ge") { if (lo >= line) print "met"; else if (hi < line) print "not met"; else print "unclear (the spread straddles " line ")" }
        else { if (hi <= line) print "met"; else if (lo > line) print "not met"; else print "unclear (the spread straddles " line ")" } }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", a / b }'; }
