# shellcheck shell=bash
#
# Helpers shared by the scripts of deploy/local/: messages, and installing the Debian
# packages that provide missing commands and the Python packages that provide others.
# Sourced, never run on its own.
#
# Both scripts must work on a fresh Debian 12 machine, as root without sudo or as a user
# with sudo, so everything that installs goes through `as_root` and `apt_install` here.

# Debian keeps nats-server in /usr/sbin, which is not on a normal user's PATH. Without it,
# `command -v nats-server` would fail after every install, and so would the test harness
# (core/src/testkit.rs looks programs up on PATH).
for dir in /usr/local/sbin /usr/sbin /sbin; do
  [[ :$PATH: == *:$dir:* ]] || PATH=$PATH:$dir
done
unset dir
export PATH

# Progress on stdout, problems on stderr.
say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Runs a command as root: directly when we are root (CI, containers), through sudo otherwise.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "root is needed to run: $*
       Run this script as root, install sudo, or run that command yourself first."
  fi
}

# apt_install PACKAGE... — one `apt-get update`, then one install of all the packages.
#
# Debian starts a package's service on install (influxdb.service, nats-server.service, …).
# These scripts want the programs, not system-wide daemons holding the default ports that
# run.sh needs for its own copies, so a service this function has just installed and that
# is now running is stopped and disabled again, saying so and how to undo it. Services the
# machine already had are never touched.
apt_install() {
  command -v apt-get >/dev/null 2>&1 ||
    die "these packages are missing: $*
       This script installs them with apt-get (Debian, Ubuntu); install them yourself here."
  local pkg fresh=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || fresh+=("$pkg")
  done
  say "Installing $* (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
    die "apt-get update failed (is the network up?)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" ||
    die "apt-get install $* failed"
  # Only where systemd is running: in containers there is no service to stop.
  if ((${#fresh[@]})) && [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    for pkg in "${fresh[@]}"; do
      if systemctl is-active --quiet "$pkg.service" 2>/dev/null; then
        say "Stopping and disabling $pkg.service, which installing $pkg started" \
          "(these scripts run their own copy; undo with: systemctl enable --now $pkg)"
        as_root systemctl disable --now --quiet "$pkg.service" || warn "could not stop $pkg.service"
      fi
    done
  fi
}

# ensure_commands 'COMMAND:PACKAGE [PACKAGE…]'… — installs, in a single apt-get run, the
# packages of every listed command that is not on PATH. Commands already there cost nothing.
ensure_commands() {
  local spec cmd pkg missing=()
  for spec in "$@"; do
    cmd=${spec%%:*}
    command -v "$cmd" >/dev/null 2>&1 && continue
    for pkg in ${spec#*:}; do
      [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
    done
  done
  ((${#missing[@]} == 0)) && return 0
  apt_install "${missing[@]}"
  for spec in "$@"; do
    cmd=${spec%%:*}
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is still missing after installing ${spec#*:}"
  done
}

# Stops with rustup's instructions when cargo is missing: these scripts never install a Rust
# toolchain themselves (the one in Cargo.toml's rust-version or newer is the developer's call).
require_cargo() {
  command -v cargo >/dev/null 2>&1 && return 0
  die "cargo is not installed. Install Rust with rustup (https://rustup.rs):
       curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
       then open a new shell (or run: . \"\$HOME/.cargo/env\") and run this script again."
}

# The commands building the workspace needs besides cargo: a C compiler and linker (cargo
# links through `cc`, and the ring crate compiles C). libc6-dev is only a recommendation of
# gcc, which --no-install-recommends skips, and without it nothing links.
# shellcheck disable=SC2034 # used by the scripts that source this file
BUILD_COMMANDS=('cc:gcc libc6-dev')

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

# ensure_pip 'PYTHON STATEMENT' COMMAND… -- PACKAGE… — pip-installs the PACKAGEs unless the
# statement (imports) runs and every COMMAND is on PATH already. Where the system's python3
# refuses pip installs, into a private venv, .velometry/python at the repository root
# (git-ignored), put first on PATH so that later `python3` and the commands are its own.
# Needs $root, the repository root.
ensure_pip() {
  # shellcheck disable=SC2154 # $root is set by the script that sources this file
  local check=$1 commands=() venv=$root/.velometry/python ok=1 cmd
  shift
  while (($#)) && [[ $1 != -- ]]; do
    commands+=("$1")
    shift
  done
  shift
  # A venv made by an earlier run comes first on PATH, for the tests as much as for us.
  if [[ -x $venv/bin/python3 && :$PATH: != *:$venv/bin:* ]]; then
    export PATH=$venv/bin:$PATH
  fi
  python3 -c "$check" 2>/dev/null || ok=0
  for cmd in "${commands[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || ok=0
  done
  ((ok)) && return 0
  ensure_commands python3:python3
  if ! pip_allowed; then
    # Rather than --break-system-packages: a private venv. Debian ships venv's pip separately.
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
  say "Installing the Python packages $* (pip)"
  python3 -m pip install --quiet "$@"
  python3 -c "$check" || die "python3 still cannot run: $check (after pip install $*)"
  for cmd in "${commands[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is still not on PATH after pip install $*"
  done
}
