#!/usr/bin/env python3
"""Keystroke echo: round trip, and what each keystroke costs the server, for several servers
alternating in one run.

A server is `PATH` (our binary), `PATH@N` (our binary with `CM_WORKER_THREADS=N`), `PATH@N,L`
(and `CM_SESSION_THREADS=L`) or a ttyd binary (its file name ends in `ttyd`). For each round and
each server: a fresh server, a session running `stty raw -echo; exec cat`, a warm-up of 100
keystrokes, then `--count` keystrokes sent back to back, or `--interval-ms` apart as a person
types (`termbench.py latency`, raw transport). Around the measured run it reads the
server's CPU time (`/proc/PID/stat`, user + system) and its threads' context switches
(`/proc/PID/task/*/status`), and prints per keystroke: echo p50 and p99, server CPU in µs, and
voluntary and involuntary context switches. Then the medians per server over the rounds. Only
the comparison between the servers of one run means anything: the machine's load moves the
absolute figures.

    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install -r ../shared/bench/requirements.txt
    /tmp/tbvenv/bin/python bench/echo_cpu.py --rounds 3 target/release/claude-manager@1 \\
        target/release/claude-manager@2 /tmp/ttyd-1.7.7/build/ttyd
"""

import glob
import os

from local_server import ECHO_CMD, bench_main, serve, stop, termbench_runs



def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_switches(pid):
    voluntary = involuntary = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(status) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary += int(line.split()[1])
        except OSError:
            pass  # a thread that ended between the listing and the read
    return voluntary, involuntary


def latency(a, target, count):
    runs = termbench_runs(a.termbench, ["latency", *target, "--transport", "raw", "--runs", "1",
                                        "--count", str(count), "--interval-ms", str(a.interval_ms)])
    return runs[0] if runs and "p50_us" in runs[0] else None


def measure(a, server):
    procs = []
    try:
        target = serve(server, ECHO_CMD, procs)
        proc = procs[0]
        latency(a, target, 100)  # warm-up: the session exists and the first attach is done
        cpu0, (vol0, invol0) = cpu_seconds(proc.pid), context_switches(proc.pid)
        run = latency(a, target, a.count)
        cpu1, (vol1, invol1) = cpu_seconds(proc.pid), context_switches(proc.pid)
    finally:
        stop(procs)
    if run is None:
        return None
    return {
        "p50_us": run["p50_us"],
        "p99_us": run["p99_us"],
        "cpu_us": (cpu1 - cpu0) / a.count * 1e6,
        "voluntary": (vol1 - vol0) / a.count,
        "involuntary": (invol1 - invol0) / a.count,
    }


def show(row):
    return (f"p50 {row['p50_us']:.0f} µs, p99 {row['p99_us']:.0f} µs, server CPU {row['cpu_us']:.1f} µs, "
            f"context switches {row['voluntary']:.2f} + {row['involuntary']:.2f} involuntary")


def main():
    def more_args(ap):
        ap.add_argument("--count", type=int, default=5000, help="keystrokes per measured run")
        ap.add_argument("--interval-ms", type=float, default=0.0,
                        help="pause between keystrokes (0: back to back)")

    bench_main(__doc__, measure, show, more_args)


if __name__ == "__main__":
    main()
