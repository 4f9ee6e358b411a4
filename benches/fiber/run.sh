#!/usr/bin/env bash
# Builds fiber_bench in release and runs it: fibrpc's fiber runtime vs tokio
# and may, 2 workers each, median of several runs per case (~1 min).
# Arguments are passed through: --quick, --case NAME, --reps N, --target-ms T.
# fibrpc's mutex/channel rows use the `sync` feature (on by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
features=()
if [[ -n "${FEATURES:-}" ]]; then
    features=(--features "$FEATURES")
fi
cargo build --release -p fibrpc-bench-fiber "${features[@]}"
bin="${CARGO_TARGET_DIR:-target}/release/fiber_bench"
exec "$bin" "$@"
