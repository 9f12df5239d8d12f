#!/usr/bin/env bash
# REST benchmark: wrk -t2 -c50 -d10s against health, detailed health and a 100-task list, RUNS
# times each. Two passes:
#   1. the server in --insecure-no-auth mode (no token lookup: the cost of the routes alone);
#   2. an admin Bearer token on every request (what a real deployment pays: one token lookup per
#      request).
# Loopback only, bounded runs.   bench/http.sh [RUNS]
# Needs: cargo build --release; apt-get install wrk curl.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
bin=target/release/claude-manager
port=${PORT:-18080}
base="http://127.0.0.1:$port"
urls=("$base/api/system/health" "$base/api/system/health/detailed" "$base/api/tasks?limit=100")
pid=""
data=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [ -n "$data" ]; then rm -rf "$data"; fi
}
trap cleanup EXIT

start() {   # start [extra serve flags...]
    data=$(mktemp -d)
    "$bin" migrate --create --data-dir "$data" >/dev/null
    token=$("$bin" token create --scope admin --name bench --data-dir "$data" 2>/dev/null)
    "$bin" serve --data-dir "$data" --bind "127.0.0.1:$port" --log-level warning "$@" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "$base/api/health" >/dev/null && break; sleep 0.1; done
    local desc
    desc=$(printf 'd%.0s' $(seq 300))
    for i in $(seq 100); do
        curl -sf -XPOST "$base/api/tasks" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
            -d "{\"title\":\"benchmark task $i\",\"description\":\"$desc\",\"tags\":[\"bench\",\"t$((i % 7))\"]}" >/dev/null
    done
}

# measure [wrk header args...]: every URL, RUNS times, one line per run.
measure() {
    for u in "${urls[@]}"; do
        for r in $(seq "$runs"); do
            out=$(wrk -t2 -c50 -d10s --timeout 30s --latency "$@" "$u")
            rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
            p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
            non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
            echo "$u run $r: ${rps} req/s, p99 ${p99}, non-2xx ${non2xx:-0}"
        done
    done
}

echo "== pass 1: --insecure-no-auth"
start --insecure-no-auth
measure
cleanup; pid=""; data=""

echo "== pass 2: an admin Bearer token"
start
measure -H "Authorization: Bearer $token"
