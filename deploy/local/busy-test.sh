#!/usr/bin/env bash
#
# The test command on a busy machine, from a fresh clone, as CI must pass it
# (docs/testing.md, "On a busy machine"):
#
#   deploy/local/busy-test.sh                 # 3 runs beside `stress-ng --cpu 2`
#   deploy/local/busy-test.sh --runs 1        # one run
#   deploy/local/busy-test.sh --load none     # no load: the baseline to compare with
#   deploy/local/busy-test.sh --load '--cpu 2 --vm 1 --vm-bytes 1G'
#
# It clones the last commit of this checkout (uncommitted changes are not in it) next to
# the checkout — ../velometry-busy-test, beside ../shared/ as CI's checkout is — installs
# stress-ng if missing, starts it with the --load arguments, and runs .ci/run there --runs
# times in a row, stopping at the first failure. It prints how long each run took; the
# output of each is in ../velometry-busy-test.run-N.log.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"

runs=3
load='--cpu 2'
clone=$(cd "$root/.." && pwd)/velometry-busy-test
while (($#)); do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --load) load=${2:?--load needs stress-ng arguments, or none}; shift 2 ;;
    --clone) clone=${2:?--clone needs a folder}; shift 2 ;;
    -h | --help) sed -n '3,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs $runs: give a whole number above zero"

say "Cloning $(git -C "$root" rev-parse --short HEAD) into $clone"
rm -rf "$clone"
git clone --quiet "$root" "$clone"

stress=
if [[ $load != none ]]; then
  ensure_commands stress-ng:stress-ng
  # shellcheck disable=SC2086 # the load is a list of stress-ng arguments
  stress-ng $load --quiet &
  stress=$!
  trap 'kill "$stress" 2>/dev/null || true' EXIT
  say "stress-ng $load is running beside the tests (pid $stress)"
fi

for ((run = 1; run <= runs; run++)); do
  log=$clone.run-$run.log
  say "Run $run of $runs (log: $log)"
  started=$SECONDS
  if bash "$clone/.ci/run" >"$log" 2>&1; then
    say "Run $run passed in $((SECONDS - started)) s"
  else
    tail -60 "$log" >&2
    die "run $run failed after $((SECONDS - started)) s; the whole output is in $log"
  fi
done
say "All $runs runs passed${stress:+ beside stress-ng $load}."
