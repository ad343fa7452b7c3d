#!/usr/bin/env bash
# Runs every Criterion test binary given, prints a line per binary as it finishes, the slowest
# five, and one summary line for the whole suite.
#
# Binaries run side by side, TEST_JOBS at a time (default: cores + 1: most of them wait on
# sockets), each with Criterion's --jobs 2, the longest first (their times from the last run are
# kept in build/test-times). Every test starts its own server on port 0 in its own directory, so
# they cannot collide. Binaries whose tests measure time, CPU or memory under load (names
# matching SERIAL) run afterwards, one at a time, so the others do not skew what they measure.
# A test's stderr line starting "note:" is shown. When nothing has finished for 10 s, a line
# says what is still running.
#
# BUILDER, when set, is the command that builds the binaries (`make test` passes make): it runs in
# the background and each binary starts as soon as it appears (they are linked under another
# name and renamed). ALONGSIDE, when set, is a command (`make test` passes the release build and
# the fuzz smoke) started once BUILDER is done, beside the parallel binaries; it is waited for
# before the load-sensitive ones start. A failure of either fails the run.
#
# The summary line is "tests: N passed, M failed, K skipped". Criterion leaves skipped tests out
# of its Synthesis counts, so they are read from its TAP report and listed one per line with their
# reason. In CI (CI=true) a skip fails the run unless its message starts with "not applicable:",
# the convention for a reason that cannot apply on this machine (no SHA-NI, say); a missing tool
# or service is never such a reason: test/deps.sh installs it.
SERIAL='*hostile* *stress* *latency*'
# Suites that run the release binary (build/duet), which ALONGSIDE may still be building, start
# once it is there; so does the big-listing suite, whose 50,000 file creations take four times
# as long beside the compilers.
RELEASE='test_e2e_reload test_readme test_e2e_big_listing'
jobs=${TEST_JOBS:-$(($(nproc 2>/dev/null || echo 2) + 1))}
times_file=${TEST_TIMES:-build/test-times}
out=$(mktemp -d "${TMPDIR:-/tmp}/duet-tests.XXXXXX") || exit 1
declare -A started_at=() pid_of=()
cleanup() {
    for p in "${pid_of[@]}"; do kill -TERM "$p" 2>/dev/null; done
    rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_serial() {
    local pat
    for pat in $SERIAL; do
        # shellcheck disable=SC2254 # the patterns are meant to match
        case $(basename "$1") in $pat) return 0 ;; esac
    done
    return 1
}

# Last run's milliseconds per binary; unknown ones go first (they may be long).
last_time() {
    local t
    t=$(awk -v n="$(basename "$1")" '$1 == n { print $2 }' "$times_file" 2>/dev/null)
    echo "${t:-999999}"
}

parallel=() serial=() release=()
for t in "$@"; do
    if is_serial "$t"; then
        serial+=("$t")
    elif [[ " $RELEASE " == *" $(basename "$t") "* ]]; then
        release+=("$t")
    else
        parallel+=("$t")
    fi
done
# With a BUILDER the binaries start in the order they are built (the order given); otherwise
# the longest of the last run first.
if [ -z "${BUILDER:-}" ] && [ -f "$times_file" ]; then
    mapfile -t parallel < <(for t in "${parallel[@]}"; do echo "$(last_time "$t") $t"; done |
        sort -rn | cut -d' ' -f2-)
fi

now() { date +%s%3N; }  # milliseconds
declare -A seconds=()
suite_start=$(now)
last_news=$(now)

start_one() {
    local t=$1 name jobs=2
    name=$(basename "$t")
    # The suite that measures the loop's latency runs its tests one at a time too: two of its
    # servers side by side on two cores would measure each other.
    case $name in *latency*) jobs=1 ;; esac
    # The browser scenarios one at a time: two chromiums at once take both cores from the rest.
    case $name in test_e2e_page) jobs=1 ;; esac
    ( "$t" --jobs $jobs --tap="$out/$name.tap" >"$out/$name.out" 2>&1; echo $? >"$out/$name.rc" ) &
    pid_of[$name]=$!
    started_at[$name]=$(now)
}

# One line for a finished binary: its counts from the Criterion summary, and its time.
report_one() {
    local name=$1 line p f c s verdict
    s=$(($(now) - started_at[$name]))
    seconds[$name]=$s
    line=$(grep 'Synthesis' "$out/$name.out" 2>/dev/null | tail -1)
    p=$(printf '%s' "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    c=$(printf '%s' "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    verdict=ok
    [ "$(cat "$out/$name.rc" 2>/dev/null)" = 0 ] && [ -n "$line" ] || verdict=FAIL
    printf '  %-4s %-34s %4s passed, %s failed %4d.%d s\n' "$verdict" "$name" "${p:-0}" \
        "$((${f:-0} + ${c:-0}))" "$((s / 1000))" "$((s % 1000 / 100))"
    last_news=$(now)
}

# Waits until fewer than $1 binaries run, reporting each one that finishes.
# With a second argument: one look only, no waiting.
wait_below() {
    local limit=$1 once=${2:-} name running
    while [ -n "$once" ] || { [ "${#pid_of[@]}" -ge "$limit" ] && [ "${#pid_of[@]}" -gt 0 ]; }; do
        for name in "${!pid_of[@]}"; do
            if [ -f "$out/$name.rc" ]; then
                wait "${pid_of[$name]}" 2>/dev/null
                unset "pid_of[$name]"
                report_one "$name"
            fi
        done
        [ -n "$once" ] && break
        [ "${#pid_of[@]}" -lt "$limit" ] && break
        if [ $(($(now) - last_news)) -gt 10000 ]; then
            running=$(printf '%s ' "${!pid_of[@]}")
            printf '  ...  still running after %d s: %s\n' "$((($(now) - suite_start) / 1000))" \
                "$running"
            last_news=$(now)
        fi
        sleep 0.2
    done
}

alongside_pid="" builder_pid="" builder_rc=0
start_alongside() {
    [ -z "${ALONGSIDE:-}" ] || [ -n "$alongside_pid" ] && return
    sh -c "$ALONGSIDE" >"$out/alongside.out" 2>&1 &
    alongside_pid=$!
}
builder_running() {
    [ -n "$builder_pid" ] && [ ! -f "$out/builder.rc" ]
}
if [ -n "${BUILDER:-}" ]; then
    ( sh -c "$BUILDER"; echo $? >"$out/builder.rc" ) &
    builder_pid=$!
fi
start_alongside
# A binary that is still being built: wait for it (reporting the ones that finish meanwhile).
wait_built() {
    while [ ! -x "$1" ] && builder_running; do
        wait_below "$jobs" 1
        sleep 0.2
    done
}
for t in "${parallel[@]}"; do
    wait_below "$jobs"
    wait_built "$t"
    if [ -x "$t" ]; then start_one "$t"; fi
done
alongside_running() {
    [ -n "$alongside_pid" ] && kill -0 "$alongside_pid" 2>/dev/null
}
for t in "${release[@]}"; do
    wait_below "$jobs"
    wait_built "$t"
    while [ ! -x build/duet ] && alongside_running; do wait_below "$jobs" 1; sleep 0.2; done
    if [ -x "$t" ]; then start_one "$t"; fi
done
while builder_running; do wait_below "$jobs" 1; sleep 0.2; done
if [ -n "$builder_pid" ]; then
    wait "$builder_pid"
    builder_rc=$(cat "$out/builder.rc")
fi
wait_below 1
alongside_rc=0
if [ -n "$alongside_pid" ]; then
    while kill -0 "$alongside_pid" 2>/dev/null; do
        if [ $(($(now) - last_news)) -gt 10000 ]; then
            printf '  ...  still running after %d s: %s\n' "$((($(now) - suite_start) / 1000))" \
                "$ALONGSIDE"
            last_news=$(now)
        fi
        sleep 0.2
    done
    wait "$alongside_pid" || alongside_rc=$?
    cat "$out/alongside.out"
fi
for t in "${serial[@]}"; do
    [ -x "$t" ] || continue
    start_one "$t"
    wait_below 1
done

passed=0 failed=0 skipped=0 status=0
for t in "$@"; do
    name=$(basename "$t")
    o="$out/$name.out"
    rc=$(cat "$out/$name.rc" 2>/dev/null || echo 127)
    grep -E 'FAIL|Assertion|fail|ERROR|crash|SUMMARY|^note:' "$o" 2>/dev/null | sed "s|^|$name: |"
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
if [ "$builder_rc" != 0 ]; then
    echo "builder ($BUILDER) failed with status $builder_rc"
    failed=$((failed + 1))
    status=1
fi
if [ "$alongside_rc" != 0 ]; then
    echo "alongside ($ALONGSIDE) failed with status $alongside_rc"
    failed=$((failed + 1))
    status=1
fi
# Times for the next run's order, and the slowest five.
mkdir -p "$(dirname "$times_file")" 2>/dev/null
for name in "${!seconds[@]}"; do echo "$name ${seconds[$name]}"; done | sort -k2 -rn >"$times_file"
echo "slowest:"
head -5 "$times_file" | awk '{ printf "  %-34s %7.1f s\n", $1, $2 / 1000 }'
printf 'wall: %d s for the tests\n' "$((($(now) - suite_start) / 1000))"
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit $status
