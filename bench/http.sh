#!/usr/bin/env bash
# HTTP core: duet vs nginx (one worker, `return 200` with duet's GET / body), both pinned to
# SERVER_CPU, wrk pinned to LOAD_CPU, alternating duet/nginx in the same run, ROUNDS rounds of
# DURATION seconds per row. Reports requests/s, server CPU seconds, requests per server-CPU-second,
# p50/p99 (medians over the rounds) and the duet/nginx ratios.
# Usage: bench/http.sh            (env: ROUNDS=3 DURATION=10)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}

need wrk wrk
need nginx nginx-light
need curl curl
need taskset util-linux
build_duet
raise_nofile

start_duet "$BENCH_TMP/duet.log" --data "$BENCH_TMP/data" --max-conns 20000
start_nginx

body_duet=$(curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/")
body_nginx=$(curl -fsS "http://127.0.0.1:$NGINX_PORT/")
[ "$body_duet" = "$body_nginx" ] || { echo "bodies differ: $body_duet / $body_nginx" >&2; exit 1; }

declare -A ROW_ARGS=(
    [keepalive-c64]="-t1 -c64 -s $BENCH_DIR/report.lua"
    [keepalive-c1000]="-t1 -c1000 -s $BENCH_DIR/report.lua"
    [pipelined16-c64]="-t1 -c64 -s $BENCH_DIR/pipeline.lua"
)
ROWS=(keepalive-c64 keepalive-c1000 pipelined16-c64)
RESULTS="$BENCH_TMP/results"
: >"$RESULTS"

# run_wrk SERVER ROW ROUND: one wrk run; appends "row server round rps cpu_s rps_per_cpu p50 p99 errors"
run_wrk() {
    local server=$1 row=$2 round=$3 pid port out t0 t1
    if [ "$server" = duet ]; then pid=$DUET_PID; port=$DUET_HTTP_PORT; else pid=$NGINX_PID; port=$NGINX_PORT; fi
    # shellcheck disable=SC2086
    local cmd="taskset -c $LOAD_CPU wrk ${ROW_ARGS[$row]} -d${DURATION}s --latency http://127.0.0.1:$port/"
    t0=$(cpu_ticks "$pid")
    out=$($cmd)
    t1=$(cpu_ticks "$pid")
    local line
    line=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; exit 1; }
    awk -v row="$row" -v srv="$server" -v rnd="$round" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] } }
        END {
            rps = r["requests"] / (r["duration_us"] / 1e6); cpu = (t1 - t0) / hz
            err = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            printf "%s %s %d %.0f %.2f %.0f %.3f %.3f %d\n", row, srv, rnd, rps, cpu,
                (cpu > 0 ? r["requests"] / cpu : 0), r["p50_us"] / 1000, r["p99_us"] / 1000, err
        }' <<<"$line" | tee -a "$RESULTS" >&2
    CMDS["$server $row"]=$cmd
}
declare -A CMDS

echo "warm-up" >&2
taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s "http://127.0.0.1:$DUET_HTTP_PORT/" >/dev/null
taskset -c "$LOAD_CPU" wrk -t1 -c64 -d2s "http://127.0.0.1:$NGINX_PORT/" >/dev/null
echo "row server round req/s cpu_s req/cpu_s p50_ms p99_ms errors" >&2
for round in $(seq 1 "$ROUNDS"); do
    for row in "${ROWS[@]}"; do
        run_wrk duet "$row" "$round"
        run_wrk nginx "$row" "$round"
    done
done

# med ROW SERVER COLUMN: median of a column of RESULTS
med() { awk -v r="$1" -v s="$2" -v c="$3" '$1 == r && $2 == s { print $c }' "$RESULTS" | median; }

echo
echo "== bench/http.sh: duet vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), medians of $ROUNDS runs of ${DURATION}s, servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU =="
printf '%-17s %-6s %10s %8s %12s %8s %8s %7s\n' row server "req/s" "cpu_s" "req/cpu_s" "p50_ms" "p99_ms" errors
for row in "${ROWS[@]}"; do
    for server in duet nginx; do
        printf '%-17s %-6s %10.0f %8.2f %12.0f %8.3f %8.3f %7.0f\n' "$row" "$server" \
            "$(med "$row" "$server" 4)" "$(med "$row" "$server" 5)" "$(med "$row" "$server" 6)" \
            "$(med "$row" "$server" 7)" "$(med "$row" "$server" 8)" "$(med "$row" "$server" 9)"
    done
    printf '%-17s %-6s %10s %8s %12s %8s %8s\n' "$row" "ratio" \
        "$(ratio "$(med "$row" duet 4)" "$(med "$row" nginx 4)")x" \
        "$(ratio "$(med "$row" duet 5)" "$(med "$row" nginx 5)")x" \
        "$(ratio "$(med "$row" duet 6)" "$(med "$row" nginx 6)")x" \
        "$(ratio "$(med "$row" duet 7)" "$(med "$row" nginx 7)")x" \
        "$(ratio "$(med "$row" duet 8)" "$(med "$row" nginx 8)")x"
done
echo
echo "targets: pipelined req/s >= 3x nginx; req/cpu_s >= 1.2x nginx in every row; p99 ratio <= 1"
echo "commands (duet started as: taskset -c $SERVER_CPU $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR --max-conns 20000;"
echo "          nginx as: taskset -c $SERVER_CPU nginx -p PREFIX -c PREFIX/nginx.conf, master_process off, 1 worker; ulimit -n $(ulimit -n)):"
for row in "${ROWS[@]}"; do
    echo "  ${CMDS["duet $row"]}"
    echo "  ${CMDS["nginx $row"]}"
done
echo "  CPU seconds: utime+stime (/proc/PID/stat fields 14+15) / $CLK_TCK, read before and after each wrk run"
