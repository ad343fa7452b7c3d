#!/bin/sh
# Runs every Criterion test binary given and prints one summary line for the whole suite.
#
# Binaries run side by side, TEST_JOBS at a time (default: the number of cores), each with
# Criterion's own --jobs 2: every test starts its own server on port 0 in its own directory, so
# they cannot collide, and most of their time is spent waiting on sockets. Binaries whose tests
# measure time, CPU or memory under load (names matching SERIAL) run afterwards, alone, so the
# other binaries do not skew what they measure. A test's stderr line starting "note:" is shown.
#
# ALONGSIDE, when set, is a command (`make test` passes the fuzz smoke) run in the background
# beside the parallel binaries, which mostly wait on sockets; it is waited for before the
# load-sensitive ones start, and its failure fails the run.
#
# The summary line is "tests: N passed, M failed, K skipped". Criterion leaves skipped tests out
# of its Synthesis counts, so they are read from its TAP report and listed one per line with their
# reason. In CI (CI=true) a skip fails the run unless its message starts with "not applicable:",
# the convention for a reason that cannot apply on this machine (no SHA-NI, say); a missing tool
# or service is never such a reason: test/deps.sh installs it.
SERIAL='*hostile* *stress* *latency*'
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
out=$(mktemp -d "${TMPDIR:-/tmp}/duet-tests.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT
trap 'exit 130' INT TERM

is_serial() {
    for pat in $SERIAL; do
        # shellcheck disable=SC2254 # the patterns are meant to match
        case $(basename "$1") in $pat) return 0 ;; esac
    done
    return 1
}

parallel="" serial=""
for t in "$@"; do
    if is_serial "$t"; then serial="$serial $t"; else parallel="$parallel $t"; fi
done

# One binary: its whole output in $out/NAME.out, its exit status in $out/NAME.rc.
run_one='"$1" --jobs 2 --tap="$2/$(basename "$1").tap" >"$2/$(basename "$1").out" 2>&1; echo $? >"$2/$(basename "$1").rc"'
alongside_pid=""
if [ -n "${ALONGSIDE:-}" ]; then
    sh -c "$ALONGSIDE" >"$out/alongside.out" 2>&1 &
    alongside_pid=$!
fi
# shellcheck disable=SC2086 # one word per binary
[ -n "$parallel" ] && printf '%s\n' $parallel | xargs -P "$jobs" -I{} sh -c "$run_one" _ {} "$out"
alongside_rc=0
if [ -n "$alongside_pid" ]; then
    wait "$alongside_pid" || alongside_rc=$?
    cat "$out/alongside.out"
fi
for t in $serial; do sh -c "$run_one" _ "$t" "$out"; done

passed=0 failed=0 skipped=0 status=0
for t in "$@"; do
    name=$(basename "$t")
    o="$out/$name.out"
    rc=$(cat "$out/$name.rc" 2>/dev/null || echo 127)
    grep -E 'Synthesis|FAIL|Assertion|fail|ERROR|crash|SUMMARY|^note:' "$o" 2>/dev/null | sed "s|^|$name: |"
    line=$(grep 'Synthesis' "$o" 2>/dev/null | tail -1)
    p=$(printf '%s' "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    c=$(printf '%s' "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${c:-0}))
    # TAP lines of skipped tests: "ok - suite::test  # SKIP reason"
    skips=$(grep -E '^ok - .* # SKIP' "$out/$name.tap" 2>/dev/null)
    if [ -n "$skips" ]; then
        skipped=$((skipped + $(printf '%s\n' "$skips" | wc -l)))
        printf '%s\n' "$skips" | sed "s|^ok - \([^ ]*\) *# SKIP \(.*\)|$name: SKIP \1: \2|"
        if [ "${CI:-}" = true ]; then
            bad=$(printf '%s\n' "$skips" | grep -vc '# SKIP not applicable:')
            if [ "$bad" != 0 ]; then
                echo "$name: $bad skip(s) without a 'not applicable:' reason fail the run in CI"
                failed=$((failed + bad))
                status=1
            fi
        fi
    fi
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        status=1
        [ -n "$line" ] && [ $((${f:-0} + ${c:-0})) = 0 ] &&
            echo "$name: exited $rc although its summary has no failure"
        if [ -z "$line" ]; then
            failed=$((failed + 1))
            echo "$name: exited $rc without a Criterion summary; its last lines:"
            tail -20 "$o" 2>/dev/null
        fi
    fi
done
if [ "$alongside_rc" != 0 ]; then
    echo "alongside ($ALONGSIDE) failed with status $alongside_rc"
    failed=$((failed + 1))
    status=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
