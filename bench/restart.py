#!/usr/bin/env python3
"""Restart benchmark (issue 5), not a test.

1. Start-up: time from spawning `claude-manager serve` to the first 200 from /api/health, with
   10 000 finished executions and 100 stale `running` rows of another boot in the DB (so startup
   reconciliation has work). The stale rows are re-armed before every run.
2. Reaper: the duration of a reaper pass with N live terminal sessions (`sleep`), read from
   detailed health (`reaper.last_duration_ms`) over several ticks at reap_interval 1 s.

Usage: cargo build --release && bench/restart.py [--runs 10] [--sessions 1000]
Stdlib only; loopback only; every process it starts is stopped at the end.
"""
import argparse, json, os, shutil, sqlite3, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "claude-manager")
PORT = int(os.environ.get("PORT", "18090"))
BASE = f"http://127.0.0.1:{PORT}"


def get(path, token=None, timeout=2.0):
    req = urllib.request.Request(BASE + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def post(path, body, token):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())


def serve(data, *extra):
    return subprocess.Popen([BIN, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{PORT}",
                             "--log-level", "warning", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(p):
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def seed(db):
    c = sqlite3.connect(db)
    rows = [("terminal", "succeeded", "old-boot", '["sh"]', "2026-01-01T00:00:00.000Z")] * 10_000
    c.executemany("INSERT INTO executions (type, status, boot_id, command, created_at) "
                  "VALUES (?,?,?,?,?)", rows)
    c.commit()
    c.close()


def arm_stale(db):
    c = sqlite3.connect(db)
    c.execute("UPDATE executions SET status='running', finished_at=NULL, reason=NULL "
              "WHERE id IN (SELECT id FROM executions ORDER BY id DESC LIMIT 100)")
    c.commit()
    c.close()


def startup(runs):
    data = tempfile.mkdtemp(prefix="cm-bench-")
    subprocess.run([BIN, "migrate", "--create", "--data-dir", data], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([BIN, "token", "create", "--scope", "admin", "--name", "bench", "--data-dir",
                    data], check=True, stdout=subprocess.DEVNULL)
    db = os.path.join(data, "claude-manager.db")
    seed(db)
    times = []
    for _ in range(runs):
        arm_stale(db)
        t0 = time.perf_counter()
        p = serve(data)
        while True:
            try:
                if get("/api/health", timeout=0.5)[0] == 200:
                    break
            except OSError:
                time.sleep(0.001)
        times.append((time.perf_counter() - t0) * 1000)
        stop(p)
    shutil.rmtree(data, ignore_errors=True)
    times.sort()
    print(f"startup to first /api/health, 10000 executions + 100 stale, {runs} runs: "
          f"min {times[0]:.1f} ms, median {times[len(times)//2]:.1f} ms, max {times[-1]:.1f} ms")


def reaper(sessions):
    data = tempfile.mkdtemp(prefix="cm-bench-")
    # `token create` writes into an existing database only (it refuses a mistyped data dir).
    subprocess.run([BIN, "migrate", "--create", "--data-dir", data], check=True, stdout=subprocess.DEVNULL)
    token = subprocess.run([BIN, "token", "create", "--scope", "admin", "--name", "bench",
                            "--data-dir", data], check=True, capture_output=True,
                           text=True).stdout.strip()
    p = serve(data, "--reap-interval-secs", "1", "--max-sessions", str(sessions + 10),
              "--terminal-idle-timeout-secs", "86400", "--scrollback-bytes", "4096",
              "--allowed-roots", "/tmp")
    try:
        for _ in range(200):
            try:
                get("/api/health")
                break
            except OSError:
                time.sleep(0.05)
        for _ in range(sessions):
            status, _ = post("/api/terminals", {"command": ["sleep", "3600"], "cwd": "/tmp"}, token)
            assert status == 201
        seen = []
        last_runs = None
        deadline = time.time() + 30
        while len(seen) < 10 and time.time() < deadline:
            _, body = get("/api/system/health/detailed", token)
            r = json.loads(body)["reaper"]
            if r["runs"] != last_runs:
                if last_runs is not None:
                    seen.append(r["last_duration_ms"])
                last_runs = r["runs"]
            time.sleep(0.2)
        seen.sort()
        print(f"reaper pass with {sessions} live sessions, {len(seen)} passes: "
              f"min {seen[0]:.3f} ms, median {seen[len(seen)//2]:.3f} ms, max {seen[-1]:.3f} ms")
    finally:
        stop(p)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--sessions", type=int, default=1000)
    a = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    startup(a.runs)
    reaper(a.sessions)
