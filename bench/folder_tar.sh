#!/usr/bin/env bash
# A folder as one download (README "Folders"): a folder of 4 files of SIZE_MIB (default 1024 MiB,
# hard links of one file held in the page cache) downloaded as one tar from duet, against the same
# 4 files downloaded one by one from duet and from nginx (sendfile), alternating, RUNS rounds
# (default 5). Reports each case's rate (GB/s) as median (min–max), the per-round ratio of the tar
# to duet's one-by-one downloads, and duet's peak RSS (VmHWM, reset before) during the tar.
# Server on SERVER_CPU, curl on LOAD_CPU.
# With BIG_SPARSE=1 it also downloads a folder holding a sparse file of 8 GiB + 3 bytes as a tar,
# extracts it with tar -x (8 GiB written to $BENCH_TMP's disk) and compares it byte for byte.
# Usage: bench/folder_tar.sh   (env: RUNS=5 SIZE_MIB=1024 BIG_SPARSE=0)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-5}
SIZE_MIB=${SIZE_MIB:-1024}
BIG=${BIG:-/tmp/duet-bench-${SIZE_MIB}MiB.bin}
SIZE=$((SIZE_MIB << 20))
need curl curl
need nginx nginx-light
need taskset util-linux
build_duet
raise_nofile

big_file "$BIG" "$SIZE_MIB"

DATA="$BENCH_TMP/data"
mkdir -p "$DATA/four" "$BENCH_TMP/www/four"
for i in 1 2 3 4; do
    ln "$BIG" "$DATA/four/f$i.bin" 2>/dev/null || cp "$BIG" "$DATA/four/f$i.bin"
    ln "$DATA/four/f$i.bin" "$BENCH_TMP/www/four/f$i.bin"
done
start_duet "$BENCH_TMP/duet.log" --data "$DATA"
start_nginx "$BENCH_TMP/www"
# The index holds the folder (and hashes it in the background) before the first round.
until curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/files/four/" | grep -q f4.bin; do sleep 0.1; done

RESULTS="$BENCH_TMP/results"
: >"$RESULTS"
timed() {  # timed CASE RUN COMMAND...
    local case=$1 run=$2 t0 t1; shift 2
    reset_hwm "$DUET_PID"
    t0=$(now_ns)
    "$@"
    t1=$(now_ns)
    echo "$case $run $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') $(status_kib "$DUET_PID" VmHWM)" |
        tee -a "$RESULTS" >&2
}
one_by_one() {  # PORT PREFIX
    for i in 1 2 3 4; do
        taskset -c "$LOAD_CPU" curl -fsS -o /dev/null "http://127.0.0.1:$1$2/f$i.bin"
    done
}
tar_size() {
    taskset -c "$LOAD_CPU" curl -fsS -o /dev/null -w '%{size_download}' \
        "http://127.0.0.1:$DUET_HTTP_PORT/files/four/?archive=tar" >"$BENCH_TMP/out"
}

echo "case run seconds peak_rss_kib" >&2
for run in $(seq 1 "$RUNS"); do
    timed tar-duet "$run" tar_size
    [ "$(cat "$BENCH_TMP/out")" -gt $((4 * SIZE)) ] || { echo "short tar: $(cat "$BENCH_TMP/out")" >&2; exit 1; }
    timed each-duet "$run" one_by_one "$DUET_HTTP_PORT" /files/four
    timed each-nginx "$run" one_by_one "$NGINX_PORT" /files/four
done

echo
echo "rates in GB/s of 4 x $SIZE_MIB MiB, median (min-max) of $RUNS rounds"
for c in tar-duet each-duet each-nginx; do
    awk -v c="$c" -v b=$((4 * SIZE)) '$1 == c { printf "%.3f\n", b / $3 / 1e9 }' "$RESULTS" >"$BENCH_TMP/r.$c"
    printf '  %-11s %s (%s)\n' "$c" "$(median <"$BENCH_TMP/r.$c")" "$(sort -g "$BENCH_TMP/r.$c" | sed -n '1p;$p' | paste -sd-)"
done
awk '$1 == "tar-duet" { t[$2] = $3 } $1 == "each-duet" { e[$2] = $3 } END { for (r in t) printf "%.3f\n", e[r] / t[r] }' "$RESULTS" >"$BENCH_TMP/ratio"
echo "tar / one by one (duet), per round: $(median <"$BENCH_TMP/ratio") ($(sort -g "$BENCH_TMP/ratio" | sed -n '1p;$p' | paste -sd-)); target >= 0.9"
echo "duet peak RSS during the tar: $(awk '$1 == "tar-duet" { print $4 }' "$RESULTS" | sort -g | tail -1) KiB"
if [ "${BIG_SPARSE:-0}" = 1 ]; then
    mkdir -p "$DATA/sparse" "$BENCH_TMP/x"
    truncate -s $(((8 << 30) + 3)) "$DATA/sparse/huge.img"
    echo small >"$DATA/sparse/small.txt"
    until curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/files/sparse/" | grep -q small.txt; do sleep 0.1; done
    curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/files/sparse/?archive=tar" | tar -xf - -C "$BENCH_TMP/x"
    cmp "$DATA/sparse/huge.img" "$BENCH_TMP/x/huge.img" && cmp "$DATA/sparse/small.txt" "$BENCH_TMP/x/small.txt" &&
        echo "8 GiB + 3 sparse file: tar -x gives it back byte for byte ($(stat -c %s "$BENCH_TMP/x/huge.img") bytes)"
    rm -rf "$BENCH_TMP/x"
fi
echo "commands: curl -o /dev/null 'http://127.0.0.1:PORT/files/four/?archive=tar'; 4 x curl -o /dev/null http://127.0.0.1:PORT/files/four/fN.bin (duet and nginx)"
