#!/usr/bin/env python3
"""Counts the FLOPs of one official DINO step per image with torch's FlopCounterMode, to check
`ijepa estimate`'s DINO cost model (recipes/src/dino/cost.rs) against the official code.

    PYTHONPATH=DIR_WITH_PILLOW python scripts/check-dino-cost.py DINO_CHECKOUT

Builds facebookresearch/dino's ViT-S/16 student and teacher (`MultiCropWrapper` of
`vit_small` and `DINOHead(384, 65536)`, from the checkout's vision_transformer.py and utils.py,
which imports PIL), runs the teacher on 2 global 224 px crops and the student on those and 10
local 96 px crops, with the student's backward, for one image, and prints the student's
trainable parameters and the counted GFLOP. Compare with

    ijepa estimate FILE.kdl --images 1281167

of an experiment `recipe "dino"`, `encoder "vit-small" patch=16`, crop-size 224,
`dino { local-crops 10; local-size 96 }`. Measured (torch 2.11, AMD EPYC): 43,952,256
parameters and 123.36 GFLOP here; 43.95M and 123.36 GFLOP by the estimate (an earlier one
counted the patch embedding's input gradient too, which the step never computes: 123.80).
"""
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode


def main():
    import os
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if not os.path.isfile(os.path.join(sys.argv[1], "vision_transformer.py")) or not os.path.isfile(os.path.join(sys.argv[1], "utils.py")):
        sys.exit(f"{sys.argv[1]}: not a facebookresearch/dino checkout (no vision_transformer.py and utils.py)")
    sys.path.insert(0, sys.argv[1])
    import vision_transformer as vits
    from utils import MultiCropWrapper

    student = MultiCropWrapper(vits.vit_small(patch_size=16), vits.DINOHead(384, 65536))
    teacher = MultiCropWrapper(vits.vit_small(patch_size=16), vits.DINOHead(384, 65536))
    for p in teacher.parameters():
        p.requires_grad = False
    globals_ = [torch.randn(1, 3, 224, 224) for _ in range(2)]
    locals_ = [torch.randn(1, 3, 96, 96) for _ in range(10)]
    print("student trainable parameters", sum(p.numel() for p in student.parameters() if p.requires_grad))
    with FlopCounterMode(display=False) as fc:
        teacher(globals_)
        student(globals_ + locals_).sum().backward()
    print(f"GFLOP per image {fc.get_total_flops() / 1e9:.2f}")


if __name__ == "__main__":
    main()
