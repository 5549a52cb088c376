#!/usr/bin/env python3
"""The state-dict keys and shapes of the official I-JEPA models (tests/fixtures/official-keys-*.txt).

Builds the official encoder and predictor with the official code's `init_model` (a checkout of
facebookresearch/ijepa given on the command line; nothing is downloaded) on PyTorch's meta
device, so even ViT-g costs no memory, and writes one `MODULE<TAB>KEY<TAB>[SHAPE]` line per
tensor, encoder first, in state-dict order.

    python scripts/make-official-keys.py OFFICIAL_CHECKOUT tests/fixtures

needs: torch and numpy in the venv (the official vision_transformer.py imports numpy).
"""
import sys

import torch

CONFIGS = [  # (model_name, patch, crop, predictor depth, predictor width, file)
    ("vit_base", 16, 224, 6, 384, "official-keys-vit-base-16-224.txt"),
    ("vit_huge", 14, 224, 12, 384, "official-keys-vit-huge-14-224.txt"),
    ("vit_giant", 16, 224, 16, 384, "official-keys-vit-giant-16-224.txt"),
]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    official, out = sys.argv[1], sys.argv[2]
    import os
    if not os.path.isfile(os.path.join(official, "src", "helper.py")):
        sys.exit(f"{official}: not a facebookresearch/ijepa checkout (no src/helper.py)")
    if os.path.exists(out) and not os.path.isdir(out):
        sys.exit(f"{out}: not a folder (the key lists are written into it)")
    os.makedirs(out, exist_ok=True)
    sys.path.insert(0, official)
    from src.helper import init_model

    # the official code draws drop-path rates with torch.linspace(...).item(), which the meta
    # device cannot answer: those few numbers are computed on the CPU
    linspace = torch.linspace
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
    for model_name, patch, crop, depth, width, name in CONFIGS:
        with torch.device("meta"):
            encoder, predictor = init_model(
                device="meta", patch_size=patch, model_name=model_name, crop_size=crop,
                pred_depth=depth, pred_emb_dim=width)
        lines = [
            f"# official {model_name} patch {patch} @{crop}, predictor depth {depth} width {width}",
            "# checkpoint dicts 'encoder' and 'target_encoder' hold the encoder keys, 'predictor' the",
            "# predictor keys, each prefixed with 'module.' (saved from DistributedDataParallel)",
        ]
        for module, model in [("encoder", encoder), ("predictor", predictor)]:
            for k, v in model.state_dict().items():
                lines.append(f"{module}\t{k}\t{list(v.shape)}")
        with open(f"{out}/{name}", "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"wrote {out}/{name} ({len(lines) - 3} tensors)")


if __name__ == "__main__":
    main()
