#!/bin/sh
# Installs what `make test` needs when it is missing, and says what and why. As root it runs apt
# with its messages shown; otherwise it prints the one command to run. Either way it fails loudly
# (exit 1) when something is still missing afterwards.
#
# One package a line: "package | shell test that succeeds when it is present | why we need it"
# (the test may contain "|"; the reason may not; neither may contain a single quote).
# To add one, add a line (keep them sorted by package name, so merges stay trivial).
PACKAGES='
chromium           | command -v chromium                               | the browser tests of the page (test_e2e_page) drive it headless
clang-14           | command -v clang++-14                              | compiles the libFuzzer targets (fuzz smoke in make test, make fuzz)
curl               | command -v curl                                    | black-box HTTP tests and the README tour use the real curl
libclang-rt-14-dev | ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a| the libFuzzer and sanitizer runtimes for clang-14
libcriterion-dev   | test -f /usr/include/criterion/criterion.h         | every test binary is a Criterion binary
netcat-openbsd     | nc -h 2>&1 | grep -q -- -N                         | file-port tests and the README tour use nc -N (half-close)
nodejs             | command -v node                                    | runs tus-js-client against duet (test_e2e_resumable_clients)
npm                | command -v npm                                     | installs tus-js-client, puppeteer-core and axe-core into build/npm
strace             | command -v strace                                  | test_e2e_durability traces fsync/rename/answer order with strace -f
systemd            | command -v systemd-socket-activate                 | socket-activation tests; systemd-analyze checks the README units
'

# Prints "package|why" for each package whose test fails. The test is everything between the
# first and the last "|", so it may use pipes itself.
missing_list() {
    printf '%s\n' "$PACKAGES" | while IFS= read -r line; do
        case $line in *'|'*'|'*) ;; *) continue ;; esac
        pkg=${line%%|*} rest=${line#*|}
        why=${rest##*|} probe=${rest%|*}
        sh -c "$probe" >/dev/null 2>&1 || printf '%s|%s\n' $pkg "$(echo $why)"
    done
}

# The npm test clients: tus-js-client 4.x (test_e2e_resumable_clients), puppeteer-core 24.x
# driving Debian's chromium and axe-core 4.x (test_e2e_page). None is linked into duet or served
# by it. They are installed once per machine and user, like the apt packages, into
# $DUET_TEST_NPM (default ~/.cache/duet-test-npm), and build/npm points there: a fresh checkout
# then spends no time in npm (13 s of a clean `make test` here). Where that folder cannot be
# made, they go into build/npm itself. Delete the folder to get newer versions.
NPM_PACKAGES='tus-js-client@4 puppeteer-core@24 axe-core@4'
npm_complete() {
    for p in $NPM_PACKAGES; do
        [ -f "$1/node_modules/${p%@*}/package.json" ] || return 1
    done
}
npm_install_into() {
    echo "test/deps.sh: npm install $NPM_PACKAGES (into $1, for the resumable-upload client and page tests)"
    # shellcheck disable=SC2086 # one word per package
    mkdir -p "$1" && (cd "$1" && npm install --no-audit --no-fund $NPM_PACKAGES) || {
        echo "test/deps.sh: npm install failed (npm's messages are above)" >&2
        return 1
    }
}
install_npm_clients() {
    npm_complete build/npm && return 0
    shared=${DUET_TEST_NPM:-${XDG_CACHE_HOME:-$HOME/.cache}/duet-test-npm}
    if ! npm_complete "$shared"; then
        # Installed beside it and renamed: a checkout running this at the same time never sees
        # half an install.
        if mkdir -p "$(dirname "$shared")" 2>/dev/null && work=$(mktemp -d "$shared.XXXXXX"); then
            npm_install_into "$work" || { rm -rf "$work"; return 1; }
            rm -rf "$shared" && mv -T "$work" "$shared" || rm -rf "$work"
        fi
    fi
    if npm_complete "$shared"; then
        rm -rf build/npm && mkdir -p build && ln -s "$shared" build/npm
        return 0
    fi
    npm_install_into build/npm
}

list=$(missing_list)
if [ -z "$list" ]; then
    install_npm_clients
    exit $?
fi
missing=$(printf '%s\n' "$list" | cut -d'|' -f1 | tr '\n' ' ')
echo "test/deps.sh: make test needs these packages, which are missing:"
printf '%s\n' "$list" | while IFS='|' read -r pkg why; do printf '  %-20s %s\n' "$pkg" "$why"; done

if [ "$(id -u)" != 0 ]; then
    echo "test/deps.sh: not root, so not installing. Run: sudo apt-get update && sudo apt-get install -y $missing" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "test/deps.sh: no apt-get here; install with your package manager: $missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# -q keeps the progress quiet; apt's warnings and errors reach the terminal as they come.
echo "test/deps.sh: apt-get update"
if ! apt-get update -q; then
    echo "test/deps.sh: apt-get update failed (apt's messages are above)" >&2
    exit 1
fi
echo "test/deps.sh: apt-get install -y $missing"
# shellcheck disable=SC2086 # one word per package
if ! apt-get install -y -q $missing; then
    echo "test/deps.sh: apt-get install failed (apt's messages are above)" >&2
    exit 1
fi
# A package that installed but did not provide what the test looks for is still a failure.
still=$(missing_list | cut -d'|' -f1 | tr '\n' ' ')
if [ -n "$still" ]; then
    echo "test/deps.sh: still missing after apt-get install: $still" >&2
    exit 1
fi
echo "test/deps.sh: installed $missing"
install_npm_clients
