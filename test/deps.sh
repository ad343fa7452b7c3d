#!/bin/sh
# Installs what `make test` needs when it is missing. As root it uses apt; otherwise it prints
# the one command to run and fails.
need=""
[ -f /usr/include/criterion/criterion.h ] || need="$need libcriterion-dev"
command -v curl >/dev/null 2>&1 || need="$need curl"
nc -h 2>&1 | grep -q -- '-N' || need="$need netcat-openbsd"
command -v systemd-socket-activate >/dev/null 2>&1 || need="$need systemd"
command -v clang++-14 >/dev/null 2>&1 || need="$need clang-14 libclang-rt-14-dev libfuzzer-14-dev"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "make test needs:$need — run: sudo apt-get update && sudo apt-get install -y$need" >&2
    exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q $need >/dev/null || {
    echo "apt-get install$need failed" >&2
    exit 1
}
