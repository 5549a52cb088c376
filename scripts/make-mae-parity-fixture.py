#!/usr/bin/env python3
"""One official MAE pretraining step, recorded as a parity fixture.

Runs the official code of facebookresearch/mae (a checkout given on the command line; nothing is
downloaded) on a tiny configuration: its `MaskedAutoencoderViT` (models_mae.py, with its own
`initialize_weights` and `norm_layer=partial(nn.LayerNorm, eps=1e-6)` as the official factories
use), `main_pretrain.py`'s optimiser (`timm.optim.optim_factory.add_weight_decay(model, wd)` groups,
`torch.optim.AdamW(groups, lr, betas=(0.9, 0.95))`) and the body of `engine_pretrain.py`'s
`train_one_epoch` for one step, in fp32 on CPU, so without autocast and the loss scaler:
`loss, pred, mask = model(imgs, mask_ratio)`, `loss.backward()`, `optimizer.step()` (no gradient
clipping, as in pretraining). Writes

    OUT.json          recipe "mae", the configuration, the loss, versions, parameter groups
    OUT.safetensors   init.<key>  model.state_dict() before the step (official key names)
                      input.imgs [N,3,H,W]; input.noise [N,L] (random_masking's torch.rand)
                      output.latent [N,1+keep,D] (forward_encoder's output, cls first, kept
                        tokens in ascending-noise order); output.pred [N,L,p*p*3];
                      output.mask [N,L] (1 = removed); output.target [N,L,p*p*3] (patchified,
                        per-patch normalised when norm_pix_loss); output.ids_restore [N,L] (I64)
                      grad.<key>  gradients (parameters with requires_grad; not the sin-cos tables)
                      after.<key> model.state_dict() after the AdamW step
                      opt.exp_avg.<key>, opt.exp_avg_sq.<key>  AdamW's moments after it

The learning rate is set on the optimiser's groups directly (what util/lr_sched.adjust_learning_rate
writes into them), so the step uses exactly `--lr`. The masking noise is drawn from a seeded
generator and handed to the official `random_masking` by replacing `torch.rand` for the duration
of the forward call (restored afterwards); the recorded mask is checked against argsort(noise).

    PYTHONPATH=/var/cache/ijepa/pyextra-mae python scripts/make-mae-parity-fixture.py \
        OFFICIAL_CHECKOUT tests/fixtures/mae-step-tiny

needs: torch (the project venv's), numpy, the official checkout, and a timm whose
`vision_transformer.Block` still takes `qk_scale` (MAE pins timm 0.3.2, which no longer imports
with current torch: `from torch._six import container_abcs`). timm 0.4.5 is used: its `Block`,
`Attention`, `Mlp`, `PatchEmbed` and `optim_factory.add_weight_decay` are textually identical to
0.3.2's. It imports torchvision and PIL at import time, so install all three, without
dependencies, into a folder of their own (never touching the venv's torch):

    pip install --no-deps --target /var/cache/ijepa/pyextra-mae \
        timm==0.4.5 torchvision==0.26.0 pillow

No official file is edited. One compatibility shim: util/pos_embed.py uses `np.float`, removed in
numpy 1.24; when numpy lacks it, `np.float` is set to the builtin `float` (exactly the old alias,
i.e. float64) before models_mae is imported. util/misc.py (`from torch._six import inf`) and
engine_pretrain.py (CUDA-only autocast, loss scaler, torch.cuda.synchronize) are not imported;
their step is reproduced above.
"""
import argparse
import json
import sys
from functools import partial

import numpy as np
import torch
import torch.nn as nn

from fixture_io import check_inputs, official_commit, write_safetensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("official", help="a checkout of facebookresearch/mae")
    ap.add_argument("out", help="output path without extension")
    ap.add_argument("--name", default=None)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--dec-width", type=int, default=64)
    ap.add_argument("--dec-depth", type=int, default=2)
    ap.add_argument("--dec-heads", type=int, default=2)
    ap.add_argument("--mlp-ratio", type=float, default=4.0, help="encoder's and decoder's (MAE uses one)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--mask-ratio", type=float, default=0.75)
    ap.add_argument("--norm-pix-loss", dest="norm_pix_loss", action="store_true", default=True,
                    help="per-patch normalised pixel targets (default)")
    ap.add_argument("--no-norm-pix-loss", dest="norm_pix_loss", action="store_false")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--official-commit", default=None,
                    help="the checkout's commit (default: `git -C OFFICIAL rev-parse HEAD`, if it is a git checkout)")
    a = ap.parse_args()
    check_inputs(a.official, "facebookresearch/mae", ["models_mae.py"], a.out)
    if a.heads < 1 or a.dec_heads < 1 or a.width % a.heads or a.dec_width % a.dec_heads:
        sys.exit("--heads must divide --width, and --dec-heads --dec-width")

    if not hasattr(np, "float"):  # util/pos_embed.py's np.float (removed in numpy 1.24) was the builtin float
        np.float = float
    sys.path.insert(0, a.official)
    import timm
    import timm.optim.optim_factory as optim_factory
    import models_mae

    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    eps = 1e-6
    betas = (0.9, 0.95)
    adam_eps = 1e-8  # torch.optim.AdamW's default, which main_pretrain.py keeps
    # what mae_vit_base_patch16_dec512d8b & co. do, with the shape given
    model = models_mae.MaskedAutoencoderViT(
        img_size=a.image_size, patch_size=a.patch, in_chans=3,
        embed_dim=a.width, depth=a.depth, num_heads=a.heads,
        decoder_embed_dim=a.dec_width, decoder_depth=a.dec_depth, decoder_num_heads=a.dec_heads,
        mlp_ratio=a.mlp_ratio, norm_layer=partial(nn.LayerNorm, eps=eps), norm_pix_loss=a.norm_pix_loss)
    model.train(True)

    tensors = {}
    for k, v in model.state_dict().items():
        tensors["init." + k] = v.detach().clone()

    # main_pretrain.py's optimiser
    param_groups = optim_factory.add_weight_decay(model, a.wd)
    optimizer = torch.optim.AdamW(param_groups, lr=a.lr, betas=betas)
    names = {id(p): n for n, p in model.named_parameters()}
    assert len(optimizer.param_groups) == 2
    assert optimizer.param_groups[0]["weight_decay"] == 0.0 and optimizer.param_groups[1]["weight_decay"] == a.wd
    no_decay = [names[id(p)] for p in optimizer.param_groups[0]["params"]]
    decay = [names[id(p)] for p in optimizer.param_groups[1]["params"]]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    for g in optimizer.param_groups:  # what lr_sched.adjust_learning_rate writes (no lr_scale in pretraining)
        g["lr"] = a.lr

    # inputs: seeded images and masking noise, from their own generator
    gen = torch.Generator().manual_seed(a.seed + 1)
    imgs = torch.randn(a.batch, 3, a.image_size, a.image_size, generator=gen)
    L = model.patch_embed.num_patches
    noise = torch.rand(a.batch, L, generator=gen)
    len_keep = int(L * (1 - a.mask_ratio))  # random_masking's

    # hand `noise` to random_masking's `torch.rand(N, L, device=x.device)`; record forward_encoder's output
    captured = {}
    real_rand = torch.rand

    def recorded_rand(*size, **kw):
        assert "rand" not in captured, "torch.rand called more than once in the forward"
        assert tuple(size) == (a.batch, L), size
        assert set(kw) <= {"device"}, kw
        captured["rand"] = True
        return noise.clone().to(kw.get("device", "cpu"))

    real_forward_encoder = model.forward_encoder

    def recording_forward_encoder(*args, **kw):
        out = real_forward_encoder(*args, **kw)
        captured["latent"], captured["ids_restore"] = out[0], out[2]
        return out

    model.forward_encoder = recording_forward_encoder
    torch.rand = recorded_rand
    try:
        # engine_pretrain.py's step, fp32 (no autocast / loss scaler; accum_iter 1)
        optimizer.zero_grad()
        loss, pred, mask = model(imgs, mask_ratio=a.mask_ratio)
    finally:
        torch.rand = real_rand
        del model.forward_encoder
    assert captured.get("rand"), "random_masking did not call torch.rand"
    loss_value = loss.item()
    loss.backward()
    for k, p in model.named_parameters():
        if p.requires_grad:  # pos_embed / decoder_pos_embed are fixed sin-cos tables
            tensors["grad." + k] = p.grad.detach().clone()
    optimizer.step()
    # AdamW's moments after the step ((1 - beta1) g, (1 - beta2) g^2): what checks the betas,
    # which the first update cannot see (its bias correction cancels them)
    for k, p in model.named_parameters():
        if p in optimizer.state:
            for moment in ("exp_avg", "exp_avg_sq"):
                tensors["opt.%s.%s" % (moment, k)] = optimizer.state[p][moment].detach().clone()
    optimizer.zero_grad()

    # checks: the mask is argsort(noise)'s, the target / loss are forward_loss's
    ids_shuffle = torch.argsort(noise, dim=1)
    expect_mask = torch.ones(a.batch, L)
    expect_mask.scatter_(1, ids_shuffle[:, :len_keep], 0.0)
    assert torch.equal(mask, expect_mask), "recorded mask differs from argsort(noise)'s"
    assert torch.equal(captured["ids_restore"], torch.argsort(ids_shuffle, dim=1))
    with torch.no_grad():
        target = model.patchify(imgs)
        if a.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6) ** .5
        check = (((pred - target) ** 2).mean(dim=-1) * mask).sum() / mask.sum()
    assert check.item() == loss_value, (check.item(), loss_value)

    tensors["input.imgs"] = imgs
    tensors["input.noise"] = noise
    tensors["output.latent"] = captured["latent"].detach()
    tensors["output.pred"] = pred.detach()
    tensors["output.mask"] = mask.detach()
    tensors["output.target"] = target
    tensors["output.ids_restore"] = captured["ids_restore"]
    for k, v in model.state_dict().items():
        tensors["after." + k] = v.detach().clone()

    commit = official_commit(a.official, a.official_commit)

    write_safetensors(a.out + ".safetensors", tensors)
    spec = {
        "recipe": "mae",
        "name": a.name or a.out.rsplit("/", 1)[-1],
        "image_size": a.image_size, "patch": a.patch, "in_chans": 3,
        "width": a.width, "depth": a.depth, "heads": a.heads,
        "dec_width": a.dec_width, "dec_depth": a.dec_depth, "dec_heads": a.dec_heads,
        "mlp_ratio": a.mlp_ratio, "eps": eps, "qkv_bias": True,
        "batch": a.batch, "mask_ratio": a.mask_ratio, "num_patches": L, "len_keep": len_keep,
        "norm_pix_loss": a.norm_pix_loss, "norm_pix_eps": 1e-6,
        "lr": a.lr, "wd": a.wd, "betas": list(betas), "adam_eps": adam_eps, "seed": a.seed,
        "loss": loss_value,
        "loss_desc": "mean over removed patches (mask 1) of the per-patch mean squared error of pred against target",
        "no_weight_decay": no_decay,
        "weight_decay": decay,
        "frozen": frozen,
        "torch_version": torch.__version__,
        "timm_version": timm.__version__,
        "numpy_version": np.__version__,
        "official": "facebookresearch/mae",
        "official_commit": commit,
        "generator": "scripts/make-mae-parity-fixture.py",
        "tensors": {
            "init": "model.state_dict() before the step (official key names)",
            "input": "imgs [N,3,H,W]; noise [N,L], random_masking's torch.rand (keep = argsort(noise)[:, :len_keep])",
            "output": "latent [N,1+len_keep,width] = forward_encoder's (cls, then kept tokens in ascending-noise order, after norm); "
                      "pred [N,L,p*p*3]; mask [N,L] (1 = removed); target [N,L,p*p*3] (patchified 'nchpwq->nhwpqc', "
                      "per-patch normalised with unbiased var when norm_pix_loss); ids_restore [N,L] I64",
            "grad": "gradients of the loss (parameters with requires_grad)",
            "after": "model.state_dict() after one AdamW step",
        },
        "notes": "the key slice [D:2D] of every attn.qkv.bias has a mathematically zero gradient (softmax ignores a "
                 "per-query constant); its recorded gradient is rounding noise (~1e-10), which AdamW's first step "
                 "(update ~ lr*g/(|g|+eps)) turns into changes of up to ~1e-4 that depend on summation order and "
                 "thread count: compare that slice of grad.*/after.* loosely. Other after.* entries with tiny "
                 "gradients move by ~1e-6 between thread counts.",
    }
    with open(a.out + ".json", "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    print(f"wrote {a.out}.safetensors ({len(tensors)} tensors) and {a.out}.json; loss {loss_value:.6f}")


if __name__ == "__main__":
    main()
