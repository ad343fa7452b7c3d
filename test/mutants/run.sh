#!/usr/bin/env bash
# `make mutants`: does the suite notice realistic bugs? Each test/mutants/NN-name.patch is one small
# bug (framing, auth, digests, fsync, publish order, names, access log, metrics, ...). For each,
# this script copies the tree to build/mutants/NAME (with the current objects and precompiled
# headers, so only the patched file recompiles), applies the patch, builds, and runs the test
# binaries (no fuzzing) until the first one fails: that binary caught the mutation. The binaries
# named on the patch's "# tests:" line run first, then the unit tests, then the black-box tests,
# the crash test last.
#
#   bash test/mutants/run.sh                 every patch
#   bash test/mutants/run.sh 01 05-chunked   only patches whose names start with these
#
# Prints a table mutation -> caught by which test binary (or NOT CAUGHT / DOES NOT APPLY /
# BUILD FAILED) and exits non-zero unless every mutation was caught. CPU heavy: it runs under
# `nice`; each mutant costs one or more ASan test builds (about a minute each on 2 cores).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
JOBS=${JOBS:-2}
PER_BINARY_TIMEOUT=${PER_BINARY_TIMEOUT:-900}
OUT=build/mutants
mkdir -p "$OUT"

# The base tree must build: objects from it seed every mutant's build.
nice -n 10 make -s -j"$JOBS" build/duet build/duet-san >/dev/null || {
    echo "mutants: the unmutated tree does not build" >&2
    exit 2
}

all_tests=()
for f in test/test_*.cpp; do all_tests+=("$(basename "$f" .cpp)"); done
unit=() e2e=() last=()
for t in "${all_tests[@]}"; do
    case $t in
        test_e2e_crash) last+=("$t") ;;
        test_e2e_*) e2e+=("$t") ;;
        *) unit+=("$t") ;;
    esac
done

patches=()
if [ $# -eq 0 ]; then
    patches=(test/mutants/*.patch)
else
    for want in "$@"; do
        for p in test/mutants/"$want"*.patch; do [ -f "$p" ] && patches+=("$p"); done
    done
fi
[ ${#patches[@]} -gt 0 ] || { echo "mutants: no patch matches" >&2; exit 2; }

# A binary can only catch a mutation if it passes on the unmutated tree: each binary is run once
# on the base tree (lazily, the first time a mutant needs it) and skipped for every mutant if it
# fails there.
declare -A BASE
base_passes() {
    local t=$1
    if [ -z "${BASE[$t]:-}" ]; then
        if nice -n 10 make -s -j"$JOBS" "build/test/$t" >"$OUT/base-$t.log" 2>&1 &&
            nice -n 10 timeout "$PER_BINARY_TIMEOUT" "build/test/$t" --jobs 2 >>"$OUT/base-$t.log" 2>&1; then
            BASE[$t]=pass
        else
            BASE[$t]=fail
            echo "mutants: $t fails on the unmutated tree (see $OUT/base-$t.log): it cannot catch anything" >&2
        fi
    fi
    [ "${BASE[$t]}" = pass ]
}

rows=() survivors=0
for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    dir=$OUT/$name
    log=$OUT/$name.log
    rm -rf "$dir"
    mkdir -p "$dir/build"
    # The whole tree but build/ (tests read README.md, for one), then the current objects.
    for f in * .clang-format; do
        [ "$f" = build ] || [ ! -e "$f" ] || cp -a "$f" "$dir/"
    done
    for b in obj san pch; do [ -d "build/$b" ] && cp -a "build/$b" "$dir/build/"; done
    start=$(date +%s)
    : >"$log"
    # --fuzz=0: a hunk whose context moved must fail, not land somewhere that changes its meaning.
    if ! patch -d "$dir" -p1 -s --fuzz=0 --no-backup-if-mismatch <"$p" >>"$log" 2>&1; then
        rows+=("$name|DOES NOT APPLY (see $log)|-")
        survivors=$((survivors + 1))
        echo "$name: does not apply" >&2
        rm -rf "$dir"
        continue
    fi
    if ! (cd "$dir" && nice -n 10 make -s -j"$JOBS" build/duet build/duet-san) >>"$log" 2>&1; then
        rows+=("$name|BUILD FAILED (see $log)|-")
        survivors=$((survivors + 1))
        echo "$name: build failed" >&2
        rm -rf "$dir"
        continue
    fi
    # Hinted binaries first, then the rest in the fixed order, each once.
    hints=$(sed -n 's/^# tests: *//p' "$p" | head -1)
    order=() seen=" "
    for t in $hints "${unit[@]}" "${e2e[@]}" "${last[@]}"; do
        [ -f "test/$t.cpp" ] || continue
        case $seen in *" $t "*) continue ;; esac
        seen="$seen$t "
        order+=("$t")
    done
    caught=""
    for t in "${order[@]}"; do
        base_passes "$t" || continue
        if ! (cd "$dir" && nice -n 10 make -s -j"$JOBS" "build/test/$t") >>"$log" 2>&1; then
            caught="$t (does not build)"
            break
        fi
        echo "== $t" >>"$log"
        (cd "$dir" && nice -n 10 timeout "$PER_BINARY_TIMEOUT" "build/test/$t" --jobs 2) >>"$log" 2>&1
        rc=$?
        if [ $rc -ne 0 ]; then
            [ $rc -eq 124 ] && caught="$t (timed out)" || caught=$t
            break
        fi
    done
    secs=$(($(date +%s) - start))
    if [ -n "$caught" ]; then
        rows+=("$name|$caught|${secs}s")
        echo "$name: caught by $caught (${secs}s)" >&2
    else
        rows+=("$name|NOT CAUGHT|${secs}s")
        survivors=$((survivors + 1))
        echo "$name: NOT CAUGHT (${secs}s)" >&2
    fi
    rm -rf "$dir"
done

echo
echo "| mutation | caught by | time |"
echo "|---|---|---|"
for r in "${rows[@]}"; do
    IFS='|' read -r a b c <<<"$r"
    echo "| $a | $b | $c |"
done
echo
echo "mutants: $((${#rows[@]} - survivors)) of ${#rows[@]} caught"
for t in "${!BASE[@]}"; do
    [ "${BASE[$t]}" = fail ] && echo "note: $t fails on the unmutated tree and was not used"
done
[ $survivors -eq 0 ]
