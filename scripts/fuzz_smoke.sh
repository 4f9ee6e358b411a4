#!/usr/bin/env bash
# Runs every fuzz target (each fuzz crate's `cargo fuzz list`: every
# [[bin]] of its Cargo.toml, the TLS targets `tls_server` and
# `tls_client` included) for a short, fixed budget (FUZZ_SECONDS each,
# default 30): a crash or a sanitizer report fails the run. Longer
# campaigns use the same command with a larger budget.
#
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Each fuzz crate is its own workspace (sanitizer
# flags must not reach the main build) with its own target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-30}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

for dir in crates/iobuf/fuzz crates/rpc/fuzz; do
  targets=$(cd "$dir" && cargo fuzz list)
  (cd "$dir" && cargo fuzz build -O --debug-assertions)
  for t in $targets; do
    echo "-- fuzz $dir $t (${SECONDS_EACH}s)"
    corpus="$dir/corpus/$t"
    mkdir -p "$corpus"
    log=$(mktemp)
    if ! (cd "$dir" && cargo fuzz run -O --debug-assertions "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
      tail -60 "$log"
      echo "fuzz target $t failed"
      exit 1
    fi
    grep -E "stat::number_of_executed_units|Done" "$log" || true
    rm -f "$log"
  done
done
echo "fuzz: no failures"
