#!/usr/bin/env bash
# Loop CPU per full listing: GET /files over a store of FILES files (default 10,000), asked again
# and again by one keep-alive client for SECS seconds; the loop thread's CPU time (schedstat, ns)
# divided by the listings served. Run for build/duet and for each BINARY given (e.g. an older
# build to compare with), each on a fresh copy of the same store.
# Usage: bench/listing_cpu.sh [BINARY...]   (env: SECS=5 FILES=10000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECS=${SECS:-5}
FILES=${FILES:-10000}
need cc gcc
need python3 python3
build_duet
mkdir -p "$BENCH_BUILD"
src="$BENCH_DIR/stall_probe.c" PROBE="$BENCH_BUILD/stall_probe"
if [ ! -x "$PROBE" ] || [ "$src" -nt "$PROBE" ]; then
    cc -O2 -Wall -Wextra -Werror -std=gnu11 -o "$PROBE" "$src" -lpthread
fi

SEED="$BENCH_TMP/seed"
mkdir -p "$SEED"
python3 - "$SEED" "$FILES" <<'PY'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "file-%05d.txt" % i), "w") as f:
        f.write("%016d" % i)
PY

measure() {
    local bin=$1 data="$BENCH_TMP/data.$RANDOM"
    cp -a "$SEED" "$data"
    local saved=$DUET
    DUET=$bin
    start_duet "$BENCH_TMP/listing.log" --data "$data"
    DUET=$saved
    # The first listing pays for digests (hashing by hand-dropped files): not part of the figure.
    curl -s -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/files"
    curl -s -o /dev/null "http://127.0.0.1:$DUET_HTTP_PORT/files"
    local before after n
    before=$(cut -d' ' -f1 "/proc/$DUET_PID/schedstat")
    n=$("$PROBE" crowd "$DUET_HTTP_PORT" 1 "$SECS" /files | sed 's/requests=\([0-9]*\).*/\1/')
    after=$(cut -d' ' -f1 "/proc/$DUET_PID/schedstat")
    awk -v b="$bin" -v n="$n" -v ns=$((after - before)) \
        'BEGIN { printf "%-40s %6d listings  %.3f ms loop CPU per listing\n", b, n, ns / n / 1e6 }'
    stop_pid "$DUET_PID"
    rm -rf "$data"
}

echo "GET /files with $FILES files, one client, ${SECS} s:"
measure "$DUET"
for b in "$@"; do measure "$b"; done
