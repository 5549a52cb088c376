#!/usr/bin/env python3
"""Writes a synthetic ImageNet-like folder for `ijepa bench data` / bench_torchvision.py:
CLASSES class folders of JPEGs (quality 90, 4:2:0) with ImageNet's typical sizes (500x375,
375x500, 500x333, 400x300 ...), content = smooth colour fields plus texture and noise, so the
decoders do realistic work. Deterministic (seeded). Needs numpy and Pillow.

Usage: python scripts/make_bench_folder.py OUT --classes 10 --per-class 50
"""
import argparse, os
import numpy as np
from PIL import Image

SIZES = [(500, 375), (375, 500), (500, 333), (400, 300), (500, 400), (640, 480)]


def image(rng, w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.002, 0.03), rng.uniform(0.002, 0.03), rng.uniform(0, 6.3)
            out[..., c] += np.sin(x * fx * 6.28 + y * fy * 6.28 + ph)
    out = (out - out.min()) / (out.max() - out.min() + 1e-6) * 200 + 20
    tex = rng.normal(0, 12, (h // 4 + 1, w // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)[:h, :w]
    out += tex + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--per-class", type=int, default=50)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    for c in range(a.classes):
        d = os.path.join(a.out, f"n{c:08d}")
        os.makedirs(d, exist_ok=True)
        for i in range(a.per_class):
            w, h = SIZES[rng.integers(len(SIZES))]
            image(rng, w, h).save(os.path.join(d, f"n{c:08d}_{i}.JPEG"), quality=90)
    print(f"wrote {a.classes * a.per_class} images to {a.out}")


if __name__ == "__main__":
    main()
