#!/usr/bin/env python3
"""torchvision's side of `ijepa bench data`: ImageFolder + RandomResizedCrop + ToTensor +
Normalize (the official I-JEPA pretraining transform) over the same folder, with the same
number of worker processes, batch size and crop size. Prints one line in the same format.

Needs torchvision (and Pillow) beside torch: pip install torchvision==0.26.0
Usage: python scripts/bench_torchvision.py DIR --threads 2 --size 224 --batch 64 --batches 20
"""
import argparse, os, sys, time
import torch
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--threads", type=int, default=2, help="DataLoader worker processes (0: in this process)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    if not os.path.isdir(a.dir):
        sys.exit(f"{a.dir}: no such folder (an ImageFolder: one sub-folder of images per class)")
    if a.threads < 0 or a.size < 1 or a.batch < 1 or a.batches < 1 or a.warmup < 0:
        sys.exit("--threads and --warmup must be >= 0, --size, --batch and --batches >= 1")
    torch.set_num_threads(1)
    tf = transforms.Compose([
        transforms.RandomResizedCrop(a.size, scale=(0.3, 1.0)),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    try:
        ds = datasets.ImageFolder(a.dir, tf)
    except (FileNotFoundError, OSError) as e:
        sys.exit(f"{a.dir}: not an image folder torchvision reads: {e}")
    if len(ds) < a.batch:
        sys.exit(f"{a.dir}: {len(ds)} image(s), less than one batch of {a.batch} (drop_last): lower --batch")
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=a.threads,
                                     drop_last=True, persistent_workers=False)
    # the clock starts after the warm-up batches (at the start with --warmup 0): every batch
    # timed is counted, and only those (--warmup 0 counted the first batch's images without
    # its time: twice the rate over 2 batches)
    n, t0 = 0, None
    it = iter(dl)
    for i in range(a.warmup + a.batches):
        if i == a.warmup:
            t0 = time.perf_counter()
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(dl)
            x, _ = next(it)
        if i >= a.warmup:
            n += x.shape[0]
    dt = time.perf_counter() - t0
    print(f"bench data (torchvision) dir={a.dir} images={len(ds)} threads={a.threads} size={a.size} "
          f"batch={a.batch} batches={a.batches} img_per_s={n / dt:.1f} img_per_s_per_thread={n / dt / max(a.threads, 1):.1f}")


if __name__ == "__main__":
    main()
