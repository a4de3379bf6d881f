#!/usr/bin/env bash
#
# Fuzzes every parser that takes bytes from outside, for a given time each (docs/testing.md,
# "Fuzzing"):
#
#   deploy/local/fuzz.sh                          # every target, 30 minutes each
#   deploy/local/fuzz.sh --time 2m ride_gpx       # one target, two minutes
#   deploy/local/fuzz.sh --jobs 1 --time 10m      # one target at a time
#   deploy/local/fuzz.sh --list                   # the targets, and what each fuzzes
#
# It installs what is missing (the nightly toolchain, cargo-fuzz), writes the seed corpus
# with velometry's own code (fuzz/src/seeds.rs) into fuzz/corpus/<target>/, adds the shared
# FIT recordings read in place ($VELOMETRY_RIDES/fit, or ../shared/data/rides/fit next to
# the checkout), runs each target with libFuzzer (`cargo fuzz run`) and prints, per target,
# the executions, the coverage (edges and features) and what it found. A crash, a hang
# (over 10 s for one input, a minute for a ride file) or running out of memory (2 GiB) leaves the input in
# fuzz/artifacts/<target>/ and makes the run fail; every finding becomes a regression test
# in the ordinary test suite before it is fixed. Each target's whole output is left in
# fuzz/logs/<target>.log.
#
# --jobs N runs N targets side by side (default: one per core). fuzz/corpus, fuzz/artifacts
# and fuzz/logs are git-ignored: the corpus grows from run to run.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
cd "$root/fuzz"

usage() { sed -n '3,22p' "$here/fuzz.sh" | sed 's/^# \{0,1\}//'; }

time_spec=30m
jobs=$(nproc 2>/dev/null || echo 2)
list=false
targets=()
while (($#)); do
  case $1 in
    --time) time_spec=${2:?--time needs a duration (30s, 10m, 1h)}; shift 2 ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --list) list=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) targets+=("$1"); shift ;;
  esac
done

seconds() {
  local spec=$1
  case $spec in
    *h) echo $((${spec%h} * 3600)) ;;
    *m) echo $((${spec%m} * 60)) ;;
    *s) echo "${spec%s}" ;;
    *[!0-9]* | '') die "--time $spec: give a duration like 30s, 10m or 1h" ;;
    *) echo "$spec" ;;
  esac
}
max_time=$(seconds "$time_spec")
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs $jobs: give a whole number above zero"

all_targets=()
for file in fuzz_targets/*.rs; do
  all_targets+=("$(basename "$file" .rs)")
done
if $list; then
  for target in "${all_targets[@]}"; do
    printf '%-16s %s\n' "$target" "$(sed -n '1s|^//! *||p' "fuzz_targets/$target.rs")"
  done
  exit 0
fi
((${#targets[@]})) || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
  [[ -f fuzz_targets/$target.rs ]] || die "no fuzz target $target (see --list)"
done

# ---------------------------------------------------------------------------------------
# Install what is missing

require_cargo
ensure_commands "${BUILD_COMMANDS[@]}" 'c++:g++'
if ! cargo +nightly --version >/dev/null 2>&1; then
  command -v rustup >/dev/null 2>&1 || die "the nightly toolchain is missing and rustup is not installed"
  say "Installing the nightly toolchain (rustup), which cargo-fuzz needs for its sanitizers"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  say "Installing cargo-fuzz (cargo install)"
  cargo install cargo-fuzz --locked
fi

if [[ -z ${VELOMETRY_RIDES:-} && -d $root/../shared/data/rides ]]; then
  VELOMETRY_RIDES=$(cd "$root/../shared/data/rides" && pwd)
fi
rides_fit=()
if [[ -n ${VELOMETRY_RIDES:-} && -d $VELOMETRY_RIDES/fit ]]; then
  rides_fit=("$VELOMETRY_RIDES/fit")
else
  warn "VELOMETRY_RIDES is not set: ride_fit starts from gzipped seeds only"
fi

# ---------------------------------------------------------------------------------------
# Seeds, build, run

say "Building the targets (cargo fuzz build, release, with AddressSanitizer)"
cargo +nightly fuzz build --release 2>&1 | grep -v '^ *Compiling' || true
bin=target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release
for target in seeds "${targets[@]}"; do
  [[ -x $bin/$target ]] || die "the build of $target failed"
done

say "Writing the seed corpus (fuzz/src/seeds.rs)"
"$bin/seeds" corpus ${VELOMETRY_RIDES:+"$VELOMETRY_RIDES"}

# Each run's libFuzzer output, kept for a look afterwards (git-ignored).
logs=logs
rm -rf "$logs"
mkdir -p "$logs"

# run_target TARGET — one libFuzzer run, its output in $logs/TARGET.log.
run_target() {
  local target=$1 extra=() flags=(-timeout=10)
  case $target in
    # A whole ten-hour ride file (a seed) takes about 5 s under AddressSanitizer on an idle
    # core, so 10 s is no sign of a hang there; a minute is.
    ride_fit) extra=("${rides_fit[@]}") flags=(-timeout=60) ;;
    sources_file) extra=("$root/deploy/sources") ;;
    # The log's writer thread ends after its last handle is dropped, and may still be
    # ending when libFuzzer checks for leaks after the input: its thread-locals (tokio's
    # parker) would be reported as leaked.
    wal_segments) flags+=(-detect_leaks=0) ;;
  esac
  mkdir -p "corpus/$target" "artifacts/$target"
  cargo +nightly fuzz run --release "$target" "corpus/$target" "${extra[@]}" -- \
    -max_total_time="$max_time" "${flags[@]}" -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$logs/$target.log" 2>&1
}

say "Fuzzing ${targets[*]} for $time_spec each, $jobs at a time"
running=0
for target in "${targets[@]}"; do
  run_target "$target" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

# ---------------------------------------------------------------------------------------
# Report

stat() { grep -o "^stat::$2: *[0-9]*" "$logs/$1.log" | tail -1 | awk '{print $2}'; }
printf '\n| target | time | executions | coverage (edges / features) | corpus | found |\n'
printf '|---|---|---|---|---|---|\n'
failed=()
for target in "${targets[@]}"; do
  log=$logs/$target.log
  execs=$(stat "$target" number_of_executed_units)
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 | awk '{print $2 " / " $4}')
  corpus=$(find "corpus/$target" -type f | wc -l)
  found=$(find "artifacts/$target" -type f -newer "$logs" 2>/dev/null | sed "s|^|fuzz/|" | tr '\n' ' ')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$target" "$time_spec" "${execs:-?}" "${cov:-?}" \
    "$corpus" "${found:-nothing}"
  if [[ -n $found ]] || ! grep -q '^Done [0-9]* runs' "$log"; then
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  for target in "${failed[@]}"; do
    printf '\n*** %s (the whole log: fuzz/logs/%s.log)\n' "$target" "$target" >&2
    grep -E -A12 "panicked at|^==[0-9]+==ERROR|ERROR: libFuzzer|^SUMMARY" "$logs/$target.log" |
      grep -v -E '^ +[0-9]+: |^ +at ' | head -40 >&2 || tail -40 "$logs/$target.log" >&2
  done
  printf '\n*** FAILED: %s. Reproduce a finding with: (cd fuzz && cargo +nightly fuzz run TARGET ARTIFACT)\n' \
    "${failed[*]}" >&2
  exit 1
fi
say "Nothing found."
