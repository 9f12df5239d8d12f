"""What the A/B scripts beside this file share: a free loopback port and waiting for a server
to listen on it."""

import socket
import time


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
