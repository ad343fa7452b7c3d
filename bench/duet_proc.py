"""Shared by the Python halves of bench/bigstore.sh and bench/bigtree.sh: start duet pinned to a
CPU and read its ready line, and read a process's memory from /proc."""
import re
import subprocess
import sys
import threading
import time


def status(pid):
    """VmRSS and VmHWM (the peak) of `pid`, in KiB."""
    f = {}
    for line in open("/proc/%d/status" % pid):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            f[k] = int(v.split()[0])
    return f


def start(duet, data, cpu):
    """duet on `cpu` with `data` as its store: (process, http port, file port, ms to ready line)."""
    t0 = time.monotonic()
    p = subprocess.Popen(["taskset", "-c", cpu, duet, "--http", "127.0.0.1:0", "--files",
                          "127.0.0.1:0", "--data", data], stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    ready_ms = (time.monotonic() - t0) * 1000
    m = re.search(r"http=[^ ]*:(\d+) files=[^ ]*:(\d+)", line)
    if not m:
        print("no ready line: " + line + p.stderr.read(), file=sys.stderr)
        p.kill()
        sys.exit(1)
    # The rest of stderr is read (and dropped) so that duet never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    return p, int(m.group(1)), int(m.group(2)), ready_ms
