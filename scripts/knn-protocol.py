#!/usr/bin/env python3
"""kNN on Fashion-MNIST with the protocol's own knobs turned: k, and centring or standardising.

The kNN evaluation of `ijepa` (`eval "knn"`) is DINO's: cosine similarity, k = 20, votes
exp(sim / 0.07). Could the encoder's kNN deficit against the raw pixels (README, "Learning on
Fashion-MNIST") be the protocol's, i.e. would a k or a feature normalisation chosen on held-out
data close it? This script scores the same weighted kNN for k in {10, 20, 50} on

  cos     the features as they are (L2-normalised: the evaluation's protocol)
  center  the neighbours' mean subtracted first (from neighbours and queries)
  std     each dimension standardised by the neighbours' mean and standard deviation

for an encoder's cached frozen features (the `features/` folder `ijepa run` writes beside the
stages: `<model>-Last4[-bf16][-onednn]-{train,test}-<data>-<images>.safetensors`, the last
four blocks' pooled features, `<images>` each split's own fingerprint;
`last` is their last quarter) and for the raw pixels (the evaluation's 3-channel normalised
28x28 images), all through one protocol.

Split: by default 600 training images of each class (6,000, drawn with seed 0) are the queries
and the other 54,000 the neighbours: the test split is not read. `--test` scores the 10,000 test
images against the 60,000 training images instead (for the record, never to choose).

    python scripts/knn-protocol.py runs/fmnist-ijepa/features/<model>-Last4-train-<data>-<images>.safetensors [--test]

(`--test` reads the test split's file beside it: the same model and data, its own fingerprint;
`--test-features FILE` names it.)

Needs: torch (the venv of scripts/env.sh); Debian's dataset-fashion-mnist (scripts/env.sh). ~3 minutes on 2 CPU cores (the 2,352-wide pixels dominate).
"""
import argparse
import json
import struct

import torch

from fmnist_knn import idx_file, knn

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def test_file_of(train_path):
    """The test split's features beside `train_path`: `<model>-test-<data>-<its images>`
    (each split's file ends with the fingerprint of its own images, so the name is no
    replacement of `-train-` in the training file's)."""
    import glob
    import os

    folder, name = os.path.split(train_path)
    stem, sep, _fingerprint = name.rpartition("-")
    model, found, data = stem.rpartition("-train-")
    if not (sep and found):
        raise SystemExit(f"{train_path}: not a training split's feature file (<model>-train-<data>-<images>.safetensors); give --test-features")
    matches = sorted(glob.glob(os.path.join(glob.escape(folder), f"{glob.escape(model)}-test-{glob.escape(data)}-*.safetensors")))
    if len(matches) != 1:
        raise SystemExit(f"{len(matches)} test feature files of {model} and data {data} beside {train_path} ({', '.join(matches) or 'none'}): give --test-features")
    return matches[0]


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": torch.float32, "I64": torch.int64}
    out = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[key] = torch.frombuffer(bytearray(raw[8 + n + s:8 + n + e]), dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out


def pixels(images):
    """uint8 [N, 28, 28] -> the evaluation's raw-pixel features: three equal channels,
    ImageNet mean/std, flattened."""
    g = images.reshape(len(images), -1).float() / 255
    return torch.cat([(g - m) / s for m, s in zip(MEAN, STD)], 1)



def prepared(bank, query, prep):
    if prep == "center":
        m = bank.mean(0)
        return bank - m, query - m
    if prep == "std":
        m, s = bank.mean(0), bank.std(0) + 1e-6
        return (bank - m) / s, (query - m) / s
    return bank, query


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("train_features", help="an encoder's cached <model>-Last4-train-<data>-<images>.safetensors")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--test", action="store_true", help="score the test split (for the record)")
    ap.add_argument("--test-features", help="the test split's features (default: the file beside TRAIN_FEATURES of the same model and data)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    # (the files named, before ~1 GB of features and pixels is read: a wrong name was a
    # traceback, and the test file's a late one)
    import os

    if args.test_features and not args.test:
        raise SystemExit("--test-features names the test split's features, which only --test reads: add --test")
    def must_exist(path):
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: no such file (the `features/` folder of a run holds them)")

    must_exist(args.train_features)
    test_path = (args.test_features or test_file_of(args.train_features)) if args.test else None
    if test_path is not None:
        must_exist(test_path)
    torch.set_num_threads(args.threads)

    train = load_safetensors(args.train_features)
    y = idx_file(f"{args.data}/train-labels-idx1-ubyte.gz").long()
    if not torch.equal(train["y"], y):
        raise SystemExit(f"{args.train_features}: its labels are not the training split's, in order")
    width = train["x"].shape[1] // 4
    sets = {"last": train["x"][:, 3 * width:], "last4": train["x"], "pixels": pixels(idx_file(f"{args.data}/train-images-idx3-ubyte.gz"))}
    if args.test:
        test = load_safetensors(test_path)
        ytest = idx_file(f"{args.data}/t10k-labels-idx1-ubyte.gz").long()
        if not torch.equal(test["y"], ytest):
            raise SystemExit("the test features' labels are not the test split's, in order")
        queries = {"last": test["x"][:, 3 * width:], "last4": test["x"], "pixels": pixels(idx_file(f"{args.data}/t10k-images-idx3-ubyte.gz"))}
        split = lambda name: (sets[name], y, queries[name], ytest)
        print("kNN top-1 (%), T=0.07; test split (10,000) against the training split (60,000)")
    else:
        g = torch.Generator().manual_seed(0)
        held = torch.cat([torch.nonzero(y == c).flatten()[torch.randperm(int((y == c).sum()), generator=g)[:600]] for c in range(10)])
        rest = torch.ones(len(y), dtype=torch.bool)
        rest[held] = False
        rest = torch.nonzero(rest).flatten()
        split = lambda name: (sets[name][rest], y[rest], sets[name][held], y[held])
        print("kNN top-1 (%), T=0.07; held out of the training split: 6,000 queries, 54,000 neighbours (test split not read)")
    ks = (10, 20, 50)
    print(f"{'features':<8} {'prep':<7}" + "".join(f"  k={k:<4}" for k in ks))
    for name in sets:
        for prep in ("cos", "center", "std"):
            bank, ybank, query, yquery = split(name)
            bank, query = prepared(bank.float(), query.float(), prep)
            row = "".join(f"  {knn(bank, ybank, query, yquery, k):6.2f}" for k in ks)
            print(f"{name:<8} {prep:<7}{row}", flush=True)


if __name__ == "__main__":
    main()
