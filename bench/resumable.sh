#!/usr/bin/env bash
# Resumable-upload throughput against a plain PUT of the same file (issue 11: resumed uploads
# should reach at least 0.9x a plain PUT). Cases, all with curl on LOAD_CPU and duet on
# SERVER_CPU, file in the page cache:
#   put       PUT /files/NAME (one request)
#   ietf      PUT /files/NAME with Upload-Complete: ?1 + interop version (durable every 8 MiB)
#   resumed   IETF creation of the first half, cut, then PATCH of the second half
#   tus       tus POST /uploads + one PATCH of everything
#   nc-resume file port: sized PUT cut at half, then RESUME with the tail
# Medians of RUNS runs, MB/s of the whole file. Usage: bench/resumable.sh
# (env: RUNS=3 SIZE_MIB=1024; a quick check: RUNS=1 SIZE_MIB=64)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-1024}
SIZE=$((SIZE_MIB << 20))
HALF=$((SIZE / 2))

need curl curl
need nc netcat-openbsd
need taskset util-linux
build_duet

SRC="$BENCH_TMP/src.bin"
head -c "$SIZE" /dev/urandom >"$SRC"
head -c "$HALF" "$SRC" >"$BENCH_TMP/head.bin"
tail -c +$((HALF + 1)) "$SRC" >"$BENCH_TMP/tail.bin"
DATA="$BENCH_TMP/data"
start_duet "$BENCH_TMP/duet.log" --data "$DATA"
BASE="http://127.0.0.1:$DUET_HTTP_PORT"
LOAD="taskset -c $LOAD_CPU"
IETF=(-H 'Upload-Draft-Interop-Version: 6')
TUS=(-H 'Tus-Resumable: 1.0.0')

now() { date +%s.%N; }

case_put() { $LOAD curl -fsS -o /dev/null -T "$SRC" "$BASE/files/put.bin"; }
case_ietf() {
    $LOAD curl -fsS -o /dev/null -T "$SRC" -H 'Upload-Complete: ?1' "${IETF[@]}" \
        "$BASE/files/ietf.bin"
}
case_resumed() {
    local loc
    loc=$($LOAD curl -fsS -D - -o /dev/null -X POST -T "$BENCH_TMP/head.bin" \
        -H 'Upload-Complete: ?0' "${IETF[@]}" -H "Upload-Length: $SIZE" "$BASE/files/res.bin" |
        tr -d '\r' | sed -n 's/^Location: //p' | tail -1)
    $LOAD curl -fsS -o /dev/null -X PATCH -T "$BENCH_TMP/tail.bin" \
        -H "Upload-Offset: $HALF" -H 'Upload-Complete: ?1' \
        -H 'Content-Type: application/partial-upload' "$BASE$loc"
}
case_tus() {
    local loc
    loc=$($LOAD curl -fsS -D - -o /dev/null -X POST "${TUS[@]}" -H "Upload-Length: $SIZE" \
        -H "Upload-Metadata: filename $(printf tus.bin | base64)" "$BASE/uploads" |
        tr -d '\r' | sed -n 's/^Location: //p')
    $LOAD curl -fsS -o /dev/null -X PATCH -T "$SRC" "${TUS[@]}" -H 'Upload-Offset: 0' \
        -H 'Content-Type: application/offset+octet-stream' "$BASE$loc"
}
case_nc_resume() {
    { echo "PUT nc.bin $SIZE"; cat "$BENCH_TMP/head.bin"; } |
        $LOAD nc -N 127.0.0.1 "$DUET_FILES_PORT" >/dev/null
    { echo "RESUME nc.bin $SIZE"; cat "$BENCH_TMP/tail.bin"; } |
        $LOAD nc -N 127.0.0.1 "$DUET_FILES_PORT" | tail -1 | grep -q "^OK $SIZE "
}

declare -A MEDIAN
for c in put ietf resumed tus nc_resume; do
    times=()
    for _ in $(seq 1 "$RUNS"); do
        t0=$(now)
        "case_$c"
        t1=$(now)
        times+=("$(echo "$t1 - $t0" | bc -l)")
    done
    MEDIAN[$c]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
done

echo
echo "| case | median s | MB/s | vs put |"
echo "|---|---|---|---|"
for c in put ietf resumed tus nc_resume; do
    s=${MEDIAN[$c]}
    printf '| %s | %.3f | %.0f | %.2fx |\n' "$c" "$s" "$(echo "$SIZE / 1000000 / $s" | bc -l)" \
        "$(echo "${MEDIAN[put]} / $s" | bc -l)"
done
echo
echo "file: $SIZE_MIB MiB, $RUNS runs each; duet on CPU $SERVER_CPU, curl/nc on CPU $LOAD_CPU"
