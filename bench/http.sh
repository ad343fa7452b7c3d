#!/usr/bin/env bash
# HTTP core: duet vs nginx (one worker, `return 200` with duet's GET / body), both pinned to
# SERVER_CPU, wrk pinned to LOAD_CPU, alternating duet/nginx in the same run, ROUNDS rounds of
# DURATION seconds per row. Reports requests/s, server CPU seconds, requests per server-CPU-second,
# p50/p99 as median (min–max) over the rounds, and the duet/nginx ratio of each round (the runs of
# one round are adjacent, so they share the machine's state). A target counts as met only when
# the whole min–max of the per-round ratios clears it (lib.sh `verdict`).
# Both servers have the same connection limit: duet --max-conns and nginx worker_connections
# $BENCH_MAX_CONNS, here duet's default 10000: at 1024, nginx logs "1024 worker_connections are
# not enough, reusing connections" under wrk -c1000 and closes keep-alive connections (read
# errors), while duet at --max-conns 1024 serves the same load without an error.
# Usage: bench/http.sh            (env: ROUNDS=5 DURATION=10)
set -euo pipefail
BENCH_MAX_CONNS=${BENCH_MAX_CONNS:-10000}
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}

need wrk wrk
need nginx nginx-light
need curl curl
need taskset util-linux
build_duet
raise_nofile

start_duet "$BENCH_TMP/duet.log" --data "$BENCH_TMP/data" --max-conns "$BENCH_MAX_CONNS"
start_nginx
NGINX_ERRLOG="$BENCH_TMP/nginx/logs/error.log"

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

# col ROW SERVER COLUMN: that column of RESULTS, one value per round
col() { awk -v r="$1" -v s="$2" -v c="$3" '$1 == r && $2 == s { print $c }' "$RESULTS"; }
# per_round ROW COLUMN: duet/nginx ratio of COLUMN for each round
per_round() {
    awk -v r="$1" -v c="$2" '$1 == r { v[$2 " " $3] = $c; n[$3] = 1 }
        END { for (k in n) if (v["nginx " k] > 0) print v["duet " k] / v["nginx " k] }' "$RESULTS"
}

echo
echo "== bench/http.sh: duet vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), $ROUNDS alternating rounds of ${DURATION}s, median (min–max), servers on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU, load average $(cut -d' ' -f1-3 /proc/loadavg) =="
for row in "${ROWS[@]}"; do
    for server in duet nginx; do
        printf '%-17s %-6s req/s %s  req/cpu_s %s  p50 %s ms  p99 %s ms  errors %s\n' "$row" "$server" \
            "$(col "$row" "$server" 4 | spread %.0f)" "$(col "$row" "$server" 6 | spread %.0f)" \
            "$(col "$row" "$server" 7 | spread %.3f)" "$(col "$row" "$server" 8 | spread %.3f)" \
            "$(col "$row" "$server" 9 | spread %.0f)"
    done
    printf '%-17s ratio  req/s %s  req/cpu_s %s  p99 %s\n' "$row" \
        "$(per_round "$row" 4 | spread)" "$(per_round "$row" 6 | spread)" "$(per_round "$row" 8 | spread)"
    printf '%-17s verdict: req/cpu_s >= 1.2x nginx: %s; p99 <= nginx: %s' "$row" \
        "$(per_round "$row" 6 | verdict 1.2 ge)" "$(per_round "$row" 8 | verdict 1 le)"
    case $row in pipelined*) printf '; req/s >= 3x nginx: %s' "$(per_round "$row" 4 | verdict 3 ge)" ;; esac
    echo
done
echo
if grep -q "worker_connections are not enough" "$NGINX_ERRLOG" 2>/dev/null; then
    echo "WARNING: nginx ran out of worker_connections ($BENCH_MAX_CONNS): its figures include reused connections"
fi
echo "commands (duet started as: taskset -c $SERVER_CPU $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data DIR --max-conns $BENCH_MAX_CONNS;"
echo "          nginx as: taskset -c $SERVER_CPU nginx -p PREFIX -c PREFIX/nginx.conf, master_process off, 1 worker, worker_connections $BENCH_MAX_CONNS; ulimit -n $(ulimit -n)):"
for row in "${ROWS[@]}"; do
    echo "  ${CMDS["duet $row"]}"
    echo "  ${CMDS["nginx $row"]}"
done
echo "  CPU seconds: utime+stime (/proc/PID/stat fields 14+15) / $CLK_TCK, read before and after each wrk run"
