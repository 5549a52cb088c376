#!/usr/bin/env python3
"""Checks a DINO encoder exported by `ijepa export --format hf` against transformers and the
official DINO code.

    ijepa export FINAL.safetensors --format hf --out HF_DIR
    ijepa export FINAL.safetensors --format official --out OFFICIAL.safetensors
    PYTHONPATH=TRANSFORMERS_DIR python scripts/check-hf-dino-export.py \\
        HF_DIR OFFICIAL.safetensors DINO_CHECKOUT

Loads HF_DIR with transformers' `ViTModel` (`add_pooling_layer=False`: DINO has no pooler;
prints missing / unexpected keys: both must be empty), builds the official `VisionTransformer`
of facebookresearch/dino (`vision_transformer.py` of DINO_CHECKOUT; only that file and its
`utils.py` are imported) with the teacher backbone's weights of OFFICIAL (strict), runs both
on the same images and prints the largest difference of the class token's output (what
DINO's `forward` returns) and of all tokens' (`get_intermediate_layers`, normed). Exits
non-zero when a key is missing or unexpected or an output differs by more than 1e-4.

Needs transformers and pillow (the checkout's utils.py imports PIL) on PYTHONPATH, e.g.
`pip install --target DIR transformers && pip install --target DIR --no-deps pillow`.

Measured (transformers 5.24.0, torch 2.11, a 2-epoch ViT 32x2/4 DINO run at 16 px, 2-core AMD
EPYC, fp32): no missing or unexpected keys; class token and all tokens equal to 5.7e-7.
"""
import json
import sys
from functools import partial

import torch
import torch.nn as nn


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    hf_dir, official, checkout = sys.argv[1:4]
    from safetensors.torch import load_file
    from transformers import ViTModel

    cfg = json.load(open(f"{hf_dir}/config.json"))
    model, info = ViTModel.from_pretrained(hf_dir, add_pooling_layer=False, output_loading_info=True)
    model.eval()
    bad_keys = info["missing_keys"] or info["unexpected_keys"]
    print("transformers load:", {k: v for k, v in info.items()})

    sys.path.insert(0, checkout)
    import vision_transformer as vits

    d, size, patch = cfg["hidden_size"], cfg["image_size"], cfg["patch_size"]
    off = vits.VisionTransformer(
        img_size=[size], patch_size=patch, in_chans=3, embed_dim=d, depth=cfg["num_hidden_layers"],
        num_heads=cfg["num_attention_heads"], mlp_ratio=cfg["intermediate_size"] / d, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=cfg["layer_norm_eps"]))
    off.load_state_dict(load_file(official), strict=True)
    off.eval()

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, size, size, generator=g)
    with torch.no_grad():
        hf = model(pixel_values=x).last_hidden_state
        cls = off(x)
        tokens = off.get_intermediate_layers(x, n=1)[0]
    d_cls = (hf[:, 0] - cls).abs().max().item()
    d_all = (hf - tokens).abs().max().item()
    print(f"largest |HF - official|: class token {tuple(cls.shape)} {d_cls:.3e}, all tokens {tuple(hf.shape)} {d_all:.3e}")
    ok = not bad_keys and d_cls < 1e-4 and d_all < 1e-4
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
