#!/usr/bin/env bash
# Builds `ijepa` with the NCCL backend of the distributed shim (cargo feature `nccl`), for
# multi-GPU training. Sets up the usual environment (scripts/env.sh), then adds the CUDA
# headers that the torch wheel does not bring but NCCL's and c10d's headers include: crt/ and
# nv/ (pip: nvidia-cuda-crt, nvidia-cuda-cccl; ~15 MB, headers only, versions matching the
# CUDA 13.0 runtime of torch 2.11.0+cu130). nccl.h and cuda_runtime*.h come with torch's own
# nvidia-nccl-cu13 / nvidia-cuda-runtime wheels. Nothing is linked from these packages:
# libtorch_cuda and its NCCL do the work at run time.
#
#   scripts/build-nccl.sh [extra cargo args]   -> $CARGO_TARGET_DIR/release/ijepa
#
# The binary also runs where there is no GPU (Gloo stays available); asking for NCCL there
# is a clear error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$IJEPA_ROOT"
# a target folder of its own: switching features back and forth in one folder rebuilds the
# engine, recipes and binary every time
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR}-nccl"
CUDA_CRT_VERSION=13.0.88
CUDA_CCCL_VERSION=13.0.85
if ! "$IJEPA_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('nvidia-cuda-crt') == '$CUDA_CRT_VERSION' and m.version('nvidia-cuda-cccl') == '$CUDA_CCCL_VERSION' else 1)" 2>/dev/null; then
    say "installing CUDA headers into $IJEPA_VENV: nvidia-cuda-crt==$CUDA_CRT_VERSION nvidia-cuda-cccl==$CUDA_CCCL_VERSION"
    "$IJEPA_VENV/bin/pip" install -q --disable-pip-version-check \
        "nvidia-cuda-crt==$CUDA_CRT_VERSION" "nvidia-cuda-cccl==$CUDA_CCCL_VERSION"
fi
say "building ijepa with the NCCL backend (release) in $CARGO_TARGET_DIR"
cargo build --release --features nccl "$@"
say "built with the NCCL backend (cargo build --release --features nccl $*) in $CARGO_TARGET_DIR"
