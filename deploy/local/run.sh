#!/usr/bin/env bash
#
# Runs the whole velometry platform on this machine: InfluxDB, NATS (JetStream) and the
# collector, the query service, the stream hub and the progress service, built in release
# mode, with a demo rider whose readings flow from the start and a demo race of three
# simulated riders on the example course (deploy/events/).
#
#   deploy/local/run.sh          # Ctrl-C stops everything
#
# What it does, in order:
#   1. installs what is missing (influxd, influx, nats-server, curl, a C toolchain, Node.js
#      and npm for the spectator page's build) with apt-get; cargo must already be there
#      (rustup);
#   2. builds the service binaries with `cargo build --release` (the stream hub's build
#      installs the page's pinned npm packages and bundles them);
#   3. keeps all its state in one folder at the repository root, .velometry/ (git-ignored):
#        influxdb.conf  influxdb/  InfluxDB's config and data
#        nats/          the JetStream store
#        prometheus/    Prometheus's data (prometheus.yml: its config, written at every start)
#        wal/           the collector's write-ahead log (and dead letters)
#        riders.toml    rider "demo" (public) with device "phone"; riders racer1-racer3
#                       in the event "demo-race" (the example loop, started with this run),
#                       and the progress service's [[service]] entry
#        dev-token      that device's token, fresh at every start (mode 600; never commit it);
#                       the racers' and the progress service's tokens are fresh too, and
#                       never written down
#        logs/          one log per process
#        run.lock       held while this script (or anything it started) runs
#      Data survives restarts; `rm -rf .velometry` starts from nothing;
#   4. starts influxd, nats-server, the collector, the query service, the stream hub, the
#      progress service and Prometheus (deploy/prometheus/, on this run's ports), waits until each answers, and
#      prints
#      the URLs, the token and commands to post a reading and to see it in InfluxDB;
#   5. on Ctrl-C (or SIGTERM, or the terminal closing) stops the collector first and waits
#      while it flushes its write-ahead log to InfluxDB, then NATS, then InfluxDB. If one of
#      them dies on its own, it shows the end of its log and stops the others.
#
# Ports (all on 127.0.0.1), each overridable from the environment:
#   VELOMETRY_COLLECTOR_PORT   8080  collector ingest (HTTP)
#   VELOMETRY_METRICS_PORT     9180  collector /metrics
#   VELOMETRY_STREAM_PORT      8090  stream hub: spectator page and WebSocket
#   VELOMETRY_STREAM_METRICS_PORT 9190  stream hub /metrics
#   VELOMETRY_QUERY_PORT       8070  query service: history API
#   VELOMETRY_QUERY_METRICS_PORT 9170  query service /metrics
#   VELOMETRY_PROGRESS_PORT    8060  progress service (/healthz, /readyz)
#   VELOMETRY_PROGRESS_METRICS_PORT 9160  progress service /metrics
#   VELOMETRY_PROMETHEUS_PORT  9090  Prometheus (scrapes the three, evaluates the alert rules)
#   VELOMETRY_INFLUX_PORT      8086  InfluxDB HTTP API
#   VELOMETRY_INFLUX_RPC_PORT  8088  InfluxDB backup/restore RPC (default: the HTTP port + 2)
#   VELOMETRY_NATS_PORT        4222  NATS clients
# VELOMETRY_INFLUX_DB (default velometry) names the database. The collector also reads its
# other settings from VELOMETRY_* variables (see `collector serve --help`), so for example
# VELOMETRY_WAL_MAX_BYTES=256MiB deploy/local/run.sh bounds the WAL.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$root"

# The binaries to build, one line per service. A service is built once its crate folder
# (named like its binary, as the house style lays out) has a binary (src/main.rs); one that
# should run also needs a `start` line in the "Start" section below.
SERVICES=(
  collector
  query
  stream
  progress
)

state=$root/.velometry
logs=$state/logs
db=${VELOMETRY_INFLUX_DB:-velometry}

# ---------------------------------------------------------------------------------------
# Ports

# port_var NAME DEFAULT — the value of environment variable NAME (DEFAULT when unset),
# checked to be a TCP port.
port_var() {
  local value=${!1:-$2}
  if ! [[ $value =~ ^[1-9][0-9]{0,4}$ ]] || ((value > 65535)); then
    die "$1=$value is not a TCP port (1-65535)"
  fi
  printf '%s' "$value"
}

collector_port=$(port_var VELOMETRY_COLLECTOR_PORT 8080)
metrics_port=$(port_var VELOMETRY_METRICS_PORT 9180)
stream_port=$(port_var VELOMETRY_STREAM_PORT 8090)
stream_metrics_port=$(port_var VELOMETRY_STREAM_METRICS_PORT 9190)
query_port=$(port_var VELOMETRY_QUERY_PORT 8070)
query_metrics_port=$(port_var VELOMETRY_QUERY_METRICS_PORT 9170)
progress_port=$(port_var VELOMETRY_PROGRESS_PORT 8060)
progress_metrics_port=$(port_var VELOMETRY_PROGRESS_METRICS_PORT 9160)
prometheus_port=$(port_var VELOMETRY_PROMETHEUS_PORT 9090)
influx_port=$(port_var VELOMETRY_INFLUX_PORT 8086)
# InfluxDB 1.x opens a second listener for backup/restore RPC, 127.0.0.1:8088 unless told
# otherwise. Following the HTTP port means one override moves both (18086 → 18088).
influx_rpc_port=$(port_var VELOMETRY_INFLUX_RPC_PORT $((influx_port + 2)))
nats_port=$(port_var VELOMETRY_NATS_PORT 4222)

# Each port with what uses it and the variable that moves it.
PORTS=(
  "$collector_port|collector ingest|VELOMETRY_COLLECTOR_PORT"
  "$metrics_port|collector metrics|VELOMETRY_METRICS_PORT"
  "$stream_port|stream hub|VELOMETRY_STREAM_PORT"
  "$stream_metrics_port|stream hub metrics|VELOMETRY_STREAM_METRICS_PORT"
  "$query_port|query service|VELOMETRY_QUERY_PORT"
  "$query_metrics_port|query service metrics|VELOMETRY_QUERY_METRICS_PORT"
  "$progress_port|progress service|VELOMETRY_PROGRESS_PORT"
  "$progress_metrics_port|progress service metrics|VELOMETRY_PROGRESS_METRICS_PORT"
  "$prometheus_port|Prometheus|VELOMETRY_PROMETHEUS_PORT"
  "$influx_port|InfluxDB HTTP|VELOMETRY_INFLUX_PORT"
  "$influx_rpc_port|InfluxDB RPC|VELOMETRY_INFLUX_RPC_PORT"
  "$nats_port|NATS|VELOMETRY_NATS_PORT"
)

# Whether anything listens on a TCP port, on any address.
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
  else
    # Without iproute2: something answers on 127.0.0.1, where all of ours listen.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Who holds a port ("influxd (pid 123)"), when ss can tell; empty otherwise.
port_holder() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null |
    sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1
}

# Stops with one message naming every port that is taken, who holds it and how to move ours.
check_ports() {
  local entry port what var seen=" " problems=() holder
  for entry in "${PORTS[@]}"; do
    IFS='|' read -r port what var <<<"$entry"
    if [[ $seen == *" $port "* ]]; then
      problems+=("port $port is given to two services (the second is $what); set $var to another")
      continue
    fi
    seen+="$port "
    if port_in_use "$port"; then
      holder=$(port_holder "$port")
      problems+=("port $port ($what) is in use${holder:+ by $holder}; free it, or choose another: $var=<port> deploy/local/run.sh")
    fi
  done
  ((${#problems[@]} == 0)) && return 0
  printf 'error: %s\n' "${problems[@]}" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------
# Processes
#
# Every process is started in a session of its own (setsid), out of the terminal's
# foreground process group. Otherwise Ctrl-C would reach InfluxDB and NATS at the same moment
# as the collector, and the collector's final flush would find InfluxDB gone. This script
# receives Ctrl-C alone and stops them in order.

declare -A pid=()  # name → process id, of what is running now
declare -A log=()  # name → log file

# start NAME COMMAND... — runs COMMAND in the background with its output in logs/NAME.log.
start() {
  local name=$1
  shift
  log[$name]=$logs/$name.log
  setsid "$@" </dev/null >"${log[$name]}" 2>&1 &
  pid[$name]=$!
}

# Prints the end of a process's log, to explain why it stopped.
show_log() {
  printf -- '--- last lines of %s ---\n' "${log[$1]}" >&2
  tail -n 20 "${log[$1]}" >&2 || true
  printf -- '---\n' >&2
}

# wait_ready NAME SECONDS CHECK... — runs CHECK until it succeeds. Stops the script if NAME
# exits first or SECONDS pass.
wait_ready() {
  local name=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" 2>/dev/null; do
    if ! kill -0 "${pid[$name]}" 2>/dev/null; then
      local status=0
      wait "${pid[$name]}" || status=$?
      unset "pid[$name]"
      show_log "$name"
      die "$name exited during start-up (status $status); its log is above"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$name"
      die "$name did not answer within $2 s; its log is above"
    fi
    sleep 0.2
  done
  say "$name is ready."
}

http_ok() { curl -fsS -o /dev/null --max-time 1 "$1"; }
tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1"); }

# stop NAME GRACE [SIGNAL] — sends SIGNAL (TERM by default), gives the process up to GRACE
# seconds to exit, then SIGKILLs it; reports an unclean exit.
stop() {
  local name=$1 grace=$2 signal=${3:-TERM} p=${pid[$1]:-}
  [[ -n $p ]] || return 0
  unset "pid[$name]"
  # Already gone (and reaped by bash): nothing to stop. Do not `wait` for it then: bash may
  # have dropped a child that died on its own from its job table, and `wait` would block
  # on the others.
  kill -0 "$p" 2>/dev/null || return 0
  say "Stopping $name (pid $p)…"
  kill -"$signal" "$p" 2>/dev/null
  local deadline=$((SECONDS + grace)) status=0
  # bash reaps the child while it runs each sleep, after which kill -0 fails.
  while kill -0 "$p" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    warn "$name did not stop within $grace s; killing it (see ${log[$name]})"
    kill -KILL "$p" 2>/dev/null
  fi
  wait "$p" 2>/dev/null || status=$?
  ((status == 0)) || warn "$name exited with status $status (see ${log[$name]})"
}

# Runs once, on any exit: Ctrl-C, SIGTERM, a failed start, or a process that died.
cleanup() {
  local status=$?
  # A second Ctrl-C must not cut the shutdown short and leave processes behind.
  trap '' INT TERM HUP
  set +e
  ((${#pid[@]})) && echo && say "Shutting down."
  stop demo-rider 5
  stop demo-race 5
  stop progress 10
  stop stream 10
  stop query 15
  stop prometheus 10
  # The collector first, and with time to flush: it writes what its WAL still holds to
  # InfluxDB (up to --flush-timeout, 10 s by default, after up to 10 s of requests in
  # flight), so InfluxDB must still be up. Whatever it could not send stays in the WAL.
  stop collector 30
  # SIGINT is nats-server's clean stop; on SIGTERM it exits with status 1.
  stop nats 15 INT
  stop influxd 15
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------------------------------
# Install and build

require_cargo
ensure_commands "${BUILD_COMMANDS[@]}" \
  influxd:influxdb \
  influx:influxdb-client \
  nats-server:nats-server \
  prometheus:prometheus \
  curl:curl \
  setsid:util-linux \
  flock:util-linux \
  'node:nodejs npm' \
  npm:npm

# One copy at a time per checkout: a second would rewrite the token and share data folders.
# The processes started below inherit the lock, so it also holds while any of them is left.
mkdir -p "$state"
exec {lock_fd}>"$state/run.lock"
flock -n "$lock_fd" ||
  die "another deploy/local/run.sh is running from $root, or left processes behind:
       pgrep -af $(printf '%q' "$state")"

# Before the build, which takes minutes: a taken port should not cost that wait.
check_ports

built=() bins=()
for service in "${SERVICES[@]}"; do
  if [[ -f $root/$service/src/main.rs ]]; then
    built+=("$service")
    bins+=(--bin "$service")
  fi
done
say "Building ${built[*]} (release)…"
cargo build --release "${bins[@]}" || die "the build failed (see above)"
bin_dir=${CARGO_TARGET_DIR:-$root/target}/release

# ---------------------------------------------------------------------------------------
# State: folders, InfluxDB config, riders file and token

mkdir -p "$state/influxdb" "$state/nats" "$state/wal" "$state/prometheus" "$logs"
chmod 700 "$state"  # it holds the device token

# Every listener on 127.0.0.1 and on our ports, including the RPC one (the top-level
# bind-address), which would otherwise be 127.0.0.1:8088 whatever the HTTP port, and clash
# with any other InfluxDB on this machine.
cat >"$state/influxdb.conf" <<EOF
# Written by deploy/local/run.sh at every start; edits are lost.
reporting-disabled = true
bind-address = "127.0.0.1:$influx_rpc_port"

[meta]
  dir = "$state/influxdb/meta"

[data]
  dir = "$state/influxdb/data"
  wal-dir = "$state/influxdb/wal"
  query-log-enabled = false
  # Velometry's setting (docs/deploy.md, "InfluxDB settings"): the shard being written keeps
  # at most 4 MB in memory, which every query of it would copy.
  cache-snapshot-memory-size = "4m"

[monitor]
  store-enabled = false

[http]
  bind-address = "127.0.0.1:$influx_port"
  log-enabled = false
EOF

tokens=$("$bin_dir/collector" token)
token=$(awk '$1 == "token:" { print $2 }' <<<"$tokens")
token_sha256=$(awk '$1 == "token_sha256:" { print $2 }' <<<"$tokens")
[[ $token == velo_* && $token_sha256 =~ ^[0-9a-f]{64}$ ]] ||
  die "\`collector token\` printed something unexpected; expected 'token: velo_…' and 'token_sha256: <64 hex>'"
unset tokens

# The demo race: three racers and the progress service, each with a token of its own.
new_token() {
  local out
  out=$("$bin_dir/collector" token)
  printf '%s %s' "$(awk '$1 == "token:" { print $2 }' <<<"$out")" \
    "$(awk '$1 == "token_sha256:" { print $2 }' <<<"$out")"
}
racer_tokens=() racer_hashes=()
for i in 1 2 3; do
  read -r t h <<<"$(new_token)"
  racer_tokens+=("$t")
  racer_hashes+=("$h")
done
read -r service_token service_sha256 <<<"$(new_token)"
race_start=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# Created afresh, never rewritten in place: a file left with a wider mode stays that way.
rm -f "$state/dev-token"
(umask 077 && printf '%s\n' "$token" >"$state/dev-token")

cat >"$state/riders.toml" <<EOF
# Written by deploy/local/run.sh at every start, with a fresh token; edits are lost.
[[rider]]
id = "demo"
name = "Demo rider"
public = true
  [[rider.device]]
  id = "phone"
  token_sha256 = "$token_sha256"
EOF
for i in 1 2 3; do
  cat >>"$state/riders.toml" <<EOF

[[rider]]
id = "racer$i"
name = "Racer $i"
public = true
  [[rider.device]]
  id = "phone"
  token_sha256 = "${racer_hashes[i - 1]}"
EOF
done
cat >>"$state/riders.toml" <<EOF

# The demo race (docs/events.md): the example loop, started with this run.
[[event]]
id = "demo-race"
name = "Demo race on the example loop"
course = "$root/deploy/events/example-course.gpx"
public = true
start = "$race_start"
riders = ["racer1", "racer2", "racer3"]
checkpoints = "waypoints"

[[service]]
id = "progress"
token_sha256 = "$service_sha256"
events = ["*"]
EOF

# ---------------------------------------------------------------------------------------
# Start

# Environment variables win over influxd's config file, so set the two addresses there too:
# one left in the caller's environment would otherwise move a listener.
start influxd env \
  INFLUXDB_BIND_ADDRESS="127.0.0.1:$influx_rpc_port" \
  INFLUXDB_HTTP_BIND_ADDRESS="127.0.0.1:$influx_port" \
  influxd -config "$state/influxdb.conf"
wait_ready influxd 30 http_ok "http://127.0.0.1:$influx_port/ping"

start nats nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$state/nats"
wait_ready nats 20 tcp_open "$nats_port"

# InfluxDB is on this host: compressing batches for it would only cost CPU (BENCHMARKS.md).
start collector env VELOMETRY_INFLUX_GZIP="${VELOMETRY_INFLUX_GZIP:-false}" "$bin_dir/collector" serve \
  --listen "127.0.0.1:$collector_port" \
  --metrics-listen "127.0.0.1:$metrics_port" \
  --riders "$state/riders.toml" \
  --influx-url "http://127.0.0.1:$influx_port" \
  --influx-db "$db" \
  --wal-dir "$state/wal" \
  --nats-url "nats://127.0.0.1:$nats_port"
wait_ready collector 30 http_ok "http://127.0.0.1:$collector_port/readyz"

start stream "$bin_dir/stream" serve \
  --listen "127.0.0.1:$stream_port" \
  --metrics-listen "127.0.0.1:$stream_metrics_port" \
  --riders "$state/riders.toml" \
  --nats-url "nats://127.0.0.1:$nats_port" \
  --query-url "http://127.0.0.1:$query_port"
wait_ready stream 30 http_ok "http://127.0.0.1:$stream_port/readyz"

start query "$bin_dir/query" serve \
  --listen "127.0.0.1:$query_port" \
  --metrics-listen "127.0.0.1:$query_metrics_port" \
  --riders "$state/riders.toml" \
  --influx-url "http://127.0.0.1:$influx_port" \
  --influx-db "$db"
wait_ready query 30 http_ok "http://127.0.0.1:$query_port/healthz"

start progress env VELOMETRY_SERVICE_TOKEN="$service_token" "$bin_dir/progress" serve \
  --listen "127.0.0.1:$progress_port" \
  --metrics-listen "127.0.0.1:$progress_metrics_port" \
  --riders "$state/riders.toml" \
  --influx-url "http://127.0.0.1:$influx_port" \
  --influx-db "$db" \
  --nats-url "nats://127.0.0.1:$nats_port" \
  --collector "http://127.0.0.1:$collector_port"
wait_ready progress 30 http_ok "http://127.0.0.1:$progress_port/readyz"
unset service_token

# deploy/prometheus/prometheus.yml as it is, with its static targets on this run's ports.
sed -e "s/127.0.0.1:9180/127.0.0.1:$metrics_port/" \
  -e "s/127.0.0.1:9170/127.0.0.1:$query_metrics_port/" \
  -e "s/127.0.0.1:9190/127.0.0.1:$stream_metrics_port/" \
  -e "s/127.0.0.1:9160/127.0.0.1:$progress_metrics_port/" \
  -e "s|rules/\*.yml|$root/deploy/prometheus/rules/*.yml|" \
  -e "s|targets/|$root/deploy/prometheus/targets/|" \
  "$root/deploy/prometheus/prometheus.yml" >"$state/prometheus.yml"
start prometheus prometheus \
  --config.file="$state/prometheus.yml" \
  --storage.tsdb.path="$state/prometheus" \
  --web.listen-address="127.0.0.1:$prometheus_port"
wait_ready prometheus 30 http_ok "http://127.0.0.1:$prometheus_port/-/ready"

# Data from the first second: the demo rider, simulated, sending through the ingest API as
# a phone would. The token goes through the environment, not the arguments, so it stays
# out of ps.
start demo-rider env VELOMETRY_TOKENS="$token" "$bin_dir/collector" replay --synthetic \
  --target "http://127.0.0.1:$collector_port"
# The race at 6x real time: the 60 km loop in about half an hour.
start demo-race env VELOMETRY_TOKENS="$(IFS=,; echo "${racer_tokens[*]}")" "$bin_dir/collector" replay \
  --synthetic --course "$root/deploy/events/example-course.gpx" --start "$race_start" --speed 6 \
  --target "http://127.0.0.1:$collector_port"
unset racer_tokens

# ---------------------------------------------------------------------------------------
# Tell the user

cat <<EOF

velometry is running. Ctrl-C stops everything.

  Follow    http://127.0.0.1:$stream_port/   (the spectator page; the race at /?event=demo-race)
            ws://127.0.0.1:$stream_port/v1/live  (the live feed)
  History   http://127.0.0.1:$query_port/v1/riders  (API described at /openapi.json)
  Ingest    http://127.0.0.1:$collector_port
              JSON /v1/readings · line protocol /write, /api/v2/write · /v1/osmand · /v1/owntracks
  Metrics   http://127.0.0.1:$metrics_port/metrics  (collector)
            http://127.0.0.1:$stream_metrics_port/metrics  (stream hub)
            http://127.0.0.1:$query_metrics_port/metrics  (query service)
            http://127.0.0.1:$progress_metrics_port/metrics  (progress service)
  Prometheus http://127.0.0.1:$prometheus_port  (alerts at /alerts)
  InfluxDB  http://127.0.0.1:$influx_port  (database $db)
  NATS      nats://127.0.0.1:$nats_port  (JetStream)
  Logs      $logs/

  Rider "demo", device "phone". Its token, new at every start, also in $state/dev-token:
    $token

  A simulated ride (collector replay --synthetic) sends the demo rider's readings every second.
  Three simulated racers ride the event "demo-race" (the example loop) at 6x real time; the
  progress service follows them along the course.

Post a reading:
  TOKEN=\$(cat $(printf '%q' "$state/dev-token"))
  curl -sS http://127.0.0.1:$collector_port/v1/readings -H "Authorization: Token \$TOKEN" -H 'Content-Type: application/json' --data '[{"metric":"heart_rate","bpm":128}]'

Import a ride file (FIT, GPX or TCX):
  $(printf '%q' "$bin_dir/collector") import --target http://127.0.0.1:$collector_port --token "\$TOKEN" ride.fit

See it in InfluxDB:
  influx -port $influx_port -database $db -precision rfc3339 -execute 'SELECT * FROM heart_rate ORDER BY time DESC LIMIT 5'

The race's standings (rank, distance along the course, gaps, status, ETAs), and as CSV:
  curl -sS http://127.0.0.1:$query_port/v1/events/demo-race/standings
  curl -sS http://127.0.0.1:$query_port/v1/events/demo-race/standings.csv

Ask for the last hour of heart rate, at most 100 points:
  curl -sS 'http://127.0.0.1:$query_port/v1/riders/demo/series/heart_rate?max_points=100&from='\$(( (\$(date +%s) - 3600) * 1000 ))

EOF

# ---------------------------------------------------------------------------------------
# Wait: until Ctrl-C (the traps above take over) or until a process dies on its own.

status=0
wait -n "${pid[influxd]}" "${pid[nats]}" "${pid[collector]}" "${pid[query]}" "${pid[stream]}" "${pid[progress]}" "${pid[prometheus]}" || status=$?
for name in influxd nats collector query stream progress prometheus; do
  if ! kill -0 "${pid[$name]}" 2>/dev/null; then
    unset "pid[$name]"
    show_log "$name"
    die "$name stopped on its own (status $status); stopping the rest. Its log is above."
  fi
done
