#!/usr/bin/env bash
# README command one: set everything up (idempotent), build, and pretrain I-JEPA from
# experiments/quickstart.kdl on the embedded Fashion-MNIST subset.
# Extra arguments go to `ijepa run` (e.g. --runs-dir /tmp/runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$IJEPA_ROOT"
say "building ijepa (release) in $CARGO_TARGET_DIR"
cargo build --release --quiet
"$IJEPA_BIN" run experiments/quickstart.kdl "$@"
