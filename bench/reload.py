#!/usr/bin/env python3
"""Reload benchmark (issue 13), not a test.

For N live terminal sessions (each a bash printing a counter line every second, with one viewer
attached over WebSocket), send SIGHUP to the server (reload = exec-in-place) and measure:

- ready: SIGHUP to the first answer of the new image (detailed health reports the next
  `generation`). The new image adopts every session before it serves, so this is also
  "every session re-adopted"; the script checks `adopted_sessions == N`.
- health errors: a client polls /api/health throughout; any answer other than 200 or a refused
  connection is counted (the listening socket is handed over: there should be none).
- viewer pause: for each viewer, from the 1012 close to the `attached` frame of its reconnect
  with `since=<bytes it had>`; the longest and the median.
- bytes lost: each viewer checks that its reconnect starts exactly where it stopped
  (`attached.offset == since`, not truncated) and that the counter lines it saw run on with no
  gap and no repeat across the reload.

Usage: cargo build --release && /tmp/tbvenv/bin/python bench/reload.py [--sessions 1 100 1000]
       [--runs 3] [--bin target/release/claude-manager]
Needs the `websockets` package (the side-by-side venv has it). Loopback only; every process it
starts is stopped at the end.
"""
import argparse, asyncio, json, os, re, resource, shutil, signal, statistics, subprocess, sys
import tempfile
import time, urllib.error, urllib.request

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNTER = 'i=0; while :; do echo "tick $i"; i=$((i+1)); read -t 1 _; done'


def http(base, path, body=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read() or b"null")


class Viewer:
    def __init__(self, base_ws, sid):
        self.url = f"{base_ws}/api/terminals/{sid}/ws"
        self.pos = 0          # output bytes received (absolute offset of the next byte)
        self.text = b""
        self.closed_at = None  # when the 1012 arrived
        self.pause = None      # 1012 -> attached of the reconnect
        self.exact = None      # the reconnect started where the viewer stopped
        self.codes = []       # close codes seen
        self.errors = []      # failed reconnects
        self.first = asyncio.Event()
        self.resumed = asyncio.Event()

    async def run(self):
        since = 0
        while True:
            try:
                async with websockets.connect(f"{self.url}?since={since}", max_size=None,
                                              open_timeout=30) as ws:
                    await self.read(ws)
            except websockets.ConnectionClosed as e:
                # 1012 is the reload; anything else is counted (the socket still reconnects).
                self.codes.append(e.rcvd.code if e.rcvd else None)
            except (OSError, websockets.InvalidStatus, asyncio.TimeoutError) as e:
                self.errors.append(repr(e)[:80])
                await asyncio.sleep(0.005)
            if self.closed_at is None:
                self.closed_at = time.monotonic()
            since = self.pos

    async def read(self, ws):
        skip_next = False
        async for msg in ws:
            if isinstance(msg, str):
                m = json.loads(msg)
                if m["type"] == "attached":
                    if self.closed_at is not None and self.pause is None:
                        self.pause = time.monotonic() - self.closed_at
                        self.exact = m["offset"] == self.pos and not m["truncated"]
                        self.resumed.set()
                    self.pos = m["offset"]
                elif m["type"] == "snapshot":
                    skip_next = True
                    self.pos = m["offset"]
                elif m["type"] == "resync":
                    self.exact = False
                    self.pos = m["offset"]
            elif skip_next:
                skip_next = False
            else:
                self.pos += len(msg)
                self.text += msg
                self.first.set()

    def counter_ok(self):
        ticks = [int(n) for n in re.findall(rb"tick (\d+)\r\n", self.text)]
        return len(ticks) > 1 and ticks == list(range(ticks[0], ticks[0] + len(ticks)))


async def health_poller(base, stop, errors):
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            status, _ = await loop.run_in_executor(None, http, base, "/api/health", None, 10.0)
            if status != 200:
                errors.append(status)
        except urllib.error.HTTPError as e:
            errors.append(e.code)
        except OSError as e:
            errors.append(repr(e))
        await asyncio.sleep(0.002)


async def one_run(binary, n, work):
    port = free_port()
    base, base_ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="reload-", dir=work)
    env = dict(os.environ, CM_MAX_SESSIONS=str(n + 50), CM_LOG_LEVEL="warning")
    server = subprocess.Popen([binary, "serve", "--insecure-no-auth", "--bind",
                               f"127.0.0.1:{port}", "--data-dir", data],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tasks = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http(base, "/api/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("server did not start")
                await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        viewers = []
        for _ in range(n):
            _, t = await loop.run_in_executor(None, http, base, "/api/terminals",
                                              {"command": ["bash", "-c", COUNTER]})
            viewers.append(Viewer(base_ws, t["id"]))
        tasks = [asyncio.create_task(v.run()) for v in viewers]
        await asyncio.wait_for(asyncio.gather(*(v.first.wait() for v in viewers)), 120)
        _, before = http(base, "/api/system/health/detailed")
        generation = before["reload"]["generation"]

        stop, errors = asyncio.Event(), []
        poller = asyncio.create_task(health_poller(base, stop, errors))
        t0 = time.monotonic()
        os.kill(server.pid, signal.SIGHUP)
        while True:
            try:
                _, h = await loop.run_in_executor(None, http, base,
                                                  "/api/system/health/detailed", None, 30.0)
                if h["reload"]["generation"] > generation:
                    ready = time.monotonic() - t0
                    adopted = h["reload"]["adopted_sessions"]
                    break
            except OSError:
                pass
            await asyncio.sleep(0.001)
        try:
            await asyncio.wait_for(asyncio.gather(*(v.resumed.wait() for v in viewers)), 120)
        except asyncio.TimeoutError:
            late = [v for v in viewers if not v.resumed.is_set()]
            raise SystemExit(f"{len(late)} viewers did not resume; closes "
                             f"{[v.codes for v in late[:5]]}, errors {[v.errors[-3:] for v in late[:5]]}")
        # Two more counter lines in every session after the reload, then compare.
        await asyncio.sleep(2.5)
        stop.set()
        await poller
        pauses = sorted(v.pause for v in viewers)
        return {
            "sessions": n,
            "ready_ms": ready * 1000,
            "adopted": adopted,
            "same_pid": server.poll() is None,
            "health_errors": len(errors),
            "pause_max_ms": pauses[-1] * 1000,
            "pause_p50_ms": statistics.median(pauses) * 1000,
            "resumed_exact": sum(1 for v in viewers if v.exact),
            "counters_intact": sum(1 for v in viewers if v.counter_ok()),
            "closed_1012": sum(1 for v in viewers if v.codes[:1] == [1012]),
        }
    finally:
        for t in tasks:
            t.cancel()
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "claude-manager"))
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 100, 1000])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp(prefix="reload-bench-")
    print("sessions  ready_ms(median)  ready_ms(max)  viewer_pause_max_ms  pause_p50_ms  "
          "adopted  exact  counters  closed_1012  health_errors  same_pid")
    try:
        for n in a.sessions:
            measure_sessions(a, n, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_sessions(a, n, work):
    """`a.runs` reloads with `n` sessions, one line of medians and maxima."""
    runs = [asyncio.run(one_run(a.bin, n, work)) for _ in range(a.runs)]
    for r in runs:
        print(json.dumps(r), file=sys.stderr)
    ready = [r["ready_ms"] for r in runs]
    print(f"{n:8d}  {statistics.median(ready):16.1f}  {max(ready):13.1f}  "
          f"{max(r['pause_max_ms'] for r in runs):19.1f}  "
          f"{statistics.median(r['pause_p50_ms'] for r in runs):12.1f}  "
          f"{min(r['adopted'] for r in runs):7d}  {min(r['resumed_exact'] for r in runs):5d}  "
          f"{min(r['counters_intact'] for r in runs):8d}  "
          f"{min(r['closed_1012'] for r in runs):11d}  "
          f"{sum(r['health_errors'] for r in runs):13d}  "
          f"{all(r['same_pid'] for r in runs)}", flush=True)


if __name__ == "__main__":
    main()
