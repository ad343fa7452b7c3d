#!/bin/sh
# Runs every Criterion test binary given, then prints one summary line for the whole suite.
passed=0 failed=0 status=0
for t in "$@"; do
    out=$("$t" --jobs 2 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'Synthesis|FAIL|Assertion|fail|ERROR|crash|SUMMARY' | sed "s|^|$(basename "$t"): |"
    line=$(printf '%s\n' "$out" | grep 'Synthesis' | tail -1)
    p=$(printf '%s' "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    c=$(printf '%s' "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${c:-0}))
    if [ "$rc" != 0 ] || [ -z "$line" ]; then
        status=1
        [ -z "$line" ] && { failed=$((failed + 1)); printf '%s\n' "$out" | tail -20; }
    fi
done
echo "tests: $passed passed, $failed failed"
exit $status
