#!/usr/bin/env bash
# Transfers of a 1 GiB file held in the page cache: HTTP download (duet vs nginx sendfile vs a raw
# nc-to-nc loopback copy), HTTP upload with curl -T (vs openssl dgst -sha256 and
# bench/upload_floor.c, which does duet's disk work alone: 64 KiB writes to an O_TMPFILE,
# sync_file_range every 8 MiB, fsync, link, rename, directory fsync),
# file-port upload and download with nc; duet's peak RSS (VmHWM, reset before each transfer) and
# the latency of GET / from an open-loop probe (bench/probe.c: 1000 requests/s due at fixed times,
# timeouts counted as inf) during each transfer. duet/nginx download ratios are taken per run (the
# two runs are adjacent) and reported as median (min–max); a target is met only when the whole
# range clears it.
# Servers and the raw sender on SERVER_CPU, clients on LOAD_CPU. Medians of RUNS runs.
# Usage: bench/transfer.sh        (env: RUNS=5 BIG=/tmp/duet-bench-1GiB.bin SIZE_MIB=1024)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-5}
# The GET / probe runs on the server's CPU: on 2 cores the load CPU is saturated by curl/nc during a
# transfer, so a probe there mostly measures its own wait for that CPU (p99 13-14 ms measured with
# PROBE_CPU=1 against 4-5 ms on CPU 0), not duet's loop.
PROBE_CPU=${PROBE_CPU:-$SERVER_CPU}
SIZE_MIB=${SIZE_MIB:-1024}
BIG=${BIG:-/tmp/duet-bench-${SIZE_MIB}MiB.bin}
SIZE=$((SIZE_MIB << 20))

need curl curl
need nginx nginx-light
need nc netcat-openbsd
need openssl openssl
need cc gcc
need taskset util-linux
build_duet
build_helper probe
build_helper rawcopy
build_helper upload_floor
raise_nofile

big_file "$BIG" "$SIZE_MIB"

# duet's store holds the same inode (hard link) as big.bin; nginx serves the directory of $BIG
DATA="$BENCH_TMP/data"
mkdir -p "$DATA" "$BENCH_TMP/www"
ln "$BIG" "$BENCH_TMP/www/big.bin" 2>/dev/null || cp "$BIG" "$BENCH_TMP/www/big.bin"
ln "$BENCH_TMP/www/big.bin" "$DATA/big.bin"
start_duet "$BENCH_TMP/duet.log" --data "$DATA"
float_helpers "$DUET_PID"
start_nginx "$BENCH_TMP/www"
curl -fsS -o /dev/null -I "http://127.0.0.1:$DUET_HTTP_PORT/files/big.bin"  # digest computed once

RESULTS="$BENCH_TMP/results"  # "case run seconds peak_kib"
: >"$RESULTS"
declare -A CMD

# timed CASE RUN PROBE(yes|no) COMMAND...: run COMMAND, record its wall time and duet's VmHWM
# (reset before); with PROBE=yes, probe GET / on duet during it, into $BENCH_TMP/lat.CASE, and
# record it as CASE+probe (the probe takes CPU from duet: those runs are not in the GB/s medians)
timed() {
    local case=$1 run=$2 probe=$3; shift 3
    local ppid="" t0 t1
    reset_hwm "$DUET_PID"
    if [ "$probe" = yes ]; then
        taskset -c "$PROBE_CPU" "$BENCH_BUILD/probe" "$DUET_HTTP_PORT" 1000 "$BENCH_TMP/lat.$case" &
        ppid=$!
        track "$ppid"
        sleep 0.05
    fi
    t0=$(now_ns)
    "$@"
    t1=$(now_ns)
    [ -n "$ppid" ] && stop_pid "$ppid"
    [ "$probe" = yes ] && case="$case+probe"
    echo "$case $run $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') $(status_kib "$DUET_PID" VmHWM)" |
        tee -a "$RESULTS" >&2
}

# raw_copy KIND RUN: the same bytes over loopback with no protocol, receiver on LOAD_CPU, sender
# on SERVER_CPU; KIND nc (nc-to-nc) or sendfile (bench/rawcopy.c: sendfile() into a read() loop)
raw_copy() {
    local kind=$1 port rpid
    port=$(free_port)
    if [ "$kind" = nc ]; then
        taskset -c "$LOAD_CPU" nc -l 127.0.0.1 "$port" >/dev/null &
        CMD[raw-nc]="taskset -c $LOAD_CPU nc -l 127.0.0.1 PORT >/dev/null & taskset -c $SERVER_CPU nc -N 127.0.0.1 PORT <$BIG"
        send="taskset -c $SERVER_CPU nc -N 127.0.0.1 $port <'$BIG'"
    else
        taskset -c "$LOAD_CPU" "$BENCH_BUILD/rawcopy" recv "$port" >"$BENCH_TMP/rx" &
        CMD[raw-sendfile]="taskset -c $LOAD_CPU $BENCH_BUILD/rawcopy recv PORT & taskset -c $SERVER_CPU $BENCH_BUILD/rawcopy send PORT $BIG"
        send="taskset -c $SERVER_CPU $BENCH_BUILD/rawcopy send $port '$BIG'"
    fi
    rpid=$!
    track "$rpid"
    while ! ss -Htln "sport = :$port" | grep -q .; do sleep 0.005; done
    timed "raw-$kind" "$2" no bash -c "$send && while kill -0 $rpid 2>/dev/null; do sleep 0.001; done"
    wait "$rpid" || true
    untrack "$rpid"
}

check_eq() { [ "$1" = "$2" ] || { echo "unexpected: '$1' (want '$2')" >&2; exit 1; }; }

dl() {  # dl CASE PORT RUN PROBE
    local got
    CMD[$1]="taskset -c $LOAD_CPU curl -s -o /dev/null http://127.0.0.1:PORT/files/big.bin"
    timed "$1" "$3" "$4" \
        bash -c "taskset -c $LOAD_CPU curl -fsS -o /dev/null -w '%{size_download}' http://127.0.0.1:$2/files/big.bin >$BENCH_TMP/out"
    got=$(cat "$BENCH_TMP/out"); check_eq "$got" "$SIZE"
}

echo "case run seconds peak_rss_kib" >&2
for run in $(seq 1 "$RUNS"); do
    raw_copy nc "$run"
    raw_copy sendfile "$run"
    dl http-dl-duet "$DUET_HTTP_PORT" "$run" no
    dl http-dl-nginx "$NGINX_PORT" "$run" no
    dl http-dl-duet "$DUET_HTTP_PORT" "$run" yes
done

want=$(openssl dgst -sha256 -r "$BIG" | cut -d' ' -f1)
for run in $(seq 1 "$RUNS"); do
    CMD[sha256]="taskset -c $SERVER_CPU openssl dgst -sha256 $BIG"
    timed sha256 "$run" no bash -c "taskset -c $SERVER_CPU openssl dgst -sha256 '$BIG' >/dev/null"
    CMD[floor]="taskset -c $SERVER_CPU $BENCH_BUILD/upload_floor STORE floor.bin <$BIG"
    timed floor "$run" no bash -c "taskset -c $SERVER_CPU '$BENCH_BUILD/upload_floor' '$BENCH_TMP' floor.bin <'$BIG' >/dev/null"
    rm -f "$BENCH_TMP/floor.bin"

    for probe in no yes; do
        CMD[http-up]="taskset -c $LOAD_CPU curl -s -T $BIG http://127.0.0.1:PORT/files/up.bin"
        timed http-up "$run" "$probe" bash -c "taskset -c $LOAD_CPU curl -fsS -T '$BIG' http://127.0.0.1:$DUET_HTTP_PORT/files/up.bin >$BENCH_TMP/out"
        grep -q "\"sha256\":\"$want\"" "$BENCH_TMP/out" || { echo "bad upload answer: $(cat "$BENCH_TMP/out")" >&2; exit 1; }
        curl -fsS -X DELETE "http://127.0.0.1:$DUET_HTTP_PORT/files/up.bin"

        # Two uploads at once: both helpers at work.
        CMD[http-up2]="two of: taskset -c $LOAD_CPU curl -s -T $BIG http://127.0.0.1:PORT/files/upN.bin"
        timed http-up2 "$run" "$probe" bash -c "
            taskset -c $LOAD_CPU curl -fsS -T '$BIG' http://127.0.0.1:$DUET_HTTP_PORT/files/up1.bin >$BENCH_TMP/out1 &
            taskset -c $LOAD_CPU curl -fsS -T '$BIG' http://127.0.0.1:$DUET_HTTP_PORT/files/up2.bin >$BENCH_TMP/out2; wait"
        for n in 1 2; do
            grep -q "\"sha256\":\"$want\"" "$BENCH_TMP/out$n" || { echo "bad upload answer: $(cat "$BENCH_TMP/out$n")" >&2; exit 1; }
            curl -fsS -X DELETE "http://127.0.0.1:$DUET_HTTP_PORT/files/up$n.bin"
        done

        # the whole pipeline on the load CPU: an unpinned cat would take the server's CPU
        CMD[file-up]="taskset -c $LOAD_CPU bash -c \"{ echo 'PUT up.bin'; cat $BIG; } | nc -N 127.0.0.1 PORT\""
        timed file-up "$run" "$probe" taskset -c "$LOAD_CPU" bash -c "{ echo 'PUT up.bin'; cat '$BIG'; } | nc -N 127.0.0.1 $DUET_FILES_PORT >$BENCH_TMP/out"
        check_eq "$(cat "$BENCH_TMP/out")" "OK $SIZE $want"
        curl -fsS -X DELETE "http://127.0.0.1:$DUET_HTTP_PORT/files/up.bin"

        CMD[file-dl]="echo 'GET big.bin' | taskset -c $LOAD_CPU nc -N 127.0.0.1 PORT >/dev/null"
        timed file-dl "$run" "$probe" bash -c "echo 'GET big.bin' | taskset -c $LOAD_CPU nc -N 127.0.0.1 $DUET_FILES_PORT >/dev/null"
    done
done
# the file-port download delivered the whole file: check the header and the byte count once
got=$(echo "GET big.bin" | nc -N 127.0.0.1 "$DUET_FILES_PORT" | wc -c)
check_eq "$got" "$((SIZE + ${#want} + ${#SIZE} + 5))"

# GET / latency with no transfer running, for reference
taskset -c "$PROBE_CPU" "$BENCH_BUILD/probe" "$DUET_HTTP_PORT" 1000 "$BENCH_TMP/lat.idle" &
ppid=$!; track "$ppid"; sleep 2; stop_pid "$ppid"

secs() { awk -v c="$1" '$1 == c { print $3 }' "$RESULTS" | median; }
# per_run A B: the ratio of B's time to A's (A's speed over B's) in each run
per_run() { awk -v a="$1" -v b="$2" '$1 == a { ta[$2] = $3 } $1 == b { tb[$2] = $3 }
    END { for (r in ta) if (r in tb) print tb[r] / ta[r] }' "$RESULTS"; }
gbps() { awk -v s="$(secs "$1")" -v n="$SIZE" 'BEGIN { printf "%.2f", n / s / 1e9 }'; }
peak() { awk -v c="$1" '($1 == c || $1 == c "+probe") && $4 > m { m = $4 } END { printf "%.1f", m / 1024 }' "$RESULTS"; }
lat() { if [ -s "$BENCH_TMP/lat.$1" ]; then printf '%7.2f %7.2f %7.2f %6d  %s' "$(percentile 50 <"$BENCH_TMP/lat.$1")" \
            "$(percentile 99 <"$BENCH_TMP/lat.$1")" "$(percentile 100 <"$BENCH_TMP/lat.$1")" "$(wc -l <"$BENCH_TMP/lat.$1")" \
            "$(grep -q "^$1+probe " "$RESULTS" && echo "$(gbps "$1+probe") GB/s meanwhile")"
        else printf '%7s %7s %7s %6s' - - - -; fi; }

raw=$(gbps raw-nc); rawsf=$(gbps raw-sendfile); ngx=$(gbps http-dl-nginx); sha=$(gbps sha256); ddr=$(gbps floor)
slow=$(awk -v a="$sha" -v b="$ddr" 'BEGIN { print (a < b ? a : b) }')
echo
echo "== bench/transfer.sh: $SIZE_MIB MiB ($SIZE bytes) in page cache, GB/s = 10^9 B/s, medians of $RUNS (load average: $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '%-34s %6s %-30s %9s | %-30s\n' case "GB/s" "vs" "peak RSS" "GET / in separate runs: p50 p99 max (ms) n"
row() { printf '%-34s %6s %-30s %6s MiB | %s\n' "$1" "$2" "$3" "$4" "$5"; }
row "raw nc-to-nc loopback copy" "$raw" "(ceiling: raw)" "-" "$(lat none)"
row "raw sendfile-to-read loopback copy" "$rawsf" "$(ratio "$rawsf" "$raw")x raw" "-" "$(lat none)"
row "HTTP download, duet (sendfile)" "$(gbps http-dl-duet)" "$(ratio "$(gbps http-dl-duet)" "$ngx")x nginx $(ratio "$(gbps http-dl-duet)" "$raw")x raw $(ratio "$(gbps http-dl-duet)" "$rawsf")x sf" "$(peak http-dl-duet)" "$(lat http-dl-duet)"
row "HTTP download, nginx (sendfile)" "$ngx" "$(ratio "$ngx" "$raw")x raw $(ratio "$ngx" "$rawsf")x sf" "-" "$(lat none)"
row "openssl dgst -sha256" "$sha" "" "-" "$(lat none)"
row "upload floor (bench/upload_floor.c)" "$ddr" "" "-" "$(lat none)"
row "HTTP upload, duet (curl -T)" "$(gbps http-up)" "$(ratio "$(gbps http-up)" "$slow")x min(sha,floor)" "$(peak http-up)" "$(lat http-up)"
row "two HTTP uploads at once (total)" "$(awk -v s="$(secs http-up2)" -v n="$SIZE" 'BEGIN { printf "%.2f", 2 * n / s / 1e9 }')" "$(awk -v a="$(secs http-up)" -v b="$(secs http-up2)" 'BEGIN { printf "%.2f", 2 * a / b }')x one upload" "$(peak http-up2)" "$(lat http-up2)"
row "file-port upload, duet (nc PUT)" "$(gbps file-up)" "$(ratio "$(gbps file-up)" "$slow")x min(sha,floor)" "$(peak file-up)" "$(lat file-up)"
row "file-port download, duet (nc GET)" "$(gbps file-dl)" "$(ratio "$(gbps file-dl)" "$raw")x raw $(ratio "$(gbps file-dl)" "$rawsf")x sf" "$(peak file-dl)" "$(lat file-dl)"
row "no transfer (reference)" "" "" "" "$(lat idle)"
echo
echo "raw = nc-to-nc copy, sf = sendfile-to-read copy (bench/rawcopy.c)"
echo "HTTP download duet/nginx per run: $(per_run http-dl-duet http-dl-nginx | spread)x; >= 1x nginx: $(per_run http-dl-duet http-dl-nginx | verdict 1 ge)"
echo "HTTP upload / upload floor per run: $(per_run http-up floor | spread)x; file-port upload / floor: $(per_run file-up floor | spread)x"
echo "targets: download >= nginx and >= 0.8x raw; uploads >= 0.8x min(sha256, floor); peak RSS a few MiB; GET / p99 < 5 ms"
echo "commands (duet: taskset -c $SERVER_CPU $DUET --http 127.0.0.1:0 --files 127.0.0.1:0 --data STORE, helper threads then on CPUs $SERVER_CPU,$LOAD_CPU;"
echo "          nginx: taskset -c $SERVER_CPU nginx, master_process off, 1 worker, sendfile on, alias to the file's directory):"
for c in raw-nc raw-sendfile http-dl-duet http-dl-nginx sha256 floor http-up http-up2 file-up file-dl; do printf '  %-15s %s\n' "$c" "${CMD[$c]}"; done
echo "  GET / probe:    taskset -c $PROBE_CPU $BENCH_BUILD/probe PORT 1000 OUT   (bench/probe.c: open loop, 1000 GET / per second due at fixed times, timeout 1 s = inf)"
echo "  peak RSS:       echo 5 >/proc/PID/clear_refs before, VmHWM of /proc/PID/status after each transfer (max over runs)"
