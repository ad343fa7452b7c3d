#!/usr/bin/env bash
# The page (README "The page"): a 1 GiB file uploaded through the page in headless chromium (a
# resumable upload in 8 MiB pieces, SHA-256 hashed in the browser's worker, Repr-Digest checked by
# duet) against `curl -T` of the same file, alternating, RUNS rounds (default 5); and the time the
# page takes to draw a folder of 1,000 entries (five loads). duet on SERVER_CPU; chromium (all its
# processes) and curl on LOAD_CPU. Reports each rate as median (min-max) and the per-round ratio.
# Needs what `make test` installs (chromium, puppeteer-core under build/npm: sh test/deps.sh).
# Usage: bench/page.sh   (env: RUNS=5 SIZE_MIB=1024)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-5}
SIZE_MIB=${SIZE_MIB:-1024}
BIG=${BIG:-/tmp/duet-bench-${SIZE_MIB}MiB.bin}
SIZE=$((SIZE_MIB << 20))
need curl curl
need chromium chromium
need taskset util-linux
[ -f "$ROOT/build/npm/node_modules/puppeteer-core/package.json" ] || { echo "run: sh test/deps.sh" >&2; exit 1; }
build_duet
big_file "$BIG" "$SIZE_MIB"

DATA="$BENCH_TMP/data"
mkdir -p "$DATA"
start_duet "$BENCH_TMP/duet.log" --data "$DATA"
page() {  # page SCENARIO: one run of test/node/page_browser.js against this duet
    BENCH_FILE="$BIG" NODE_PATH="$ROOT/build/npm/node_modules" taskset -c "$LOAD_CPU" \
        node "$ROOT/test/node/page_browser.js" "$1" "$DUET_HTTP_PORT" "$DUET_FILES_PORT" "$DATA" \
        "$DUET_PID" "$BENCH_TMP/artifacts"
}
want=$(sha256sum "$BIG" | cut -c1-64)
RESULTS="$BENCH_TMP/results"
: >"$RESULTS"
name="$(basename "$BIG")"
for run in $(seq 1 "$RUNS"); do
    rm -f "$DATA/$name"
    t0=$(now_ns)
    taskset -c "$LOAD_CPU" curl -fsS -o /dev/null -T "$BIG" "http://127.0.0.1:$DUET_HTTP_PORT/files/$name"
    t1=$(now_ns)
    echo "curl $run $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')" | tee -a "$RESULTS" >&2
    rm -f "$DATA/$name"
    out=$(page bench-upload)
    secs=$(echo "$out" | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p')
    [ -n "$secs" ] || { echo "page upload failed: $out" >&2; exit 1; }
    [ "$(sha256sum "$DATA/$name" | cut -c1-64)" = "$want" ] || { echo "the page stored other bytes" >&2; exit 1; }
    echo "page $run $secs" | tee -a "$RESULTS" >&2
done
echo
echo "1 GiB-class upload ($SIZE_MIB MiB) in GB/s, median (min-max) of $RUNS rounds"
for c in curl page; do
    awk -v c="$c" -v b="$SIZE" '$1 == c { printf "%.3f\n", b / $3 / 1e9 }' "$RESULTS" >"$BENCH_TMP/r.$c"
    printf '  %-5s %s (%s)\n' "$c" "$(median <"$BENCH_TMP/r.$c")" "$(sort -g "$BENCH_TMP/r.$c" | sed -n '1p;$p' | paste -sd-)"
done
awk '$1 == "curl" { c[$2] = $3 } $1 == "page" { p[$2] = $3 } END { for (r in c) printf "%.3f\n", c[r] / p[r] }' "$RESULTS" >"$BENCH_TMP/ratio"
echo "page / curl rate, per round: $(median <"$BENCH_TMP/ratio") ($(sort -g "$BENCH_TMP/ratio" | sed -n '1p;$p' | paste -sd-))"

mkdir -p "$DATA/many"
for i in $(seq -w 0 999); do echo "$i" >"$DATA/many/file-$i.txt"; done
until [ "$(curl -fsS "http://127.0.0.1:$DUET_HTTP_PORT/files/many/" | grep -o '"type":"file"' | wc -l)" = 1000 ]; do sleep 0.1; done
out=$(page bench-draw)
echo "1,000 entries drawn by the page, ms over five loads: $(echo "$out" | sed -n 's/.*"draw_ms":\[\([^]]*\)\].*/\1/p')"
echo "commands: curl -T FILE http://127.0.0.1:PORT/files/NAME; node test/node/page_browser.js bench-upload|bench-draw (puppeteer-core, headless chromium)"
