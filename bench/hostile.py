#!/usr/bin/env python3
"""Replays a hostile-client corpus against a fresh claude-manager on loopback and reports
memory and service while it lasts and after it leaves (docs/benchmarks.md "Hostile clients").

    python3 bench/hostile.py --binary target/release/claude-manager [--connections 3000]

Starts `serve` on 127.0.0.1 with a temporary data dir, then:
1. sends each malformed request of the corpus once and checks the reply is the JSON error shape;
2. opens N hostile connections from many 127.0.x.y addresses (nothing sent, half a header,
   headers with half a body, one request then idle keep-alive), holds them for --hold seconds
   while timing health checks and task creations from 127.0.0.1;
3. closes them and measures again after --settle seconds.
Bounded in time and count; never leaves loopback.
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CORPUS = [
    ("414 long path", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ("431 long query", b"GET /api/health?q=" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431),
    ("431 1000 headers", b"GET /api/health HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-%d: 1\r\n" % i for i in range(1000)) + b"\r\n", 431),
    ("400 negative length", b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ("400 two lengths", b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    ("405 CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
    ("405 unknown method", b"BREW /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    ("404 malformed id", b"DELETE /api/tasks/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    ("400 duplicate query", b"GET /api/tasks?status=pending&status=bogus HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
]

KINDS = {
    "silent": b"",
    "half_header": b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ",
    "half_body": b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"title\":\"x\"",
    "idle_keepalive": b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
}


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def exchange(addr, data, timeout=10.0):
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        s.close()
    return out


def timed(url, body=None):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    t = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except OSError:
        status = 0
    return status, (time.monotonic() - t) * 1000


def probe(base, n=5):
    results = []
    for _ in range(n):
        results.append(timed(base + "/api/health"))
        results.append(timed(base + "/api/tasks", json.dumps({"title": "during"}).encode()))
    ok = sum(1 for s, _ in results if s in (200, 201))
    worst = max(ms for _, ms in results)
    return ok, len(results), worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--connections", type=int, default=3000)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--fd-limit", type=int, default=0, help="server RLIMIT_NOFILE (0: inherit)")
    args = ap.parse_args()
    args.connections = min(args.connections, 20_000)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 1024), hard))

    data = tempfile.mkdtemp(prefix="cm-hostile-")
    port_sock = socket.socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()

    def limit():
        if args.fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.fd_limit, args.fd_limit))

    server = subprocess.Popen(
        [args.binary, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}",
         "--insecure-no-auth", "--header-read-timeout-secs", "60", "--keep-alive-timeout-secs", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=limit)
    try:
        for line in server.stdout:
            if b"listening on" in line:
                break
        addr = ("127.0.0.1", port)
        base = f"http://127.0.0.1:{port}"
        print(f"server pid {server.pid}, RSS at start {rss_kb(server.pid) / 1024:.1f} MB")

        print("\n| case | status | JSON error with request id |\n|---|---|---|")
        for name, data_bytes, want in CORPUS:
            out = exchange(addr, data_bytes)
            head, _, body = out.partition(b"\r\n\r\n")
            status = int(head[9:12] or 0)
            try:
                err = json.loads(body)["error"]
                shaped = bool(err.get("code") and err.get("request_id"))
            except (ValueError, KeyError, TypeError):
                shaped = False
            mark = "ok" if status == want and shaped else "FAIL"
            print(f"| {name} | {status} (want {want}) | {shaped} {mark} |")

        ok, n, worst = probe(base)
        print(f"\nbefore: {ok}/{n} ok, worst {worst:.0f} ms, RSS {rss_kb(server.pid) / 1024:.1f} MB")

        held, refused = [], 0
        kinds = list(KINDS.values())
        t0 = time.monotonic()
        for i in range(args.connections):
            src = ("127.0.%d.%d" % (1 + i // 250 % 250, 2 + i % 50), 0)
            try:
                s = socket.socket()
                s.bind(src)
                s.settimeout(2)
                s.connect(addr)
                s.sendall(kinds[i % len(kinds)])
                held.append(s)
            except OSError:
                refused += 1
        opened = time.monotonic() - t0
        peak = rss_kb(server.pid)
        ok, n, worst = probe(base)
        print(f"under {args.connections} hostile connections (opened in {opened:.1f} s, {refused} failed "
              f"client-side): {ok}/{n} ok, worst {worst:.0f} ms, RSS {peak / 1024:.1f} MB")
        time.sleep(args.hold)
        peak = max(peak, rss_kb(server.pid))
        print(f"after holding {args.hold:.0f} s: RSS {rss_kb(server.pid) / 1024:.1f} MB (peak seen {peak / 1024:.1f} MB)")
        for s in held:
            s.close()
        time.sleep(args.settle)
        ok, n, worst = probe(base)
        print(f"{args.settle:.0f} s after they left: {ok}/{n} ok, worst {worst:.0f} ms, "
              f"RSS {rss_kb(server.pid) / 1024:.1f} MB")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        subprocess.run(["rm", "-rf", data], check=False)


if __name__ == "__main__":
    sys.exit(main())
