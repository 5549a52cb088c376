#!/usr/bin/env bash
# bench-e2e.sh IMAGE_FOLDER [--rounds N] [--epochs E] [options]
#
# Does the loader keep the step fed? `ijepa run` of an I-JEPA pretraining on an image folder
# (class sub-folders of JPEG/PNG files; scripts/make_bench_folder.py writes a synthetic
# ImageNet-like one) against `ijepa bench step` at the same settings (model, batch, masks,
# precision, threads), alternating round after round so both see the same machine state
# (the first round runs first: bench step then times as many steps as the run, drawing the
# very masks the run trained on, `--epoch-steps`; a step's cost follows its context length).
# Prints each round, then the medians: the run's images/s over the whole process (start,
# folder index, model, checkpoints included), over all its epochs, and over its epochs after
# the first (the first carries the allocator's warm-up, which bench step leaves to its
# --warmup steps), each as a share of bench step's images/s.
#
# Options (defaults): --rounds 3, --epochs 6, --preset vit-tiny, --patch 16, --size 224,
# --batch 32, --pred-depth 4, --pred-width 96, --targets 4, --min-keep 10, --precision fp32,
# --workers 2 (loader threads). Both sides use torch's default threads (OMP_NUM_THREADS sets
# them for both).
#
#   PYTHONPATH=... python3 scripts/make_bench_folder.py /tmp/bench224 --classes 8 --per-class 64
#   scripts/bench-e2e.sh /tmp/bench224
#
# Needs: the release binary ($IJEPA_BIN, or `ijepa` on PATH).
set -euo pipefail

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then usage; exit 2; fi
folder=$(cd "$1" 2>/dev/null && pwd) || { echo "error: $1 is not a folder" >&2; exit 2; }
shift
rounds=3 epochs=6 preset=vit-tiny patch=16 size=224 batch=32 pred_depth=4 pred_width=96
targets=4 min_keep=10 precision=fp32 workers=2
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || { echo "error: $1 needs a value" >&2; exit 2; }
    case $1 in
        --rounds) rounds=$2 ;;
        --epochs) epochs=$2 ;;
        --preset) preset=$2 ;;
        --patch) patch=$2 ;;
        --size) size=$2 ;;
        --batch) batch=$2 ;;
        --pred-depth) pred_depth=$2 ;;
        --pred-width) pred_width=$2 ;;
        --targets) targets=$2 ;;
        --min-keep) min_keep=$2 ;;
        --precision) precision=$2 ;;
        --workers) workers=$2 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift 2
done
# counts the arithmetic below divides by: a round needs both sides, "after the first" a second epoch
[[ $rounds =~ ^[0-9]+$ ]] && ((10#$rounds >= 1 && 10#$rounds <= 100)) || { echo "error: --rounds takes a whole number of rounds from 1 to 100, not $rounds" >&2; exit 2; }
[[ $epochs =~ ^[0-9]+$ ]] && ((10#$epochs >= 1 && 10#$epochs <= 1000)) || { echo "error: --epochs takes a whole number of epochs from 1 to 1000, not $epochs" >&2; exit 2; }
rounds=$((10#$rounds)) epochs=$((10#$epochs))
bin=${IJEPA_BIN:-$(command -v ijepa || true)}
[[ -n $bin && -x $bin ]] || { echo "error: no ijepa binary: set IJEPA_BIN or put ijepa on PATH (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ijepa-bench-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/e2e.kdl" <<EOF
experiment "bench-e2e" {
    recipe "ijepa"
    seed 0
    data "image-folder" root="$folder" {
        crop-size $size
        batch-size $batch
        workers $workers
    }
    encoder "$preset" patch=$patch
    predictor depth=$pred_depth width=$pred_width
    mask "multi-block" {
        targets count=$targets
        min-keep $min_keep
    }
    precision "$precision"
    device "cpu"
    epochs $epochs
    checkpoint keep-every=0
}
EOF
"$bin" check "$work/e2e.kdl" >/dev/null

step_args=(--preset "$preset" --patch "$patch" --size "$size" --batch "$batch" --pred-depth "$pred_depth"
    --pred-width "$pred_width" --targets "$targets" --min-keep "$min_keep" --precision "$precision")
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
whole=() all=() later=() step=()
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs; folder $folder; $preset/$patch at $size px, batch $batch, $precision, $workers loader threads"
for ((r = 1; r <= rounds; r++)); do
    for side in $( ((r % 2)) && echo "run step" || echo "step run"); do
        if [[ $side == run ]]; then
            rm -rf "$work/runs"
            t0=$(date +%s.%N)
            out=$("$bin" run "$work/e2e.kdl" --runs-dir "$work/runs" 2>&1) || { echo "$out" >&2; exit 1; }
            t1=$(date +%s.%N)
            # "epoch   2/6  loss ...  1780 ms/step  17 img/s  28.6 s": images = steps x batch
            steps=$(sed -n 's/^done: \([0-9]*\) steps.*/\1/p' <<<"$out")
            # "pretraining ... on 512 images, 6 epochs x 16 steps of 32, ...": bench step times these
            # (one epoch reads "1 epoch x 16 steps")
            ipe=$(sed -n 's/^pretraining .* epochs\? x \([0-9]*\) steps\? of .*/\1/p' <<<"$out" | head -1)
            [[ -n $ipe && -n $steps ]] || { echo "$out" >&2; echo "bench-e2e: the run's output did not say its steps (the lines above); this script reads 'done: N steps' and 'E epochs x S steps of B'" >&2; exit 1; }
            read -r w a l < <(awk -v t0="$t0" -v t1="$t1" -v steps="$steps" -v b="$batch" -v e="$epochs" '
                /^epoch +[0-9]+\/[0-9]+ .* s$/ { n++; s = $(NF - 1); tot += s; if (n > 1) rest += s }
                END { per = steps * b / e; printf "%.2f %.2f %.2f\n", steps * b / (t1 - t0), steps * b / tot, (e > 1 ? per * (e - 1) / rest : 0) }' <<<"$out")
            whole+=("$w") all+=("$a") later+=("$l")
            printf 'round %d  run:  %s images in %.1f s: %s img/s whole process, %s over its epochs, %s after the first\n' \
                "$r" "$((steps * batch))" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$w" "$a" "$( ((epochs > 1)) && echo "$l" || echo "none")"
        else
            # the run's steps with the run's masks (a step's cost follows its context length)
            line=$("$bin" bench step "${step_args[@]}" --steps $((epochs * ipe)) --epoch-steps "$ipe" --warmup 3 2>&1 | grep '^bench step') || { echo "bench step failed" >&2; exit 1; }
            s=$(sed -n 's/.* img_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
            step+=("$s")
            printf 'round %d  step: %s img/s (%s)\n' "$r" "$s" "$(sed -n 's/.*\(ms_per_step=[0-9.]* ms_std=[0-9.]*\).*/\1/p' <<<"$line")"
        fi
    done
done
ms=$(printf '%s\n' "${step[@]}" | median)
share() { awk -v a="$1" -v b="$ms" 'BEGIN {printf "%.1f%%", 100 * a / b}'; }
mw=$(printf '%s\n' "${whole[@]}" | median) ma=$(printf '%s\n' "${all[@]}" | median) ml=$(printf '%s\n' "${later[@]}" | median)
echo "median over $rounds rounds: bench step $ms img/s"
echo "  run, whole process:      $mw img/s = $(share "$mw") of bench step"
echo "  run, all epochs:         $ma img/s = $(share "$ma")"
if ((epochs > 1)); then
    echo "  run, epochs 2-$epochs:         $ml img/s = $(share "$ml")"
else
    echo "  run, after the first epoch: none (--epochs 1)"
fi
