#!/usr/bin/env python3
"""Throughput and the server's CPU for it, for several servers alternating in one run.

A server is `PATH` (our binary), `PATH@N` (our binary with `CM_WORKER_THREADS=N`), `PATH@N,L`
(and `CM_SESSION_THREADS=L`) or a ttyd binary (its file name ends in `ttyd`). For each round and
each server: a fresh server, one session running `head -c BYTES /dev/zero | base64` (ttyd:
followed by `sleep 0.5`, so that it does not drop output still in the pty when the command
exits), read by a raw WebSocket client
(`termbench.py throughput`, with the server's CPU time from `/proc`). Prints each run (seconds,
server CPU, bytes, messages and their average size), then the medians per server and, when a
ttyd is among the servers, each one's CPU and speed as a ratio of the first ttyd's. Only the
comparison between the servers of one run means anything: the machine's load moves the
absolute figures.

    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install -r ../shared/bench/requirements.txt
    /tmp/tbvenv/bin/python bench/throughput_cpu.py --rounds 5 /tmp/ttyd-1.7.7/build/ttyd \\
        target/release/claude-manager@1
"""

from local_server import bench_main, is_ttyd, serve, stop, termbench_runs


def measure(a, server):
    producer = f"head -c {a.bytes} /dev/zero | base64"
    procs = []
    try:
        target = serve(server, producer + ("; sleep 0.5" if is_ttyd(server) else ""), procs)
        runs = termbench_runs(a.termbench, ["throughput", *target, "--transport", "raw", "--runs", "1",
                                            "--max-seconds", "300", "--server-pid", str(procs[0].pid)])
    finally:
        stop(procs)
    run = runs[0] if runs else None
    if not run or not run.get("server_cpu_s"):
        return None
    return {k: run[k] for k in ("seconds", "server_cpu_s", "bytes", "messages", "avg_msg_bytes")}


def show(row):
    return (f"{row['seconds']:.2f} s, server CPU {row['server_cpu_s']:.2f} s, {row['bytes']} bytes in "
            f"{row['messages']} messages of {row['avg_msg_bytes']:.0f} bytes")


def main():
    medians = bench_main(__doc__, measure, show, lambda ap: ap.add_argument(
        "--bytes", type=int, default=100_000_000, help="bytes before base64"))
    ttyd = next((s for s in medians if is_ttyd(s)), None)
    if ttyd:
        for server, m in medians.items():
            print(f"{server}: CPU {m['server_cpu_s'] / medians[ttyd]['server_cpu_s']:.3f} of ttyd's, "
                  f"speed {medians[ttyd]['seconds'] / m['seconds']:.3f} of ttyd's")


if __name__ == "__main__":
    main()
