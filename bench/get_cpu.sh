#!/bin/sh
# Loop-thread CPU per small GET /files/x (1 KiB, in the index, dentry cached), from
# /proc/PID/task/PID/schedstat (kernel + user time of the loop thread), for one or two binaries
# in alternating rounds. One keep-alive client, one request at a time, N requests per round.
# Usage: bench/get_cpu.sh NEW_BINARY [OLD_BINARY]   env: N=20000 ROUNDS=5
set -eu
NEW=${1:-build/duet}
OLD=${2:-}
N=${N:-20000}
ROUNDS=${ROUNDS:-5}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/data"
head -c 1024 /dev/urandom > "$TMP/data/x"

one() {
    bin=$1
    taskset -c 0 "$bin" --http 127.0.0.1:0 --files 127.0.0.1:0 --data "$TMP/data" 2> "$TMP/err" &
    i=0
    until grep -q 'ready http=' "$TMP/err" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 100 ] || { cat "$TMP/err" >&2; exit 1; }; sleep 0.05
    done
    port=$(sed -n 's/.*ready http=[^ ]*:\([0-9]*\) .*/\1/p' "$TMP/err" | head -1)
    pid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' "$TMP/err" | head -1)
    taskset -c 1 python3 - "$port" "$N" "$pid" <<'PY'
import socket, sys
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def cpu():
    return int(open(f"/proc/{pid}/task/{pid}/schedstat").read().split()[0])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"GET /files/x HTTP/1.1\r\nHost: x\r\n\r\n"
def get():
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    while len(body) < 1024:
        body += s.recv(65536)
for _ in range(200):
    get()  # warm: the index is built, the name cached
t0 = cpu()
for _ in range(n):
    get()
print(f"{(cpu() - t0) / n:.0f}")
PY
    kill -TERM "$pid"
    wait 2>/dev/null || true
}

new_all=""; old_all=""
r=0
while [ $r -lt "$ROUNDS" ]; do
    r=$((r + 1))
    a=$(one "$NEW"); new_all="$new_all $a"
    if [ -n "$OLD" ]; then b=$(one "$OLD"); old_all="$old_all $b"; fi
done
median() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)] " (" v[1] "-" v[NR] ")"}'; }
echo "loop CPU per GET, ns, median (min-max) of $ROUNDS x $N: $NEW $(median $new_all)"
[ -z "$OLD" ] || echo "loop CPU per GET, ns, median (min-max) of $ROUNDS x $N: $OLD $(median $old_all)"
