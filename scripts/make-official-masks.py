#!/usr/bin/env python3
"""Statistics of the official multi-block mask sampler (tests/fixtures/official-masks-224-16.json).

Draws 400 batches of 32 from the official `MaskCollator` (a checkout of facebookresearch/ijepa
given on the command line; nothing is downloaded) at the official ImageNet settings (224 px,
patch 16, 4 targets of scale 0.15-0.2 and aspect 0.75-1.5, one context of scale 0.85-1.0,
min_keep 10, no overlap) and writes the per-batch context and target lengths (mean, std,
min, max) and how often each patch falls in a target.

    python scripts/make-official-masks.py OFFICIAL_CHECKOUT tests/fixtures/official-masks-224-16.json

needs: torch in the venv. The collator seeds the block sizes itself, per call; the block
positions come from torch's global generator, seeded here (`seed` in the config written): the
same checkout gives the same file. (Unseeded, the mean context length moved by ~0.4 patch from
one draw to the next.)
"""
import json
import sys

import torch


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    import os
    if not os.path.isfile(os.path.join(sys.argv[1], "src", "masks", "multiblock.py")):
        sys.exit(f"{sys.argv[1]}: not a facebookresearch/ijepa checkout (no src/masks/multiblock.py)")
    if os.path.isdir(sys.argv[2]):
        sys.exit(f"{sys.argv[2]} is a folder: give the JSON file to write")
    sys.path.insert(0, sys.argv[1])
    from src.masks.multiblock import MaskCollator

    cfg = {"seed": 0, "image_size": 224, "patch_size": 16, "batch": 32, "batches": 400, "n_targets": 4, "n_context": 1,
           "min_keep": 10, "target_scale": [0.15, 0.2], "context_scale": [0.85, 1.0],
           "aspect_ratio": [0.75, 1.5], "allow_overlap": False}
    collator = MaskCollator(
        input_size=(cfg["image_size"], cfg["image_size"]), patch_size=cfg["patch_size"],
        enc_mask_scale=tuple(cfg["context_scale"]), pred_mask_scale=tuple(cfg["target_scale"]),
        aspect_ratio=tuple(cfg["aspect_ratio"]), nenc=cfg["n_context"], npred=cfg["n_targets"],
        min_keep=cfg["min_keep"], allow_overlap=cfg["allow_overlap"])
    grid = cfg["image_size"] // cfg["patch_size"]
    torch.manual_seed(cfg["seed"])
    ctx, tgt = [], []
    hits = torch.zeros(grid * grid, dtype=torch.float64)
    for _ in range(cfg["batches"]):
        batch = [(torch.zeros(1), 0) for _ in range(cfg["batch"])]
        _, masks_enc, masks_pred = collator(batch)
        ctx.append(float(masks_enc[0].shape[1]))
        tgt.append(float(masks_pred[0].shape[1]))
        for m in masks_pred:
            hits += torch.bincount(m.flatten(), minlength=grid * grid).double()

    def stats(v):
        t = torch.tensor(v)
        return {"mean": t.mean().item(), "std": t.std().item(), "min": t.min().item(), "max": t.max().item()}

    out = {
        "config": cfg,
        "note": "lengths are per batch, after truncation to the batch minimum",
        "context_len": stats(ctx),
        "target_len": stats(tgt),
        "target_patch_frequency": [round(x, 6) for x in (hits / hits.sum()).tolist()],
        "target_patch_frequency_note": "share of all target-mask hits per flat patch index (row-major); "
                                       "the last row and column are never hit (the official corner is drawn "
                                       "from randint(0, H - h), which excludes H - h)",
    }
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {sys.argv[2]}: context {out['context_len']['mean']:.2f}, target {out['target_len']['mean']:.2f}")


if __name__ == "__main__":
    main()
