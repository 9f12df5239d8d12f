#!/usr/bin/env python3
"""Echo during a flood, two or more builds of the server alternating in one run.

For each round and each binary: a fresh server, a session flooding 40 MB of base64 over and over
(read by a raw WebSocket client), and, one second in, the keystroke echo round trip measured on
a second session of the same server (`termbench.py latency`, 3 runs). Prints each measurement and
the medians of p50 and p99 per binary. `PATH@N` runs `PATH` with `CM_WORKER_THREADS=N`. Only
the comparison between the binaries of one run means anything: the machine's load moves the
absolute figures.

    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install -r ../shared/bench/requirements.txt
    /tmp/tbvenv/bin/python bench/flood_echo.py --rounds 3 /tmp/cm-a /tmp/cm-b
"""

import argparse
import os
import statistics
import threading
import time

from local_server import TERMBENCH, alternate, free_port, start_cm, termbench_runs, wait_port

ECHO_CMD = "stty raw -echo; exec cat"


def measure(a, server):
    port = free_port()
    server = start_cm(server, port)
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
        server.terminate()
        server.wait(30)
    rs = [r for r in rs if "p50_us" in r]
    if not rs:
        return None
    return statistics.median(r["p50_us"] for r in rs), statistics.median(r["p99_us"] for r in rs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+",
                    help="server binaries to compare; PATH@N runs PATH with CM_WORKER_THREADS=N")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--count", type=int, default=1000, help="keystrokes per latency run")
    ap.add_argument("--flood-bytes", type=int, default=40_000_000)
    ap.add_argument("--termbench", default=TERMBENCH)
    a = ap.parse_args()
    if not os.path.exists(a.termbench):
        raise SystemExit(f"termbench.py not found at {a.termbench} (--termbench)")
    results = alternate(a.binaries, a.rounds, lambda b: measure(a, b),
                        lambda r: f"p50 {r[0]:.0f} µs, p99 {r[1]:.0f} µs")
    for b, rs in results.items():
        if rs:
            print(f"{b}: p50 median {statistics.median(r[0] for r in rs):.0f} µs, "
                  f"p99 median {statistics.median(r[1] for r in rs):.0f} µs over {len(rs)} rounds")


if __name__ == "__main__":
    main()
