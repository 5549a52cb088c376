#!/usr/bin/env python3
"""One official I-JEPA training step, recorded as a parity fixture for `ijepa parity`.

Runs the official code of facebookresearch/ijepa (a checkout given on the command line; nothing
is downloaded) on a tiny configuration: its `VisionTransformer` and `vit_predictor` with
`init_model`'s weight initialisation, its multi-block `MaskCollator`, `init_opt`'s AdamW parameter
groups, and the body of `train.py`'s `train_step` (layer-normed, masked, repeated targets; smooth
L1; backward; AdamW step; EMA update of the target encoder). Writes

    OUT.json          the configuration and the loss
    OUT.safetensors   init.* (state dicts before the step), input.* (images, masks),
                      output.* (target, context, prediction), grad.* (gradients),
                      after.* (encoder, predictor, target encoder after the step),
                      opt.exp_avg.* / opt.exp_avg_sq.* (AdamW's moments after the step:
                      (1 - beta1) g and (1 - beta2) g^2, so the betas are checked too, which
                      the first update alone cannot see: its bias correction cancels them)

The learning rate and weight decay are set on the optimiser's groups directly (what the
official schedulers' `step()` writes into them), so the step uses exactly `--lr` and `--wd`.

    python scripts/make-parity-fixture.py OFFICIAL_CHECKOUT tests/fixtures/official-step-tiny --name tiny
    python scripts/make-parity-fixture.py OFFICIAL_CHECKOUT tests/fixtures/official-step-mlp3 \
        --mlp-ratio 3.0 --seed 1

needs: torch (the project venv's) and numpy (the official vision_transformer.py imports it:
`pip install numpy` into the venv), the official checkout. fp32 on CPU.
"""
import argparse
import copy
import json
import sys
from functools import partial

import torch
import torch.nn.functional as F

from fixture_io import check_inputs, write_safetensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("official", help="a checkout of facebookresearch/ijepa")
    ap.add_argument("out", help="output path without extension")
    ap.add_argument("--name", default=None)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--mlp-ratio", type=float, default=4.0, help="the encoder's (the predictor's is always 4, as in vit_predictor)")
    ap.add_argument("--pred-width", type=int, default=48)
    ap.add_argument("--pred-depth", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.04)
    ap.add_argument("--ema", type=float, default=0.996)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    check_inputs(a.official, "facebookresearch/ijepa", ["src/models/vision_transformer.py", "src/helper.py"], a.out)
    if a.heads < 1 or a.width % a.heads or a.pred_width % a.heads:
        sys.exit(f"--heads {a.heads} must divide --width {a.width} and --pred-width {a.pred_width} (the predictor takes the encoder's heads)")
    sys.path.insert(0, a.official)
    import src.models.vision_transformer as vit
    from src.helper import init_opt
    from src.masks.multiblock import MaskCollator
    from src.masks.utils import apply_masks
    from src.utils.tensors import repeat_interleave_batch, trunc_normal_

    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    eps = 1e-6
    # what vit_tiny/vit_base/... do, with the encoder's shape and mlp ratio given
    encoder = vit.VisionTransformer(
        img_size=[a.image_size], patch_size=a.patch, embed_dim=a.width, depth=a.depth, num_heads=a.heads,
        mlp_ratio=a.mlp_ratio, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=eps))
    # init_model's predictor
    predictor = vit.vit_predictor(
        num_patches=encoder.patch_embed.num_patches, embed_dim=encoder.embed_dim,
        predictor_embed_dim=a.pred_width, depth=a.pred_depth, num_heads=encoder.num_heads)

    def init_weights(m):  # init_model's
        if isinstance(m, torch.nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                torch.nn.init.constant_(m.bias, 0)
        elif isinstance(m, torch.nn.LayerNorm):
            torch.nn.init.constant_(m.bias, 0)
            torch.nn.init.constant_(m.weight, 1.0)

    for m in encoder.modules():
        init_weights(m)
    for m in predictor.modules():
        init_weights(m)
    target_encoder = copy.deepcopy(encoder)
    for p in target_encoder.parameters():
        p.requires_grad = False

    tensors = {}
    for prefix, model in [("init.encoder.", encoder), ("init.predictor.", predictor)]:
        for k, v in model.state_dict().items():
            tensors[prefix + k] = v.detach().clone()

    collator = MaskCollator(
        input_size=(a.image_size, a.image_size), patch_size=a.patch, enc_mask_scale=(0.85, 1.0),
        pred_mask_scale=(0.15, 0.2), aspect_ratio=(0.75, 1.5), nenc=1, npred=4, min_keep=4, allow_overlap=False)
    images = torch.randn(a.batch, 3, a.image_size, a.image_size)
    batch, masks_enc, masks_pred = collator([(images[i], 0) for i in range(a.batch)])
    imgs = batch[0]

    optimizer, _, _, _ = init_opt(
        encoder, predictor, iterations_per_epoch=1, start_lr=a.lr, ref_lr=a.lr, warmup=0, num_epochs=1,
        wd=a.wd, final_wd=a.wd, final_lr=a.lr, use_bfloat16=False, ipe_scale=1.0)
    for g in optimizer.param_groups:  # what scheduler.step() / wd_scheduler.step() set
        g["lr"] = a.lr
        if not g.get("WD_exclude", False):
            g["weight_decay"] = a.wd

    # train.py's train_step, fp32
    with torch.no_grad():
        h = target_encoder(imgs)
        h = F.layer_norm(h, (h.size(-1),))
        B = len(h)
        h = apply_masks(h, masks_pred)
        h = repeat_interleave_batch(h, B, repeat=len(masks_enc))
    context = encoder(imgs, masks_enc)
    z = predictor(context, masks_enc, masks_pred)
    loss = F.smooth_l1_loss(z, h)
    loss.backward()
    for prefix, model in [("grad.encoder.", encoder), ("grad.predictor.", predictor)]:
        for k, p in model.named_parameters():
            if p.requires_grad:  # pos_embed is a fixed sin-cos table
                tensors[prefix + k] = p.grad.detach().clone()
    optimizer.step()
    # AdamW's moments after the step, under the gradients' names
    for prefix, model in [("opt.{}.encoder.", encoder), ("opt.{}.predictor.", predictor)]:
        for k, p in model.named_parameters():
            if p.requires_grad:
                for moment in ("exp_avg", "exp_avg_sq"):
                    tensors[prefix.format(moment) + k] = optimizer.state[p][moment].detach().clone()
    optimizer.zero_grad()
    with torch.no_grad():
        for q, k in zip(encoder.parameters(), target_encoder.parameters()):
            k.data.mul_(a.ema).add_((1. - a.ema) * q.detach().data)

    tensors["input.images"] = imgs
    tensors["input.masks_enc"] = torch.stack(masks_enc)
    tensors["input.masks_pred"] = torch.stack(masks_pred)
    tensors["output.target"] = h
    tensors["output.context"] = context.detach()
    tensors["output.prediction"] = z.detach()
    for prefix, model in [("after.encoder.", encoder), ("after.predictor.", predictor), ("after.target_encoder.", target_encoder)]:
        for k, v in model.state_dict().items():
            tensors[prefix + k] = v.detach().clone()

    write_safetensors(a.out + ".safetensors", tensors)
    spec = {
        "name": a.name or a.out.rsplit("/", 1)[-1],
        "image_size": a.image_size, "patch_size": a.patch, "embed_dim": a.width, "depth": a.depth,
        "heads": a.heads, "mlp_ratio": a.mlp_ratio, "predictor_mlp_ratio": 4.0, "layer_norm_eps": eps,
        "predictor_width": a.pred_width, "predictor_depth": a.pred_depth, "batch": a.batch,
        "n_targets": 4, "n_context": 1, "min_keep": 4, "target_scale": [0.15, 0.2],
        "context_scale": [0.85, 1.0], "aspect_ratio": [0.75, 1.5],
        "optimizer": {"kind": "adamw", "lr": a.lr, "weight_decay": a.wd, "betas": [0.9, 0.999], "eps": 1e-8,
                      "no_decay": "biases and 1-D tensors"},
        "ema_momentum": a.ema,
        "seed": a.seed,
        "loss": "smooth_l1 (beta 1, mean) against layer-normed target-encoder output",
        "loss_value": loss.item(),
        "generator": "scripts/make-parity-fixture.py (facebookresearch/ijepa, torch %s)" % torch.__version__,
        "tensors": {
            "init": "state dicts before the step (target encoder = copy of encoder)",
            "input": "images [B,3,H,W]; masks_enc [n_context,B,K]; masks_pred [n_targets,B,K]",
            "output": "target [n_targets*B,K,D] (layer-normed, gathered); context = encoder(images, masks_enc); prediction = predictor(...)",
            "grad": "gradients of the loss",
            "after": "state dicts after AdamW step and EMA update",
            "opt": "AdamW's exp_avg and exp_avg_sq after the step, per trainable tensor",
        },
    }
    with open(a.out + ".json", "w") as f:
        json.dump(spec, f, indent=2)
    print(f"wrote {a.out}.safetensors ({len(tensors)} tensors) and {a.out}.json; loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
