#!/usr/bin/env bash
# REST benchmark (issue: foundation): wrk -t2 -c50 -d10s against health, detailed health and a
# 100-task list, through ../shared/bench/httpbench.py. Loopback only, bounded runs.
#   bench/http.sh [RUNS]      (needs: cargo build --release; apt-get install wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
bench=${BENCH_DIR:-../shared/bench}
data=$(mktemp -d)
port=${PORT:-18080}
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT

target/release/claude-manager serve --data-dir "$data" --bind "127.0.0.1:$port" --log-level warning >/dev/null &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done
for i in $(seq 100); do
    curl -sf -XPOST "http://127.0.0.1:$port/api/tasks" -H 'content-type: application/json' \
        -d "{\"title\":\"benchmark task $i\",\"description\":\"$(printf 'd%.0s' $(seq 300))\",\"tags\":[\"bench\",\"t$((i % 7))\"]}" >/dev/null
done
python3 "$bench/httpbench.py" --tool wrk --runs "$runs" \
    --url "http://127.0.0.1:$port/api/system/health" \
    --url "http://127.0.0.1:$port/api/system/health/detailed" \
    --url "http://127.0.0.1:$port/api/tasks?limit=100" \
    --json-out "${JSON_OUT:-/tmp/cm-http.json}"
