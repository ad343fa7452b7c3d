# probe.py HTTP_PORT FILES_PORT SECONDS: every 10 ms, a new connection to each port (GET / and
# PING, 1 s timeout); prints per port: attempts, answered, refused, other failures.
import socket
import sys
import time

http_port, files_port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
stats = {p: {"attempts": 0, "ok": 0, "refused": 0, "failed": 0} for p in ("http", "files")}


def once(port, request, expect):
    s = socket.socket()
    s.settimeout(1.0)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(request)
        got = b""
        while expect not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return "ok" if expect in got else "failed"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "failed"
    finally:
        s.close()


end = time.monotonic() + seconds
while time.monotonic() < end:
    for name, port, req, exp in (("http", http_port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"200 OK"),
                                 ("files", files_port, b"PING\nQUIT\n", b"OK pong")):
        stats[name]["attempts"] += 1
        stats[name][once(port, req, exp)] += 1
    time.sleep(0.01)
for name, s in stats.items():
    print(f"{name} attempts={s['attempts']} ok={s['ok']} refused={s['refused']} failed={s['failed']}")
