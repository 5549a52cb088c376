"""Helpers shared by the parity-fixture generators (make-parity-fixture.py,
make-mae-parity-fixture.py, make-dino-parity-fixture.py): the fixture writer and the official
checkout's commit. Imported from the scripts' own folder (Python puts it first on sys.path)."""
import json
import struct
import subprocess

import torch


def check_inputs(checkout, repo, markers, out):
    """Exits with a message naming the cause (not a traceback after the whole step) when
    `checkout` is not a checkout of `repo` (one of `markers`, paths inside it, is missing) or the
    folder of the output path `out` (without extension) does not exist."""
    import os
    import sys
    if not os.path.isdir(checkout):
        sys.exit(f"{checkout}: no such folder (give a checkout of {repo})")
    missing = [m for m in markers if not os.path.isfile(os.path.join(checkout, m))]
    if missing:
        sys.exit(f"{checkout}: not a checkout of {repo} (no {', '.join(missing)})")
    folder = os.path.dirname(out) or "."
    if not os.path.isdir(folder):
        sys.exit(f"{folder}: no such folder for the output {out}.safetensors / .json")


def official_commit(checkout, given=None):
    """`given`, else `git -C checkout rev-parse HEAD`, else "unknown" (not a git checkout)."""
    if given is not None:
        return given
    try:
        return subprocess.run(["git", "-C", checkout, "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_safetensors(path, tensors):
    """A minimal safetensors writer (F32 / I64), tensors in name order."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.int64:
            dtype = "I64"
        else:
            dtype, t = "F32", t.to(torch.float32)
        b = t.numpy().tobytes()  # little-endian on the x86/ARM machines torch runs on
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
