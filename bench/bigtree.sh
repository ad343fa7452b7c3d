#!/usr/bin/env bash
# A big tree (README "Folders"): FILES small files (default 100,000) in FOLDERS folders (default
# 1,000) on tmpfs; duet pinned to SERVER_CPU. Prints the time from exec to the ready line, VmRSS
# and VmHWM once every digest is computed (a first recursive listing answered whole), then the
# latency of /healthz from an open-loop probe (bench/probe.c, 1000 requests/s, on SERVER_CPU as in
# transfer.sh) while CLIENTS (200) clients each list a folder and one lists everything below the
# top folder, repeated for SECONDS_LOAD (5).
# Usage: bench/bigtree.sh   (env: FILES=100000 FOLDERS=1000 CLIENTS=200 SECONDS_LOAD=5)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FILES=${FILES:-100000}
FOLDERS=${FOLDERS:-1000}
CLIENTS=${CLIENTS:-200}
SECS=${SECONDS_LOAD:-5}
need python3 python3
need taskset util-linux
build_duet
build_helper probe

STORE=$(mktemp -d /dev/shm/duet-bigtree.XXXXXX)
trap 'rm -rf "$STORE"; bench_cleanup' EXIT
python3 - "$STORE/data" "$FILES" "$FOLDERS" <<'PY'
import os, sys
root, files, folders = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.mkdir(root)
for d in range(folders):
    os.mkdir(os.path.join(root, "folder-%04d" % d))
for i in range(files):
    with open(os.path.join(root, "folder-%04d" % (i % folders), "file-%06d.txt" % i), "w") as f:
        f.write("%016d" % i)
PY

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)" python3 - "$DUET" "$STORE/data" "$FILES" "$FOLDERS" "$SERVER_CPU" "$LOAD_CPU" "$CLIENTS" "$SECS" \
    "$BENCH_BUILD/probe" "$BENCH_TMP" <<'PY'
import os, re, socket, subprocess, sys, threading, time

duet, data, files, folders, cpu, load_cpu, clients, secs, probe, tmp = sys.argv[1:11]
files, folders, clients, secs = int(files), int(folders), int(clients), float(secs)

sys.path.insert(0, os.environ["BENCH_DIR"])
from duet_proc import start, status  # noqa: E402

p, http, fport, ready_ms = start(duet, data, cpu)

def get(path):
    s = socket.create_connection(("127.0.0.1", http))
    s.sendall(("GET %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n" % path).encode())
    n = 0
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        n += len(c)
    s.close()
    return n

try:
    print("%d files in %d folders: ready line %.1f ms after exec (includes taskset's exec)"
          % (files, folders, ready_ms))
    t1 = time.monotonic()
    n = get("/files/?recursive=1")
    print("first recursive listing (index built, every digest): %.0f ms, %d bytes"
          % ((time.monotonic() - t1) * 1000, n))
    s = status(p.pid)
    print("VmRSS %.1f MiB  VmHWM %.1f MiB" % (s["VmRSS"] / 1024, s["VmHWM"] / 1024))

    lat = os.path.join(tmp, "lat.tree")
    pr = subprocess.Popen(["taskset", "-c", cpu, probe, str(http), "1000", lat, "1000", "/healthz"])
    stop = time.monotonic() + secs
    done = [0]
    def lister(i):
        while time.monotonic() < stop:
            get("/files/folder-%04d/" % (i % folders))
            done[0] += 1
    def recursive():
        while time.monotonic() < stop:
            get("/files/?recursive=1")
            done[0] += 1
    ts = [threading.Thread(target=lister, args=(i,)) for i in range(clients)]
    ts.append(threading.Thread(target=recursive))
    os.sched_setaffinity(0, {int(load_cpu)})
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    pr.terminate()
    pr.wait()
    vals = sorted(float(x) for x in open(lat).read().split())
    if vals:
        p99 = vals[min(len(vals) - 1, int(len(vals) * 0.99))]
        print("/healthz during %d folder listers + 1 recursive (%d listings): %d probes, "
              "median %.2f ms, p99 %.2f ms, max %.2f ms"
              % (clients, done[0], len(vals), vals[len(vals) // 2], p99, vals[-1]))
    s = status(p.pid)
    print("after: VmRSS %.1f MiB  VmHWM %.1f MiB" % (s["VmRSS"] / 1024, s["VmHWM"] / 1024))
finally:
    p.terminate()
    p.wait(timeout=10)
PY
