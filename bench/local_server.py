"""What the A/B scripts beside this file share: starting our server (`PATH`, or `PATH@N` which
runs `PATH` with `CM_WORKER_THREADS=N`, or `PATH@N,L` with `CM_SESSION_THREADS=L` too) on a free
loopback port, running `termbench.py`, and alternating the servers round by round."""

import argparse
import json
import os
import shutil
import statistics
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TERMBENCH = os.path.join(HERE, "..", "..", "shared", "bench", "termbench.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, within_s=10.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not listen on {port} within {within_s} s")


def alternate(servers, rounds, measure, show):
    """`measure(server)` for each server in turn, `rounds` times over, so that the machine's
    load falls on all of them alike. Prints each result (`show`, or "failed" for `None`);
    returns the results per server."""
    results = {server: [] for server in servers}
    for _ in range(rounds):
        for server in servers:
            result = measure(server)
            print(server, "failed" if result is None else show(result), flush=True)
            if result is not None:
                results[server].append(result)
    return results


def start_cm(server, port):
    """Our server `PATH`, `PATH@N` or `PATH@N,L` on `port`, without authentication, in a fresh
    data directory (removed by `stop`)."""
    binary, _, threads = server.partition("@")
    workers, _, lanes = threads.partition(",")
    env = dict(os.environ, CM_LOG_LEVEL="warning")
    if workers:
        env["CM_WORKER_THREADS"] = workers
    if lanes:
        env["CM_SESSION_THREADS"] = lanes
    data = tempfile.mkdtemp(prefix="cm-bench-")
    proc = subprocess.Popen([binary, "serve", "--insecure-no-auth", "--bind", f"127.0.0.1:{port}",
                             "--data-dir", data], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.data_dir = data
    return proc


# The session the echo scripts type into: no line discipline echo, `cat` sends each byte back.
ECHO_CMD = "stty raw -echo; exec cat"


def is_ttyd(server):
    """Whether `server` is ttyd: a binary whose name ends in `ttyd`."""
    return os.path.basename(server.partition("@")[0]).endswith("ttyd")


def start_server(server, port, command):
    """Our server (`PATH`, `PATH@N`, `PATH@N,L`) or ttyd (a binary whose name ends in `ttyd`) on
    `port`, and the `termbench.py` arguments that reach a session running `sh -c COMMAND` on it
    (ttyd runs the command for each connection; ours gets it with each new session)."""
    path = server.partition("@")[0]
    if is_ttyd(server):
        proc = subprocess.Popen([path, "-p", str(port), "-i", "127.0.0.1", "-W", "sh", "-c", command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return proc, ["--adapter", "ttyd", "--url", f"ws://127.0.0.1:{port}/ws"]
    proc = start_cm(server, port)
    return proc, ["--adapter", "cm", "--url", f"ws://127.0.0.1:{port}", "--opt", f"command={command}"]


def serve(server, command, procs):
    """`server` (ours or ttyd, as `start_server`) on a free port for `command`, added to `procs`
    and listening: its `termbench.py` arguments. `stop(procs)` ends them."""
    port = free_port()
    proc, target = start_server(server, port, command)
    procs.append(proc)
    wait_port(port)
    return target


def stop(procs):
    """Ends the servers `serve` started (or any processes in `procs`) and removes the data
    directories `start_cm` made for them."""
    for proc in procs:
        proc.terminate()
        proc.wait(30)
        if getattr(proc, "data_dir", None):
            shutil.rmtree(proc.data_dir, ignore_errors=True)


def termbench_runs(termbench, args):
    """The runs `termbench.py ARGS` reports (each a dict), or [] when it failed."""
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        subprocess.run([sys.executable, termbench] + args + ["--json-out", out],
                       capture_output=True, text=True, timeout=600)
        with open(out) as f:
            result = json.load(f)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    finally:
        os.unlink(out)
    while isinstance(result, dict) and "runs" not in result and "result" in result:
        result = result["result"]
    runs = result.get("runs") if isinstance(result, dict) else result
    return [r for r in runs or [] if isinstance(r, dict)]


def bench_main(doc, measure, show, more_args=None,
               servers_help="PATH, PATH@WORKER_THREADS[,SESSION_THREADS], or a ttyd binary"):
    """The command line the A/B scripts share: SERVERS..., `--rounds`, `--termbench`, and what
    `more_args(parser)` adds. Runs `measure(args, server)` alternating (`alternate`), then prints
    the median of each field per server; returns those medians (dicts of numbers) per server."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("servers", nargs="+", help=servers_help)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--termbench", default=TERMBENCH)
    if more_args:
        more_args(ap)
    a = ap.parse_args()
    if not os.path.exists(a.termbench):
        raise SystemExit(f"termbench.py not found at {a.termbench} (--termbench)")
    results = alternate(a.servers, a.rounds, lambda server: measure(a, server), show)
    medians = {}
    for server, rows in results.items():
        if rows:
            medians[server] = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(f"{server}: median over {len(rows)} rounds: {show(medians[server])}")
    return medians
