#!/usr/bin/env python3
"""Make the small Fashion-MNIST subset embedded in the ijepa binary.

Reads the full Fashion-MNIST from Debian's `dataset-fashion-mnist` package (or any folder
holding the four standard idx .gz files) and writes, into data/fashion-mnist-subset/:

  train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz: the first 1,000 images of each of
      the 10 classes of the training split, in file order (10,000 images);
  t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz: the first 200 images of each class
      of the test split, in file order (2,000 images).

The selection keeps the original relative order of the chosen images (no shuffling), so the
output is a pure function of the input files. The gzip streams are written with mtime 0 and
no file name, so running the script twice gives byte-identical files.

Usage: scripts/make-fmnist-subset.py [SRC_DIR] [DST_DIR]
  SRC_DIR defaults to /usr/share/datasets/fashion-mnist
  DST_DIR defaults to <repo>/data/fashion-mnist-subset
Standard library only.
"""

import gzip
import hashlib
import io
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
DST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "data", "fashion-mnist-subset")
PER_CLASS = {"train": 1000, "t10k": 200}
NUM_CLASSES = 10


def read_idx(path, magic):
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SystemExit(f"{path}: no such file (SRC holds the original *-idx?-ubyte.gz files)")
    except (OSError, EOFError) as e:
        raise SystemExit(f"{path}: not a whole gzip file ({e})")
    if len(data) < 8:
        raise SystemExit(f"{path}: {len(data)} bytes, too short for an idx file")
    (m,) = struct.unpack(">I", data[:4])
    if m != magic:
        raise SystemExit(f"{path}: magic {m:#010x}, expected {magic:#010x}")
    ndim = m & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    item = 1
    for d in dims[1:]:
        item *= d
    if len(body) != dims[0] * item:
        raise SystemExit(f"{path}: {len(body)} data bytes, expected {dims[0] * item}")
    return dims, body, item


def write_gz(path, payload):
    buf = io.BytesIO()
    # mtime=0 and an empty file name make the output deterministic.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(payload)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def main():
    if any(a in ("-h", "--help") for a in sys.argv[1:]):
        print(__doc__)
        return
    if len(sys.argv) > 3:
        raise SystemExit(__doc__)
    if not os.path.isdir(SRC):
        raise SystemExit(f"{SRC}: no such folder (SRC holds the original Fashion-MNIST *-idx?-ubyte.gz files)")
    os.makedirs(DST, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        idims, images, isize = read_idx(os.path.join(SRC, f"{split}-images-idx3-ubyte.gz"), 0x803)
        ldims, labels, _ = read_idx(os.path.join(SRC, f"{split}-labels-idx1-ubyte.gz"), 0x801)
        if idims[0] != ldims[0]:
            raise SystemExit(f"{split}: {idims[0]} images but {ldims[0]} labels")
        counts = [0] * NUM_CLASSES
        chosen = []
        for i, lab in enumerate(labels):
            if counts[lab] < per_class:
                counts[lab] += 1
                chosen.append(i)
        if counts != [per_class] * NUM_CLASSES:
            raise SystemExit(f"{split}: not enough images per class: {counts}")
        n = len(chosen)
        img = struct.pack(">IIII", 0x803, n, idims[1], idims[2]) + b"".join(
            images[i * isize : (i + 1) * isize] for i in chosen
        )
        lab = struct.pack(">II", 0x801, n) + bytes(labels[i] for i in chosen)
        for name, payload in ((f"{split}-images-idx3-ubyte.gz", img), (f"{split}-labels-idx1-ubyte.gz", lab)):
            digest = write_gz(os.path.join(DST, name), payload)
            print(f"{name}: {n} items, sha256 {digest}")


if __name__ == "__main__":
    main()
