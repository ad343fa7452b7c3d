#!/usr/bin/env bash
# SHA-256 throughput: ours vs sha256sum vs `openssl dgst -sha256` over a 1 GiB file held in the
# page cache, each pinned to one core, median of 3 runs. Usage: bench/sha256.sh [CPU]
set -euo pipefail

cd "$(dirname "$0")/.."
cpu=${1:-0}
runs=3
size_mib=1024
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
    g++ "${flags[@]}" -c -o build/bench/sha256.o src/sha256.cpp
    g++ "${flags[@]}" -msha -msse4.1 -c -o build/bench/sha256_shani.o src/sha256_shani.cpp
    g++ "${flags[@]}" -o "$bin" bench/sha256_bench.cpp build/bench/sha256.o \
        build/bench/sha256_shani.o
}
stale=0
[ -x "$bin" ] || stale=1
for src in src/sha256.cpp src/sha256_shani.cpp bench/sha256_bench.cpp include/duet/sha256.hpp; do
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

# Median wall time in seconds of $runs runs of the given command, pinned to $cpu.
median_seconds() {
    local times=() start end
    for ((i = 0; i < runs; i++)); do
        start=$(date +%s.%N)
        taskset -c "$cpu" "$@" >/dev/null
        end=$(date +%s.%N)
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f", b - a }')")
    done
    printf '%s\n' "${times[@]}" | sort -g | sed -n "$(((runs + 1) / 2))p"
}

mbps() { awk -v m="$size_mib" -v t="$1" 'BEGIN { printf "%.1f", m * 1.048576 / t }'; }  # 10^6 B

t_ours=$(median_seconds "$bin" "$file")
t_sum=$(median_seconds sha256sum "$file")
t_ossl=$(median_seconds openssl dgst -sha256 "$file")

printf '%-22s %8s MB/s  (%.3f s)\n' "duet Sha256" "$(mbps "$t_ours")" "$t_ours"
printf '%-22s %8s MB/s  (%.3f s)\n' "sha256sum" "$(mbps "$t_sum")" "$t_sum"
printf '%-22s %8s MB/s  (%.3f s)\n' "openssl dgst -sha256" "$(mbps "$t_ossl")" "$t_ossl"
printf 'ours / openssl: %.3fx (target >= 0.9x)\n' "$(awk -v a="$t_ossl" -v b="$t_ours" 'BEGIN { print a / b }')"
