#!/usr/bin/env bash
# A big store's memory and start: FILES small files (default 100,000) on tmpfs; duet pinned to
# SERVER_CPU. Prints the time from exec to the ready line, then VmRSS / VmHWM (peak) of duet after
# the ready line, once the index is built and every digest computed (a first LIST answered whole),
# while and after 1 and then 20 concurrent `curl .../files`, and the largest VmRSS sampled during
# each (every 5 ms).
# Usage: bench/bigstore.sh   (env: FILES=100000 SERVER_CPU=0 LOAD_CPU=1)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FILES=${FILES:-100000}
need python3 python3
need curl curl
need taskset util-linux
build_duet

STORE=$(mktemp -d /dev/shm/duet-bigstore.XXXXXX)
trap 'rm -rf "$STORE"; bench_cleanup' EXIT
python3 - "$STORE/data" "$FILES" <<'PY'
import os, sys
os.mkdir(sys.argv[1])
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], "file-%06d.txt" % i), "w") as f:
        f.write("%016d" % i)
PY

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)" python3 - "$DUET" "$STORE/data" "$FILES" "$SERVER_CPU" "$LOAD_CPU" <<'PY'
import os, re, socket, subprocess, sys, threading, time

duet, data, files, cpu, load_cpu = sys.argv[1:6]

sys.path.insert(0, os.environ["BENCH_DIR"])
from duet_proc import start, status  # noqa: E402

def show(what, pid, peak=None):
    s = status(pid)
    extra = "  sampled max VmRSS %6.1f MiB" % (peak / 1024) if peak else ""
    print("%-44s VmRSS %6.1f MiB  VmHWM %6.1f MiB%s" %
          (what, s["VmRSS"] / 1024, s["VmHWM"] / 1024, extra), flush=True)

p, http, fport, ready_ms = start(duet, data, cpu)
try:
    print("%s files: ready line %.1f ms after exec (includes taskset's exec)" % (files, ready_ms))
    show("after the ready line", p.pid)

    t1 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", fport))
    s.sendall(b"LIST\n")
    buf = b""
    while b"\n" not in buf:
        buf += s.recv(65536)
    count = int(buf.split(b"\n", 1)[0].split()[1])
    lines = buf.count(b"\n") - 1
    while lines < count:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        lines += chunk.count(b"\n")
    s.close()
    print("first LIST (index built, %d digests): %.0f ms" % (count, (time.monotonic() - t1) * 1000))
    show("index built, every digest computed", p.pid)

    def crowd(n):
        procs = [subprocess.Popen(["taskset", "-c", load_cpu, "curl", "-s", "-o", "/dev/null",
                                   "-w", "%{size_download}\n",
                                   "http://127.0.0.1:%d/files" % http],
                                  stdout=subprocess.PIPE, text=True) for _ in range(n)]
        peak = 0
        t = time.monotonic()
        while any(q.poll() is None for q in procs):
            peak = max(peak, status(p.pid)["VmRSS"])
            time.sleep(0.005)
        sizes = {q.stdout.read().strip() for q in procs}
        print("%d x GET /files: %.0f ms, body %s bytes" % (n, (time.monotonic() - t) * 1000,
                                                           "/".join(sorted(sizes))))
        return peak

    peak = crowd(1)
    show("during and after 1 x GET /files", p.pid, peak)
    peak = crowd(20)
    show("during and after 20 x GET /files", p.pid, peak)
finally:
    p.terminate()
    p.wait(timeout=10)
PY
