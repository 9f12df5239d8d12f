#!/usr/bin/env python3
"""Echo during a flood, two or more builds of the server alternating in one run.

For each round and each binary: a fresh server, a session flooding 40 MB of base64 over and over
(read by a raw WebSocket client), and, one second in, the keystroke echo round trip measured on
a second session of the same server (`termbench.py latency`, 3 runs). Prints each measurement and
the medians of p50 and p99 per binary. `PATH@N` runs `PATH` with `CM_WORKER_THREADS=N`,
`PATH@N,L` also with `CM_SESSION_THREADS=L`. A binary whose name ends in `ttyd` is ttyd, which
serves one command per process: its flood runs on one ttyd process and the echo on a second, as
`sidebyside.py` measures it. `FLOOD~ECHO` floods on server FLOOD and measures the echo on server
ECHO, each a process of its own (`A~A` for one of ours measures our echo with the flood on a
second server). Only the comparison between the binaries of one run means anything:
the machine's load moves the absolute figures.

    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install -r ../shared/bench/requirements.txt
    /tmp/tbvenv/bin/python bench/flood_echo.py --rounds 3 /tmp/cm-a /tmp/cm-b /tmp/ttyd-1.7.7/build/ttyd
"""

import statistics
import threading
import time

from local_server import ECHO_CMD, bench_main, free_port, is_ttyd, serve, start_cm, stop, termbench_runs, wait_port


def measure(a, server):
    """Our server: one server, the flood and the echo on two of its sessions. ttyd serves one
    command per process: the flood on one ttyd process, the echo on a second (as
    `sidebyside.py` measures it). `FLOOD~ECHO`: the flood on server FLOOD, the echo on server
    ECHO, each a process of its own (which server's flood weighs on an echo)."""
    # No trailing sleep for ttyd (`throughput_cpu.py` has one so that every byte arrives): the
    # flood is only noise here, and a pause between floods would be quiet that our server's
    # floods do not have.
    producer = f"head -c {a.flood_bytes} /dev/zero | base64"
    procs = []
    try:
        flooding, _, echoing = server.partition("~")
        if echoing or is_ttyd(server):
            flood_target = serve(flooding, producer, procs)
            echo_target = serve(echoing or server, ECHO_CMD, procs)
        else:
            port = free_port()
            procs.append(start_cm(server, port))
            wait_port(port)
            url = f"ws://127.0.0.1:{port}"
            flood_target = ["--adapter", "cm", "--url", url, "--opt", f"command={producer}"]
            echo_target = ["--adapter", "cm", "--url", url, "--opt", f"command={ECHO_CMD}"]
        done = threading.Event()

        def flood():
            while not done.is_set():
                termbench_runs(a.termbench, ["throughput", "--transport", "raw", "--runs", "1",
                                             "--max-seconds", "60"] + flood_target)

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        time.sleep(1.0)
        rs = termbench_runs(a.termbench, ["latency", "--transport", "raw", "--runs", "3",
                                          "--count", str(a.count)] + echo_target)
        done.set()
        flooder.join(120)
    finally:
        stop(procs)
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
               "PATH@N,L also with CM_SESSION_THREADS=L; a binary named ...ttyd is ttyd; FLOOD~ECHO "
               "floods on one server and measures the echo on another")


if __name__ == "__main__":
    main()
