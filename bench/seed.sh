#!/usr/bin/env bash
# The Python setup duet replaces, reproduced with Debian's python3-flask and gunicorn
# (bench/seed/app.py: Flask on gunicorn, one worker, the file port from a socketserver thread that
# the app module starts with serve_forever()). Measures what the SPEC's preamble blames it for:
#   1. Ctrl+C: SIGINT to the gunicorn master until it has exited (RUNS runs, each capped at 40 s).
#   2. Reload: SIGHUP to the master while bench/seed/probe.py opens a new connection to each port
#      every 10 ms for PROBE_SECONDS: connections refused / failed per port, and whether the
#      setup still answers afterwards (RUNS runs).
# The same measures for duet come from bench/lifecycle.sh.
# Usage: bench/seed.sh          (env: RUNS=5 PROBE_SECONDS=5)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-5}
PROBE_SECONDS=${PROBE_SECONDS:-5}
need gunicorn gunicorn
python3 -c 'import flask' 2>/dev/null || need flask python3-flask
need curl curl
SEED="$BENCH_DIR/seed"

# start_seed LOG: gunicorn on free ports; sets SEED_PID, SEED_HTTP, SEED_FILES
start_seed() {
    SEED_HTTP=$(free_port)
    SEED_FILES=$(free_port)
    SEED_FILES_PORT=$SEED_FILES gunicorn -w 1 -b "127.0.0.1:$SEED_HTTP" --chdir "$SEED" app:app \
        >"$1" 2>&1 &
    SEED_PID=$!
    track "$SEED_PID"
    for _ in $(seq 1 500); do
        curl -fs -o /dev/null "http://127.0.0.1:$SEED_HTTP/" 2>/dev/null && return 0
        sleep 0.02
    done
    echo "gunicorn did not answer; log:" >&2
    cat "$1" >&2
    exit 1
}

: >"$BENCH_TMP/stop" && : >"$BENCH_TMP/reload"
for run in $(seq 1 "$RUNS"); do
    # 1. Ctrl+C
    start_seed "$BENCH_TMP/seed.stop.$run.log"
    workers=$(pgrep -P "$SEED_PID" || true)  # the master's children, by parent PID
    t0=$(now_ns)
    kill -INT "$SEED_PID"
    for _ in $(seq 1 4000); do kill -0 "$SEED_PID" 2>/dev/null || break; sleep 0.01; done
    t1=$(now_ns)
    if kill -0 "$SEED_PID" 2>/dev/null; then
        echo "run $run: still running 40 s after SIGINT" >&2
        stop_pid "$SEED_PID" KILL
    else
        wait "$SEED_PID" 2>/dev/null || true
        untrack "$SEED_PID"
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }' >>"$BENCH_TMP/stop"
    # a worker left behind by the master (it held the file port) would break the next run
    for p in $workers; do kill -KILL "$p" 2>/dev/null || true; done

    # 2. Reload under new connections
    start_seed "$BENCH_TMP/seed.reload.$run.log"
    python3 "$SEED/probe.py" "$SEED_HTTP" "$SEED_FILES" "$PROBE_SECONDS" >"$BENCH_TMP/probe.$run" &
    probe=$!
    track "$probe"
    sleep 0.5
    kill -HUP "$SEED_PID"
    wait "$probe" || true
    untrack "$probe"
    alive=no
    curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$SEED_HTTP/" && alive=yes
    echo "$run $alive $(tr '\n' ' ' <"$BENCH_TMP/probe.$run")" >>"$BENCH_TMP/reload"
    boot_errors=$(grep -c "Address already in use" "$BENCH_TMP/seed.reload.$run.log" || true)
    echo "run $run: reload: $(tr '\n' ' ' <"$BENCH_TMP/probe.$run")answers afterwards: $alive; 'Address already in use' in the log: $boot_errors" >&2
    workers=$(pgrep -P "$SEED_PID" || true)
    stop_pid "$SEED_PID" KILL
    for p in $workers; do kill -KILL "$p" 2>/dev/null || true; done
done

field() { sed -n "s/.*$1 attempts=[0-9]* ok=[0-9]* refused=\([0-9]*\) failed=\([0-9]*\).*/\\$2/p" "$BENCH_TMP/reload"; }
echo
echo "== bench/seed.sh: Flask $(python3 -c 'import importlib.metadata as m; print(m.version("flask"))') on gunicorn $(gunicorn --version 2>&1 | sed 's/.*version \([0-9.]*\).*/\1/'), 1 worker, file port from a socketserver thread; $RUNS runs, median (min–max), load average $(cut -d' ' -f1-3 /proc/loadavg) =="
printf '%-52s %s s\n' "Ctrl+C (SIGINT to the master) to exit" "$(spread %.2f <"$BENCH_TMP/stop")"
printf '%-52s %s\n' "reload (SIGHUP): HTTP connections refused" "$(field http 1 | spread %.0f)"
printf '%-52s %s\n' "reload (SIGHUP): HTTP connections failed otherwise" "$(field http 2 | spread %.0f)"
printf '%-52s %s\n' "reload (SIGHUP): file-port connections refused" "$(field files 1 | spread %.0f)"
printf '%-52s %s\n' "reload (SIGHUP): file-port connections failed otherwise" "$(field files 2 | spread %.0f)"
printf '%-52s %s of %s runs\n' "still answering GET / after the reload" "$(awk '$2 == "yes"' "$BENCH_TMP/reload" | wc -l)" "$RUNS"
echo "commands: SEED_FILES_PORT=P2 gunicorn -w 1 -b 127.0.0.1:P1 --chdir bench/seed app:app; kill -INT MASTER"
echo "          python3 bench/seed/probe.py P1 P2 $PROBE_SECONDS & kill -HUP MASTER (0.5 s into the probe)"
