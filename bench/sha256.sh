#!/usr/bin/env bash
# SHA-256 throughput: ours vs `openssl dgst -sha256` over a 1 GiB file held in the page cache, each
# pinned to one core, at the same read size (8 KiB: `openssl dgst` reads through an 8 KiB BIO
# buffer, so ours runs with --buf 8192), in RUNS rounds whose order alternates (ours first in odd
# rounds, openssl first in even ones). Reports median (min–max) and the per-round ratio; the
# target (ours >= 0.9x openssl) counts as met only when every round clears it. Ours at 64 KiB (an
# upload's socket reads) and 1 MiB reads, and sha256sum, are shown for reference.
# Usage: bench/sha256.sh [CPU]     (env: RUNS=5 SIZE_MIB=1024)
set -euo pipefail

cd "$(dirname "$0")/.."
cpu=${1:-0}
runs=${RUNS:-5}
size_mib=${SIZE_MIB:-1024}
bin=build/bench/sha256_bench
file=$(mktemp /tmp/duet-sha256-bench.XXXXXX)
trap 'rm -f "$file"' EXIT

for tool in g++ sha256sum openssl taskset; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

# Build the driver when missing or older than any of its sources.
build_driver() {
    mkdir -p build/bench
    local flags=(-O2 -std=c++20 -Wall -Wextra -Werror -Iinclude -fno-rtti)
    g++ "${flags[@]}" -c -o build/bench/sha256.o src/core/sha256.cpp
    g++ "${flags[@]}" -msha -msse4.1 -c -o build/bench/sha256_shani.o src/core/sha256_shani.cpp
    g++ "${flags[@]}" -o "$bin" bench/sha256_bench.cpp build/bench/sha256.o \
        build/bench/sha256_shani.o
}
stale=0
[ -x "$bin" ] || stale=1
for src in src/core/sha256.cpp src/core/sha256_shani.cpp bench/sha256_bench.cpp include/duet/core/sha256.hpp; do
    [ "$src" -nt "$bin" ] && stale=1
done
[ "$stale" = 1 ] && build_driver

echo "making ${size_mib} MiB test file $file"
head -c "$((size_mib << 20))" /dev/urandom >"$file"
cat "$file" >/dev/null  # warm the page cache so every run measures hashing, not the disk

# Checks that all three tools agree before timing anything.
want=$(sha256sum "$file" | cut -d' ' -f1)
got=$("$bin" "$file" | cut -d' ' -f1)
ossl=$(openssl dgst -sha256 -r "$file" | cut -d' ' -f1)
if [ "$got" != "$want" ] || [ "$ossl" != "$want" ]; then
    echo "digest mismatch: ours $got, sha256sum $want, openssl $ossl" >&2
    exit 1
fi

# seconds COMMAND...: wall time of one run, pinned to $cpu
seconds() {
    local start end
    start=$(date +%s.%N)
    taskset -c "$cpu" "$@" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", b - a }'
}
mbps() { awk -v m="$size_mib" -v t="$1" 'BEGIN { printf "%.1f", m * 1.048576 / t }'; }  # 10^6 B

res=$(mktemp /tmp/duet-sha256-res.XXXXXX)
trap 'rm -f "$file" "$res"' EXIT
for ((r = 1; r <= runs; r++)); do
    if ((r % 2)); then order="ours ossl"; else order="ossl ours"; fi
    for who in $order; do
        if [ "$who" = ours ]; then
            echo "ours8k $r $(seconds "$bin" --buf 8192 "$file")" >>"$res"
        else
            echo "ossl $r $(seconds openssl dgst -sha256 "$file")" >>"$res"
        fi
    done
    echo "ours64k $r $(seconds "$bin" --buf 65536 "$file")" >>"$res"
    echo "ours1m $r $(seconds "$bin" --buf 1048576 "$file")" >>"$res"
    echo "sum $r $(seconds sha256sum "$file")" >>"$res"
done

# speed WHO: MB/s of every round
speed() { awk -v w="$1" -v m="$size_mib" '$1 == w { printf "%.1f\n", m * 1.048576 / $3 }' "$res"; }
per_round() { awk '$1 == "ours8k" { a[$2] = $3 } $1 == "ossl" { b[$2] = $3 } END { for (r in a) print b[r] / a[r] }' "$res"; }
# spread / verdict as in bench/lib.sh (this script does not source it: no servers here)
spread() { sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f (%.2f–%.2f)\n", m, v[1], v[NR] }'; }
verdict() { sort -g | awk -v line="$1" '{ v[NR] = $1 } END { if (NR < 5) print "unclear (" NR " rounds, 5 needed)"; else if (v[1] >= line) print "met"; else if (v[NR] < line) print "not met"; else print "unclear (the spread straddles " line ")" }'; }

echo "== bench/sha256.sh: $size_mib MiB in page cache, CPU $cpu, $runs rounds, MB/s = 10^6 B/s, median (min–max), load average $(cut -d' ' -f1-3 /proc/loadavg) =="
printf '%-40s %s MB/s\n' "duet Sha256, 8 KiB reads" "$(speed ours8k | spread)"
printf '%-40s %s MB/s\n' "openssl dgst -sha256 (8 KiB reads)" "$(speed ossl | spread)"
printf '%-40s %s MB/s\n' "duet Sha256, 64 KiB reads" "$(speed ours64k | spread)"
printf '%-40s %s MB/s\n' "duet Sha256, 1 MiB reads" "$(speed ours1m | spread)"
printf '%-40s %s MB/s\n' "sha256sum" "$(speed sum | spread)"
printf 'ours / openssl at 8 KiB, per round: %sx; target >= 0.9x: %s\n' "$(per_round | spread)" "$(per_round | verdict 0.9)"
echo "commands: taskset -c $cpu $bin --buf 8192|65536|1048576 FILE; taskset -c $cpu openssl dgst -sha256 FILE; taskset -c $cpu sha256sum FILE"
