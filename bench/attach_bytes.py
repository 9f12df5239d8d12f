"""Whether every byte reaches a viewer that attaches while a session floods output.

The side-by-side script counts the bytes its viewer receives and compares them with what the
producer printed; ours come out a few kB above or below. This says why: for each delay, a fresh
session prints `--bytes` of base64 (`head -c N /dev/zero | base64`, as `sidebyside.py` does), a
raw WebSocket viewer attaches after the delay and reads to the `exit` message, and the script
checks that the bytes after the snapshot (the first attach gets the screen as a snapshot,
DESIGN "Terminal screen on the server") are exactly the output from the offset the snapshot
stands for to the end. With `--stall`, the viewer stops reading for a while mid-stream, falls
out of the ring, and the check is on what follows its last snapshot or resync. Exits 1 if any run misses a byte. `SHOW_CONTROL=1` prints each control
message the viewer receives.

    python3 bench/attach_bytes.py target/release/claude-manager --bytes 20000000 --delays 0 0.05 0.3
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

from local_server import TERMBENCH, free_port, start_cm, stop, wait_port

sys.path.insert(0, os.path.dirname(TERMBENCH))
from tb_rawws import RawWS  # noqa: E402  (the shared benchmark's WebSocket client)


def producer(n):
    return f"head -c {n} /dev/zero | base64"


def expected_bytes(n):
    """What the viewer should see in all: the producer's output with each `\\n` sent as `\\r\\n`
    (the tty's output processing)."""
    out = subprocess.run(["sh", "-c", producer(n)], capture_output=True, check=True).stdout
    return len(out) + out.count(b"\n")


def attach_once(port, n, delay, stall):
    body = json.dumps({"cols": 120, "rows": 40, "command": ["sh", "-c", producer(n)]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/terminals", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        session = json.loads(response.read())["id"]
    # The delay is the setting under test (how much output precedes the attach), not a wait.
    time.sleep(delay)
    ws = RawWS(f"ws://127.0.0.1:{port}/api/terminals/{session}/ws", timeout=60)
    ws.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
    # `after`: bytes since the last snapshot or resync, which must be the output from `offset`.
    total, after, snapshot, offset, restarts, next_is_snapshot = 0, 0, 0, 0, 0, False
    while True:
        message = ws.recv()
        if isinstance(message, str):
            control = json.loads(message)
            if os.environ.get("SHOW_CONTROL"):
                print(control, "after", total, flush=True)
            if control["type"] in ("attached", "snapshot", "resync"):
                offset, after = control["offset"], 0
                restarts += control["type"] != "attached"
                next_is_snapshot = control["type"] == "snapshot"
            if control["type"] == "exit":
                break
            continue
        if stall and total < stall[0] <= total + len(message):
            # The viewer stops reading for a while (the setting under test), as a laptop that
            # sleeps does: it falls out of the ring and must get the screen, then the rest.
            time.sleep(stall[1])
        total += len(message)
        if next_is_snapshot:
            snapshot, next_is_snapshot = len(message), False
        else:
            after += len(message)
    ws.close()
    return total, after, snapshot, offset, restarts


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server", help="our binary")
    ap.add_argument("--bytes", type=int, default=20_000_000, help="input bytes to base64")
    ap.add_argument("--delays", type=float, nargs="+", default=[0, 0.05, 0.3],
                    help="seconds between creating the session and attaching")
    ap.add_argument("--stall", type=float, nargs=2, metavar=("AFTER_BYTES", "SECONDS"),
                    help="stop reading for SECONDS once AFTER_BYTES have arrived")
    a = ap.parse_args()
    expected = expected_bytes(a.bytes)
    missed = 0
    for delay in a.delays:
        port = free_port()
        procs = [start_cm(a.server, port)]
        try:
            wait_port(port)
            total, live, snapshot, offset, restarts = attach_once(port, a.bytes, delay, a.stall)
        finally:
            stop(procs)
        live_expected = expected - offset
        missed += live != live_expected
        print(f"delay {delay} s: received {total} of the producer's {expected} bytes "
              f"({total - expected:+d}); {restarts} snapshot(s) or resync(s), the last a "
              f"snapshot of {snapshot} bytes standing for offset {offset}, then {live} bytes: "
              f"{'all' if live == live_expected else 'NOT all'} {live_expected} from that "
              "offset to the end", flush=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
