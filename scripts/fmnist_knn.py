"""Helpers shared by the kNN diagnostics (knn-pooling.py, knn-protocol.py): Fashion-MNIST's idx
files and the weighted kNN of `ijepa`'s `eval "knn"`. Imported from the scripts' own folder
(Python puts it first on sys.path)."""
import gzip
import struct

import torch
import torch.nn.functional as F


def idx_file(path):
    """An idx file (gzipped) as a uint8 tensor of its dimensions."""
    d = gzip.open(path).read()
    nd = d[3]
    dims = struct.unpack(">" + "I" * nd, d[4:4 + 4 * nd])
    return torch.frombuffer(bytearray(d[4 + 4 * nd:]), dtype=torch.uint8).view(*dims)


def knn(bank, ybank, query, yquery, k=20, t=0.07, chunk=1000):
    """Top-1 (%) of the queries: cosine similarity to the bank, the k nearest vote with weight
    exp(sim / t) (DINO's protocol; `ijepa`'s eval "knn" at k=20, T=0.07)."""
    bank, query = F.normalize(bank.float(), dim=1), F.normalize(query.float(), dim=1)
    correct = 0
    for s in range(0, len(query), chunk):
        sim = query[s:s + chunk] @ bank.T
        v, i = sim.topk(k, 1)
        w = ((v - v[:, :1]) / t).exp()
        votes = torch.zeros(len(v), 10).scatter_add(1, ybank[i], w)
        correct += (votes.argmax(1) == yquery[s:s + chunk]).sum().item()
    return 100.0 * correct / len(query)
