#!/usr/bin/env bash
#
# Chaos on this machine, for real: runs the whole platform as processes (InfluxDB, NATS,
# the collector, the query service, two stream hubs) with simulated riders sending readings
# and live followers following them, then for a set time kills (SIGKILL) and restarts a
# random service — collector, a stream hub, query, NATS, InfluxDB — at intervals. At the
# end it checks that every reading the collector acknowledged is in InfluxDB and that the
# followers of every restarted hub got readings again, and reports the figures.
#
#   deploy/local/chaos.sh                          # two minutes of faults
#   deploy/local/chaos.sh --duration 30m --every 20s --json chaos.json
#   deploy/local/chaos.sh --help                   # every option (velometry-lab chaos)
#
# Installs what is missing first (influxd, nats-server with apt-get) and builds the release
# binaries. Exits non-zero when an acknowledged reading is missing or followers stay dark.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$root"

require_cargo
ensure_commands "${BUILD_COMMANDS[@]}" influxd:influxdb nats-server:nats-server

say "Building the release binaries"
cargo build --release --quiet --bins
exec "$root/target/release/velometry-lab" chaos "$@"
