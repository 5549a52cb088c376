#!/usr/bin/env python3
"""Checks an MAE encoder exported by `ijepa export --format hf` against transformers and the
official MAE code.

    ijepa export FINAL.safetensors --format hf --heads H --out HF_DIR
    ijepa export FINAL.safetensors --format official --heads H --out OFFICIAL.safetensors
    PYTHONPATH=TRANSFORMERS_DIR:TIMM_045_DIR python scripts/check-hf-mae-export.py \\
        HF_DIR OFFICIAL.safetensors MAE_CHECKOUT

Loads HF_DIR with transformers' `ViTMAEModel` (prints missing / unexpected keys: both must be
empty), builds the official `MaskedAutoencoderViT` of facebookresearch/mae (MAE_CHECKOUT, with
timm 0.4.5 as scripts/make-mae-parity-fixture.py) with the encoder weights of OFFICIAL, runs
both on the same images with the same masking noise (mask ratio 0: every patch kept, in noise
order) and prints the largest difference of their outputs. Exits non-zero when a key is
missing or unexpected or the outputs differ by more than 1e-4.

Measured (transformers 5.24.0 and 4.57.6, torch 2.11, a ViT 32x2 MAE run): no missing or
unexpected keys; outputs equal to 9.5e-7.
"""
import json
import sys
from functools import partial

import numpy as np
import torch
import torch.nn as nn

if not hasattr(np, "float"):
    np.float = float  # the official util/pos_embed.py uses the alias numpy 1.24 removed


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    hf_dir, official, checkout = sys.argv[1:4]
    from safetensors.torch import load_file
    from transformers import ViTMAEModel

    cfg = json.load(open(f"{hf_dir}/config.json"))
    model, info = ViTMAEModel.from_pretrained(hf_dir, output_loading_info=True)
    model.eval()
    bad_keys = info["missing_keys"] or info["unexpected_keys"]
    print("transformers load:", {k: v for k, v in info.items()})

    sys.path.insert(0, checkout)
    import models_mae

    d, size, patch = cfg["hidden_size"], cfg["image_size"], cfg["patch_size"]
    off = models_mae.MaskedAutoencoderViT(
        img_size=size, patch_size=patch, in_chans=3, embed_dim=d, depth=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"], decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=1,
        mlp_ratio=cfg["intermediate_size"] / d, norm_layer=partial(nn.LayerNorm, eps=cfg["layer_norm_eps"]))
    res = off.load_state_dict(load_file(official), strict=False)
    enc_missing = [k for k in res.missing_keys if not (k.startswith("decoder") or k == "mask_token")]
    print("official encoder keys not loaded:", enc_missing, "unexpected:", res.unexpected_keys)
    off.eval()

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, size, size, generator=g)
    noise = torch.rand(4, (size // patch) ** 2, generator=g)
    with torch.no_grad():
        hf = model(pixel_values=x, noise=noise).last_hidden_state
        real = torch.rand
        torch.rand = lambda *a, **k: noise.clone()
        try:
            ours, _, _ = off.forward_encoder(x, mask_ratio=0.0)
        finally:
            torch.rand = real
    diff = (hf - ours).abs().max().item()
    print(f"largest |HF - official| over {tuple(hf.shape)}: {diff:.3e}")
    ok = not bad_keys and not enc_missing and not res.unexpected_keys and diff < 1e-4
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
