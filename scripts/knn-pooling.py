#!/usr/bin/env python3
"""kNN on Fashion-MNIST with the frozen encoder's last-block tokens pooled four ways.

Why does the kNN of an I-JEPA encoder trail the raw pixels on Fashion-MNIST while its linear
probe passes them (README, "Learning on Fashion-MNIST")? This script measures how much of the
gap is the pooling: the evaluations average the 7x7 patch tokens into one vector (`last`, as the
paper's probes do), which throws away where things are, while the pixel baseline keeps the
layout of images that are all centred and upright. It scores the same weighted kNN as `ijepa`'s
`eval "knn"` (cosine, k=20, votes exp(sim/0.07); DINO's protocol) on

  mean    the mean of the normed last-block tokens (= `features "last"`)
  grid2   the tokens average-pooled to a 2x2 grid, concatenated (4 x D)
  grid3   the same on a 3x3 grid (9 x D)
  tokens  all 49 normed tokens concatenated (49 x D): no pooling

for each checkpoint given, a random-init encoder of the same shape (the official init, seed 0)
and the pixels, all through the same protocol.

Split: by default 10% of each class of the TRAINING split are the queries and the rest the
neighbours (the test split is not read); `--test` scores the 10,000 test images against the
60,000 training images instead (for the record, never to choose).

It runs the official model code (`src/models/vision_transformer.py` of a facebookresearch/ijepa
checkout you fetched; nothing is downloaded): our checkpoints use the official parameter names.
Our checkpoints (`final`, `latest`, `epoch-NNNN`) hold the target encoder as `target_encoder.*`
(beside the context `encoder.*` and the `predictor.*`), which is read; a file of one encoder
(an export under the official names) holds it as `encoder.*`.

    python scripts/knn-pooling.py /path/to/ijepa-checkout runs/x/pretrain-*/checkpoints/final.safetensors \\
        [more checkpoints] [--width 128 --depth 4 --heads 4 --patch 4] [--test] [--no-baselines]

Needs: torch and numpy (the official model code imports numpy; `pip install numpy` into the venv); Debian's dataset-fashion-mnist (scripts/env.sh).
~6 minutes a checkpoint on 2 CPU cores (the 6,272-wide token features dominate).
"""
import argparse
import json
import struct
import sys

import torch
import torch.nn.functional as F

from fmnist_knn import idx_file, knn

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def normalised(images):
    """uint8 [B, 28, 28] -> the evaluation transform of `ijepa` at 28 px: three equal channels,
    ImageNet mean/std."""
    x = images.float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
    return (x - MEAN) / STD


def load_encoder(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    keys = [k for k in header if k != "__metadata__"]
    prefix = "target_encoder." if any(k.startswith("target_encoder.") for k in keys) else "encoder."
    sd = {}
    for k in keys:
        if not k.startswith(prefix):
            continue
        v = header[k]
        if v["dtype"] != "F32":
            sys.exit(f"{path}: {k} is {v['dtype']}, expected F32")
        a, b = v["data_offsets"]
        sd[k[len(prefix):]] = torch.frombuffer(bytearray(raw[8 + n + a:8 + n + b]), dtype=torch.float32).view(v["shape"])
    if not sd:
        sys.exit(f"{path}: no encoder.* or target_encoder.* tensors")
    return sd


def pooled(enc, images, grid):
    out = {}
    with torch.no_grad():
        for s in range(0, len(images), 1000):
            h = enc.patch_embed(normalised(images[s:s + 1000])) + enc.pos_embed
            for blk in enc.blocks:
                h = blk(h)
            t = enc.norm(h)  # [B, N, D]
            b, n, d = t.shape
            g = t.transpose(1, 2).reshape(b, d, grid, grid)
            parts = {
                "mean": t.mean(1),
                "grid2": F.adaptive_avg_pool2d(g, 2).flatten(1),
                "grid3": F.adaptive_avg_pool2d(g, 3).flatten(1),
                "tokens": t.flatten(1),
            }
            for k, v in parts.items():
                out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("official", help="a facebookresearch/ijepa checkout (for its VisionTransformer)")
    ap.add_argument("checkpoints", nargs="*", help="our .safetensors checkpoints")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--test", action="store_true", help="score the test split (for the record)")
    ap.add_argument("--no-baselines", action="store_true", help="skip random init and pixels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, args.official)
    try:
        from src.models.vision_transformer import VisionTransformer
    except ImportError as e:
        if e.name == "numpy":
            sys.exit("the official model code needs numpy: pip install numpy (into this Python)")
        sys.exit(f"{args.official}: not a facebookresearch/ijepa checkout ({e})")
    torch.set_num_threads(args.threads)
    r = args.data.rstrip("/") + "/"
    xtr, ytr = idx_file(r + "train-images-idx3-ubyte.gz"), idx_file(r + "train-labels-idx1-ubyte.gz").long()
    if args.test:
        xq, yq = idx_file(r + "t10k-images-idx3-ubyte.gz"), idx_file(r + "t10k-labels-idx1-ubyte.gz").long()
        images, bank, query = torch.cat([xtr, xq]), torch.arange(len(xtr)), torch.arange(len(xtr), len(xtr) + len(xq))
        labels = torch.cat([ytr, yq])
        split = f"test split ({len(xq):,}) against the training split ({len(xtr):,})"
    else:
        g = torch.Generator().manual_seed(1)
        held, rest = [], []
        for c in range(10):
            ii = (ytr == c).nonzero().flatten()
            p = ii[torch.randperm(len(ii), generator=g)]
            held += p[: len(ii) // 10].tolist()
            rest += p[len(ii) // 10:].tolist()
        images, labels, bank, query = xtr, ytr, torch.tensor(sorted(rest)), torch.tensor(sorted(held))
        split = f"held out of the training split: {len(query)} queries, {len(bank)} neighbours (test split not read)"
    size = images.shape[1]
    if size % args.patch:
        sys.exit(f"--patch {args.patch} does not divide the {size}-pixel images")
    grid = size // args.patch

    def model():
        torch.manual_seed(0)
        return VisionTransformer(img_size=[size], patch_size=args.patch, embed_dim=args.width, depth=args.depth,
                                 num_heads=args.heads, mlp_ratio=4, qkv_bias=True,
                                 norm_layer=lambda d: torch.nn.LayerNorm(d, eps=1e-6)).eval()

    def score(feats):
        return {k: round(knn(v[bank], labels[bank], v[query], labels[query]), 2) for k, v in feats.items()}

    print(f"kNN top-1 (%), k=20, T=0.07; {split}", flush=True)
    print(f"{'subject':<40} {'mean':>7} {'grid2':>7} {'grid3':>7} {'tokens':>7}", flush=True)
    subjects = [(p, p) for p in args.checkpoints]
    if not args.no_baselines:
        subjects.append(("random init", None))
    for name, path in subjects:
        enc = model()
        if path:
            try:
                enc.load_state_dict(load_encoder(path), strict=True)
            except RuntimeError as e:
                # (torch's first line says only "Error(s) in loading state_dict": the next ones
                # name the keys)
                lines = [l.strip() for l in str(e).splitlines() if l.strip()]
                why = "; ".join(lines[1:3]) or (lines[0] if lines else repr(e))
                sys.exit(f"{path}: does not fit a ViT {args.width}x{args.depth}, {args.heads} heads, patch {args.patch} "
                         f"(give the run's --width/--depth/--heads/--patch): {why}")
        s = score(pooled(enc, images, grid))
        label = name if len(name) <= 40 else "..." + name[-37:]
        print(f"{label:<40} {s['mean']:>7.2f} {s['grid2']:>7.2f} {s['grid3']:>7.2f} {s['tokens']:>7.2f}", flush=True)
    if not args.no_baselines:
        px = torch.cat([normalised(images[s:s + 1000]).flatten(1) for s in range(0, len(images), 1000)])
        print(f"{'raw pixels':<40} {knn(px[bank], labels[bank], px[query], labels[query]):>7.2f}", flush=True)


if __name__ == "__main__":
    main()
