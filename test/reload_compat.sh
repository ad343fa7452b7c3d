#!/usr/bin/env bash
# `make reload-compat` (opt-in, not part of `make test`): a reload from an older build of duet
# into this tree's build, with work in flight, loses nothing. The hand-over records are versioned
# per protocol; this checks that a real older binary's records are read by the new one.
#
#   OLD=<rev> bash test/reload_compat.sh     (default OLD: d27d41d, the last commit before the
#                                            source tree was split into layer folders)
#
# Builds OLD's release binary in a temporary worktree and this tree's build/duet, starts the old
# binary from a path of its own, and opens: slow downloads, HTTP and file-port uploads half sent,
# a half-sent request head, idle keep-alive and file-port sessions, a tus upload between its
# creation and its PATCH. Then it renames the new binary over that path and sends SIGHUP: duet
# execs whatever is at its path, so the next image is the new build (checked through
# /proc/PID/exe). Every client then finishes and each result is checked byte for byte.
# Prints one line per check and "reload-compat: N passed, M failed"; exits 1 on any failure.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OLD=${OLD:-d27d41d}
cd "$ROOT" || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/duet-compat.XXXXXX") || exit 2
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    git worktree remove --force "$tmp/old" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "reload-compat: building $OLD and this tree"
git worktree add -q --detach "$tmp/old" "$OLD" || exit 2
make -s -C "$tmp/old" -j2 build/duet >/dev/null || { echo "cannot build $OLD"; exit 2; }
make -s -j2 build/duet >/dev/null || { echo "cannot build this tree"; exit 2; }
cp "$tmp/old/build/duet" "$tmp/duet"
cp build/duet "$tmp/duet.new"

mkdir -p "$tmp/data"
head -c $((48 << 20)) /dev/urandom > "$tmp/data/big.bin"
"$tmp/duet" --http 127.0.0.1:0 --files 127.0.0.1:0 --data "$tmp/data" --grace 20 --header-timeout 30 \
    2> "$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q 'ready' "$tmp/log" && break; sleep 0.1; done
ready=$(grep -m1 'ready' "$tmp/log") || { echo "old duet did not start"; cat "$tmp/log"; exit 1; }
http=$(sed -n 's/.*http=[^ ]*:\([0-9]*\).*/\1/p' <<< "$ready")
files=$(sed -n 's/.*files=[^ ]*:\([0-9]*\).*/\1/p' <<< "$ready")

PID=$pid HTTP=$http FILES=$files DIR=$tmp timeout 120 python3 - <<'PY'
import hashlib, os, socket, subprocess, sys, time

pid, http, files, d = int(os.environ["PID"]), int(os.environ["HTTP"]), int(os.environ["FILES"]), os.environ["DIR"]
big = open(d + "/data/big.bin", "rb").read()
results = []

def check(name, ok, detail=""):
    results.append(ok)
    print(("  ok   " if ok else "  FAIL ") + name + ("" if ok else ": " + detail))

def conn(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    return s

def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c: return None, buf
        buf += c
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length": length = int(v)
    while len(body) < length:
        c = s.recv(1 << 20)
        if not c: break
        body += c
    return head.decode("latin1"), body

def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        c = s.recv(1)
        if not c: break
        buf += c
    return buf.decode()

# Before the reload: everything in flight.
downloads = []
for i in range(3):
    s = conn(http, rcvbuf=65536)
    s.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(65536)
    downloads.append((s, first))
put_body = os.urandom(4 << 20)
hput = conn(http)
hput.sendall(b"PUT /files/put.bin HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(put_body) + put_body[:len(put_body) // 2])
port_body = os.urandom(3_000_000)
fput = conn(files)
fput.sendall(b"PUT port.bin %d\n" % len(port_body) + port_body[:1_000_000])
half = conn(http)
half.sendall(b"GET /files/big.bin HTTP/1.1\r\nHo")
keep = conn(http)
keep.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
h, b = read_response(keep)
check("keep-alive request before the reload", h is not None and " 200 " in h.split("\r\n")[0], str(h))
fidle = conn(files)
fidle.sendall(b"STAT big.bin\n")
check("file-port STAT before the reload", read_line(fidle).startswith("OK %d " % len(big)))
tus_body = os.urandom(200_000)
tus = conn(http)
import base64
tus.sendall(b"POST /uploads HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: %d\r\nUpload-Metadata: filename %s\r\nContent-Length: 0\r\n\r\n" % (len(tus_body), base64.b64encode(b"tus.bin")))
h, _ = read_response(tus)
loc = [l.split(":", 1)[1].strip() for l in h.split("\r\n") if l.lower().startswith("location:")][0]
check("tus creation before the reload", " 201 " in h.split("\r\n")[0], h)

# The reload: the new build is renamed over the old one's path, then SIGHUP.
old_inode = os.stat("/proc/%d/exe" % pid).st_ino
os.rename(d + "/duet.new", d + "/duet")
new_inode = os.stat(d + "/duet").st_ino
with open(d + "/log") as f: seen = f.read().count("ready")
os.kill(pid, 1)
deadline = time.time() + 30
while time.time() < deadline:
    with open(d + "/log") as f:
        if f.read().count("ready") > seen: break
    time.sleep(0.02)
check("the new image is ready", time.time() < deadline)
check("the new image is the new build", os.stat("/proc/%d/exe" % pid).st_ino == new_inode != old_inode)

# After it: every client finishes on the new image (the half-sent head first: its header
# timeout runs across the reload).
half.sendall(b"st: x\r\n\r\n")
h, b = read_response(half)
check("half-sent head completed after the reload: 200 and the file", h is not None and " 200 " in h.split("\r\n")[0] and b == big, str(h)[:80])
for i, (s, first) in enumerate(downloads):
    buf = first
    while True:
        c = s.recv(1 << 20)
        if not c or (b"\r\n\r\n" in buf and len(buf.partition(b"\r\n\r\n")[2]) >= len(big)): 
            if not c: break
        buf += c
        if b"\r\n\r\n" in buf and len(buf.partition(b"\r\n\r\n")[2]) >= len(big): break
    body = buf.partition(b"\r\n\r\n")[2]
    check("download %d: all %d bytes, equal" % (i + 1, len(big)), body == big, "got %d bytes" % len(body))
hput.sendall(put_body[len(put_body) // 2:])
h, _ = read_response(hput)
check("HTTP PUT sent across the reload: 201", h is not None and " 201 " in h.split("\r\n")[0], str(h))
fput.sendall(port_body[1_000_000:])
line = read_line(fput)
check("file-port PUT sent across the reload: OK", line.startswith("OK %d %s" % (len(port_body), hashlib.sha256(port_body).hexdigest())), line)
keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
h, _ = read_response(keep)
check("keep-alive connection reused after the reload", h is not None and " 200 " in h.split("\r\n")[0], str(h))
fidle.sendall(b"STAT put.bin\n")
check("file-port session reused after the reload", read_line(fidle).startswith("OK %d " % len(put_body)))
tus2 = conn(http)
tus2.sendall(b"PATCH %s HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: %d\r\n\r\n" % (loc.encode(), len(tus_body)) + tus_body)
h, _ = read_response(tus2)
check("tus upload created before, finished after the reload: 204", h is not None and " 204 " in h.split("\r\n")[0], str(h))
for name, want in (("put.bin", put_body), ("port.bin", port_body), ("tus.bin", tus_body)):
    got = open(d + "/data/" + name, "rb").read()
    check("%s stored whole" % name, got == want, "%d bytes" % len(got))
    s = conn(http)
    s.sendall(b"GET /files/%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % name.encode())
    h, b = read_response(s)
    check("%s served back equal" % name, b == want)
p, f = results.count(True), results.count(False)
print("reload-compat: %d passed, %d failed" % (p, f))
sys.exit(1 if f else 0)
PY
rc=$?
kill -TERM "$pid" 2>/dev/null
wait "$pid"; stop=$?
pid=""
if [ "$stop" != 0 ]; then echo "  FAIL stop after the reload exited $stop"; rc=1; else echo "  ok   stop after the reload exits 0"; fi
grep -E 'error|cut|cannot' "$tmp/log" | sed 's/^/  log: /'
exit $rc
