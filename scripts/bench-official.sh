#!/usr/bin/env bash
# bench-official.sh OFFICIAL_CHECKOUT [--rounds N] [bench step options]
#
# The I-JEPA training step of the official code (facebookresearch/ijepa, imported from the
# checkout you give; nothing is downloaded) against `ijepa bench step`, on the same
# configuration and the same threads, in one run: the two alternate, round after round, so both
# see the same machine state. Prints every round's lines, then the median ms/step of each side,
# their ratio (official / ours: above 1 means ijepa is faster), and the peak resident memory.
#
# The options are those of `ijepa bench step` and scripts/bench_official_step.py (the same
# names): --preset --patch --size --batch --pred-depth --pred-width --targets --min-keep
# --precision --device --steps --warmup --threads --products. Defaults: ViT-T/4 at 32 px, batch 64,
# predictor 4x96, 4 targets, precision auto, threads = the CPU count, 3 rounds. `--products
# onednn` runs both sides' dense layers on oneDNN (the official nn.Linear patched to ijepa's 1x1
# convolution), to compare the two codes on the same kernel; by default the official code runs
# as it is (BLAS) and ijepa takes its own choice (`auto`). `--chunk-bytes N` goes to ijepa's
# side only: its target encoder's chunks on a CPU (0: whole batches, as the official code).
#
#   scripts/bench-official.sh ~/src/ijepa --precision fp32
#   scripts/bench-official.sh ~/src/ijepa --preset vit-base --patch 16 --size 224 --batch 32 --precision bf16 --device cuda
#
# Needs: the release binary ($IJEPA_BIN, or `ijepa` on PATH) and a Python with torch 2.11
# and numpy ($IJEPA_PYTHON, else the project venv's, else python3).
set -euo pipefail

usage() { sed -n '2,/^# Needs:/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then usage; exit 2; fi
official=$1; shift
if [[ ! -f $official/src/helper.py || ! -f $official/src/masks/multiblock.py ]]; then
    echo "error: $official is not a checkout of facebookresearch/ijepa (no src/helper.py, src/masks/multiblock.py)" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
rounds=3
threads=$(nproc)
args=()
ours=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --rounds|--threads) [[ $# -ge 2 ]] || { echo "error: $1 needs a value" >&2; exit 2; }
            if [[ $1 == --rounds ]]; then rounds=$2; else threads=$2; fi; shift 2 ;;
        --preset|--patch|--size|--batch|--pred-depth|--pred-width|--targets|--min-keep|--precision|--device|--steps|--warmup|--products)
            [[ $# -ge 2 ]] || { echo "error: $1 needs a value" >&2; exit 2; }
            args+=("$1" "$2"); shift 2 ;;
        --chunk-bytes) [[ $# -ge 2 ]] || { echo "error: $1 needs a value" >&2; exit 2; }
            ours+=("$1" "$2"); shift 2 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
args+=(--threads "$threads")

bin=${IJEPA_BIN:-$(command -v ijepa || true)}
[[ -n $bin && -x $bin ]] || { echo "error: no ijepa binary: set IJEPA_BIN or put ijepa on PATH (cargo build --release)" >&2; exit 2; }
py=${IJEPA_PYTHON:-}
if [[ -z $py ]]; then
    if [[ -x ${IJEPA_VENV:-$here/../.venv}/bin/python ]]; then py=${IJEPA_VENV:-$here/../.venv}/bin/python; else py=python3; fi
fi
"$py" -c 'import torch, numpy' 2>/dev/null || { echo "error: $py lacks torch or numpy (pip install torch==2.11.0 numpy)" >&2; exit 2; }

ms() { sed -n 's/.* ms_per_step=\([0-9.]*\).*/\1/p' <<<"$1"; }
rss() { sed -n 's/.* peak_rss_mb=\([0-9.]*\).*/\1/p' <<<"$1"; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "error: --rounds takes a number of rounds, at least 1 (got '$rounds')" >&2; exit 2; }
errs=$(mktemp); trap 'rm -f "$errs"' EXIT
ours_ms=(); off_ms=(); ours_rss=(); off_rss=()
echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs, threads $threads"
for ((r = 1; r <= rounds; r++)); do
    # alternate which side goes first, so neither always runs on a warmer machine; ours first
    # in round 1: a configuration it refuses (a mask the official sampler never finishes
    # drawing) stops the script at once, not after the official side hangs
    for side in $( ((r % 2)) && echo "ours official" || echo "official ours"); do
        if [[ $side == official ]]; then
            line=$("$py" "$here/bench_official_step.py" "$official" "${args[@]}")
            off_ms+=("$(ms "$line")"); off_rss+=("$(rss "$line")")
        else
            # (its error shown: it was dropped, and the script ended with no word)
            if ! line=$("$bin" bench step "${args[@]}" "${ours[@]}" 2>"$errs"); then
                echo "error: ijepa bench step failed:" >&2; cat "$errs" >&2; exit 1
            fi
            ours_ms+=("$(ms "$line")"); ours_rss+=("$(rss "$line")")
        fi
        echo "round $r $side: $line"
    done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
mo=$(median "${off_ms[@]}"); mu=$(median "${ours_ms[@]}")
ro=$(median "${off_rss[@]}"); ru=$(median "${ours_rss[@]}")
awk -v o="$mo" -v u="$mu" -v ro="$ro" -v ru="$ru" -v n="$rounds" 'BEGIN {
    printf "median of %d rounds: official %.2f ms/step, ijepa %.2f ms/step, speed-up official/ijepa %.3fx\n", n, o, u, o / u
    printf "peak resident memory: official %.0f MB, ijepa %.0f MB\n", ro, ru
}'
