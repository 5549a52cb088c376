#!/usr/bin/env bash
# README command two: set everything up (idempotent), build, and run the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$IJEPA_ROOT"
say "building and testing (release) in $CARGO_TARGET_DIR"
cargo build --release --quiet
cargo test --release --workspace "$@"
