#!/usr/bin/env bash
# device-check.sh [OFFICIAL_CHECKOUT]
#
# The GPU check, in one script, for a machine with an NVIDIA GPU and a Python with torch 2.11
# (no Rust toolchain needed: the release binary is carried over, given as $IJEPA_BIN or found at
# target/release/ijepa or ./ijepa). Run from the repository root. About 5 minutes on one GPU:
#
#   1. `ijepa parity --device cuda` on the I-JEPA and MAE fixtures (official-code steps, replayed
#      on the GPU, compared in float64);
#   2. `bench step` of ViT-B/16 at 224 px, fp32 and bf16, against the official code on the same
#      GPU (scripts/bench-official.sh; needs OFFICIAL_CHECKOUT, a checkout of
#      facebookresearch/ijepa, and numpy in the Python; without it, ours alone);
#   3. a one-process NCCL `ijepa launch` of a few steps (Fashion-MNIST's embedded subset);
#   4. the model FLOP utilisation of each timed step: FLOPs per image (`ijepa estimate`'s count)
#      x images/s / the GPU's dense peak.
#
# Without a GPU it stops at once with the reason (exit 2), never a silent pass. Any failing step
# stops it with that step's output (exit 1). A log of everything goes to $OUT (or ./device-check)
# /device-check.log.
set -euo pipefail

fail() { echo "device-check: FAILED: $1" >&2; exit "${2:-1}"; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
official=${1:-}
out=${OUT:-$root/device-check}
mkdir -p "$out"
exec > >(tee "$out/device-check.log") 2> >(tee -a "$out/device-check.log" >&2)

# ---- 0. is there a GPU, and can both sides use it?
command -v nvidia-smi >/dev/null || fail "no nvidia-smi on PATH: this machine has no NVIDIA driver (this check needs an NVIDIA GPU)" 2
gpus=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1) || fail "nvidia-smi cannot talk to a GPU: $gpus" 2
[[ -n $gpus ]] || fail "nvidia-smi lists no GPU" 2
py=${IJEPA_PYTHON:-python3}
"$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || fail "$py has no torch that sees a CUDA device (pip install torch==2.11.0)" 2
torch_lib=$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=${IJEPA_BIN:-}
for c in "$root/target/release/ijepa" "$root/ijepa"; do [[ -z $bin && -x $c ]] && bin=$c; done
[[ -n $bin && -x $bin ]] || fail "no ijepa binary: set IJEPA_BIN or carry target/release/ijepa" 2
export IJEPA_BIN=$bin IJEPA_PYTHON=$py
echo "device-check $(date -u +%FT%TZ)"
echo "gpu: $gpus"
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs"
echo "torch: $("$py" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)')"
"$bin" bench step --device cuda --steps 1 --warmup 0 >/dev/null 2>"$out/probe.err" \
    || fail "the ijepa binary cannot run on CUDA: $(tail -3 "$out/probe.err")" 2
t0=$SECONDS

# ---- 1. parity on the GPU
for f in tests/fixtures/official-step-tiny.safetensors tests/fixtures/mae-step-tiny.safetensors; do
    echo "== ijepa parity $f --device cuda"
    "$bin" parity "$root/$f" --device cuda || fail "parity on CUDA: $f"
done

# ---- 2. bench step ViT-B/16 at 224 px, fp32 and bf16, ours against the official code
cfg=(--preset vit-base --patch 16 --size 224 --batch 64 --pred-depth 6 --pred-width 384 --targets 4 --min-keep 10 --device cuda --steps 10 --warmup 3)
declare -A imgs
for p in fp32 bf16; do
    echo "== bench step ViT-B/16 224 px $p"
    if [[ -n $official ]]; then
        res=$("$here/bench-official.sh" "$official" "${cfg[@]}" --precision "$p" --rounds 2) || fail "bench-official.sh $p"
        echo "$res"
        line=$(grep "round 2 ours:" <<<"$res")
    else
        line=$("$bin" bench step "${cfg[@]}" --precision "$p") || fail "bench step $p"
        echo "$line  (no OFFICIAL_CHECKOUT given: ours alone)"
    fi
    imgs[$p]=$(sed -n 's/.* img_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
done

# ---- 3. one-process NCCL launch, a few steps
echo "== ijepa launch --nproc-per-node 1 (NCCL)"
cat >"$out/nccl.kdl" <<'EOF'
experiment "device-check-nccl" {
    recipe "ijepa"
    data "fashion-mnist" { crop-size 28; batch-size 64; workers 2; limit 640 }
    encoder width=192 depth=4 heads=3 patch=4
    predictor depth=2 width=96 heads=3
    mask "multi-block" { min-keep 4 }
    optimizer "adamw" { lr start=1e-4 peak=5e-4 final=1e-6 warmup-epochs=0 }
    epochs 1
    device "cuda"
    log-every 2
    distributed { gpus-per-node 1; backend "nccl"; launcher "local" }
}
EOF
"$bin" launch --nproc-per-node 1 "$out/nccl.kdl" -- --runs-dir "$out/runs" || fail "NCCL launch"
grep -q . "$out"/runs/device-check-nccl/pretrain-*/metrics.csv || fail "NCCL launch wrote no metrics"

# ---- 4. model FLOP utilisation of the timed steps
cat >"$out/vitb16.kdl" <<'EOF'
experiment "vitb16-bench" {
    recipe "ijepa"
    data "image-folder" root="/nonexistent" { crop-size 224; batch-size 64 }
    encoder "vit-base" patch=16
    predictor depth=6 width=384
    mask "multi-block" { min-keep 10 }
}
EOF
# (the count per image does not depend on the data's size; one global batch is the least
# `estimate` takes)
est=$("$bin" estimate "$out/vitb16.kdl" --images 64 --no-measure 2>&1) || fail "ijepa estimate failed: $est"
gflop=$(sed -n 's/.*step FLOPs *\([0-9.]*\) GFLOP per image.*/\1/p' <<<"$est")
[[ -n $gflop ]] || fail "ijepa estimate gave no FLOP count: $est"
name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case $name in
    *H100*|*H200*|*GH200*) peak_bf16=989e12; peak_fp32=67e12 ;;
    *A100*) peak_bf16=312e12; peak_fp32=19.5e12 ;;
    *L40S*) peak_bf16=362e12; peak_fp32=91.6e12 ;;
    *) peak_bf16=""; peak_fp32="" ;;
esac
echo "== model FLOP utilisation ($gflop GFLOP per image, ViT-B/16 224 px, predictor 6x384)"
for p in fp32 bf16; do
    peak=$([[ $p == bf16 ]] && echo "$peak_bf16" || echo "$peak_fp32")
    if [[ -n $peak ]]; then
        awk -v g="$gflop" -v i="${imgs[$p]}" -v pk="$peak" -v p="$p" -v n="$name" \
            'BEGIN { printf "%s: %.1f img/s x %.1f GFLOP = %.1f TFLOP/s = %.1f%% of the %s dense peak (%.0f TFLOP/s)\n", p, i, g, i * g / 1e3, 100 * i * g * 1e9 / pk, n, pk / 1e12 }'
    else
        awk -v g="$gflop" -v i="${imgs[$p]}" -v p="$p" -v n="$name" \
            'BEGIN { printf "%s: %.1f img/s x %.1f GFLOP = %.1f TFLOP/s (peak of %s unknown here)\n", p, i, g, i * g / 1e3, n }'
    fi
done
echo "device-check: PASSED in $((SECONDS - t0)) s"
