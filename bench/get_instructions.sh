#!/bin/sh
# Instructions the loop spends per small GET /files/x (user space, valgrind --tool=callgrind):
# two runs of N1 and N2 keep-alive GETs, one request at a time; the difference over N2-N1 is the
# per-request cost without start-up and shutdown. Deterministic, so fine on a busy machine.
# (Syscalls' kernel time is not counted: see README "The loop never waits" for the syscall count.)
# Usage: bench/get_instructions.sh [build/duet] [N1] [N2]
set -eu
BIN=${1:-build/duet}
N1=${2:-200}
N2=${3:-1200}
command -v valgrind >/dev/null || { echo "valgrind is missing" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/data"
head -c 1024 /dev/urandom > "$TMP/data/x"

run() {
    n=$1
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.$n" "$BIN" --http 127.0.0.1:0 \
        --files 127.0.0.1:0 --data "$TMP/data" 2> "$TMP/err.$n" &
    vpid=$!
    i=0
    until grep -q 'ready http=' "$TMP/err.$n" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 600 ] || { cat "$TMP/err.$n" >&2; exit 1; }; sleep 0.1
    done
    port=$(sed -n 's/.*ready http=[^ ]*:\([0-9]*\) .*/\1/p' "$TMP/err.$n" | head -1)
    pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' "$TMP/err.$n" | head -1)
    python3 - "$port" "$n" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET /files/x HTTP/1.1\r\nHost: x\r\n\r\n"
for _ in range(n):
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(65536)
s.close()
PY
    kill -TERM "$pid"
    wait "$vpid" || true
    callgrind_annotate "$TMP/cg.$n" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,
}
a=$(run "$N1")
b=$(run "$N2")
echo "instructions: $N1 GETs $a, $N2 GETs $b, per GET $(( (b - a) / (N2 - N1) ))"
