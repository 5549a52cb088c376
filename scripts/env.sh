# Sourced by the other scripts: sets up (idempotently) everything a build needs and exports
# the environment for cargo. Safe to source repeatedly.
#
#   IJEPA_VENV        python venv holding torch==2.11.0 (default: <repo>/.venv)
#   CARGO_TARGET_DIR  cargo's target folder (default: /var/cache/ijepa/target-<venv hash>
#                     when writable, else <repo>/target); a cache, never a required input.
# (no `set -e` here: sourcing must not change the caller's shell options)
IJEPA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_VERSION=2.11.0
export IJEPA_VENV="${IJEPA_VENV:-$IJEPA_ROOT/.venv}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# Debian packages: libjpeg-turbo (JPEG decoding, needed to build) and pkg-config, the full
# Fashion-MNIST set (optional: the embedded subset works without it)
# and gloo headers (the distributed shim). Only when apt is there and we are root.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    missing=()
    for p in dataset-fashion-mnist libgloo-dev libturbojpeg0-dev pkg-config; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing Debian packages: ${missing[*]}"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
            || say "apt-get failed; continuing without ${missing[*]} (the embedded data subset still works)"
    fi
fi

# Python venv with torch (libtorch comes from the wheel).
if ! "$IJEPA_VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    say "creating $IJEPA_VENV with torch==$TORCH_VERSION (~4.6 GB, a few minutes)"
    python3 -m venv "$IJEPA_VENV" || return 1
    "$IJEPA_VENV/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION" || return 1
fi

export VIRTUAL_ENV="$IJEPA_VENV"
export PATH="$IJEPA_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
unset LIBTORCH LIBTORCH_LIB LIBTORCH_INCLUDE
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    key=$(printf '%s' "$IJEPA_VENV" | sha1sum | cut -c1-10)
    if mkdir -p /var/cache/ijepa 2>/dev/null && [ -w /var/cache/ijepa ]; then
        export CARGO_TARGET_DIR="/var/cache/ijepa/target-$key"
    else
        export CARGO_TARGET_DIR="$IJEPA_ROOT/target"
    fi
fi
export IJEPA_BIN="$CARGO_TARGET_DIR/release/ijepa"
