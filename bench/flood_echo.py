#!/usr/bin/env python3
"""Echo during a flood, two or more builds of the server alternating in one run.

For each round and each binary: a fresh server, a session flooding 40 MB of base64 over and over
(read by a raw WebSocket client), and, one second in, the keystroke echo round trip measured on
a second session of the same server (`termbench.py latency`, 3 runs). Prints each measurement and
the medians of p50 and p99 per binary. `PATH@N` runs `PATH` with `CM_WORKER_THREADS=N`, `PATH@N,L` also with `CM_SESSION_THREADS=L`. Only
the comparison between the binaries of one run means anything: the machine's load moves the
absolute figures.

    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install -r ../shared/bench/requirements.txt
    /tmp/tbvenv/bin/python bench/flood_echo.py --rounds 3 /tmp/cm-a /tmp/cm-b
"""

import statistics
import threading
import time

from local_server import bench_main, free_port, start_cm, termbench_runs, wait_port

ECHO_CMD = "stty raw -echo; exec cat"


def measure(a, server):
    port = free_port()
    proc = start_cm(server, port)
    try:
        wait_port(port)
        url = f"ws://127.0.0.1:{port}"
        stop = threading.Event()

        def flood():
            while not stop.is_set():
                termbench_runs(a.termbench, ["throughput", "--adapter", "cm", "--url", url, "--transport", "raw",
                              "--runs", "1", "--max-seconds", "60",
                              "--opt", f"command=head -c {a.flood_bytes} /dev/zero | base64"])

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        time.sleep(1.0)
        rs = termbench_runs(a.termbench, ["latency", "--adapter", "cm", "--url", url, "--transport", "raw",
                               "--runs", "3", "--count", str(a.count), "--opt", f"command={ECHO_CMD}"])
        stop.set()
        flooder.join(120)
    finally:
        proc.terminate()
        proc.wait(30)
    rs = [r for r in rs if "p50_us" in r]
    if not rs:
        return None
    return {k: statistics.median(r[k] for r in rs) for k in ("p50_us", "p99_us")}


def main():
    def more_args(ap):
        ap.add_argument("--count", type=int, default=1000, help="keystrokes per latency run")
        ap.add_argument("--flood-bytes", type=int, default=40_000_000)

    bench_main(__doc__, measure, lambda r: f"p50 {r['p50_us']:.0f} µs, p99 {r['p99_us']:.0f} µs",
               more_args, servers_help="server binaries to compare; PATH@N runs PATH with CM_WORKER_THREADS=N, "
               "PATH@N,L also with CM_SESSION_THREADS=L")


if __name__ == "__main__":
    main()
