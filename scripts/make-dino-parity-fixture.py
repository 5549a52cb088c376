#!/usr/bin/env python3
"""One official DINO training step, recorded as a parity fixture.

Runs the official code of facebookresearch/dino (a checkout given on the command line; nothing is
downloaded) on a tiny configuration, in fp32 on CPU (so without autocast and the fp16 scaler):

  * student = utils.MultiCropWrapper(VisionTransformer(...), DINOHead(...)), built as
    main_dino.train_dino builds a ViT (vits.vit_small & co. pass patch_size, embed_dim, depth,
    num_heads, mlp_ratio=4, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6); there is no
    official arch at these sizes, so VisionTransformer is built directly with those keyword
    arguments). drop_path_rate is 0 (main_dino's student default is 0.1), so the step is
    deterministic. The head is DINOHead(width, out_dim, use_bn=False, norm_last_layer=True,
    nlayers=3, hidden_dim, bottleneck_dim). The teacher is the same construction (main_dino's
    teacher has no stochastic depth), then teacher.load_state_dict(student.state_dict()) and
    requires_grad False on all its parameters.
  * dino_loss = main_dino.DINOLoss(out_dim, ncrops, warmup_teacher_temp, teacher_temp,
    warmup_teacher_temp_epochs, nepochs, student_temp, center_momentum). Its update_center calls
    dist.all_reduce, so a gloo process group of world size 1 (file:// rendezvous in a temporary
    folder) is opened for the step. Its `center` buffer (official init: zeros) is set to
    center_std * randn([1, out_dim]) from the input generator, so that centring is exercised.
  * optimizer = torch.optim.AdamW(utils.get_params_groups(student)) (main_dino's default "adamw":
    betas (0.9, 0.999), eps 1e-8); lr is written into every group and weight_decay into group 0
    (the regularized one) only, as train_one_epoch does with its schedules' values.
  * the body of main_dino.train_one_epoch for one step:
        teacher_output = teacher(images[:2]); student_output = student(images)
        loss = dino_loss(student_output, teacher_output, epoch)
        optimizer.zero_grad(); loss.backward()
        param_norms = utils.clip_gradients(student, clip_grad)
        utils.cancel_gradients_last_layer(epoch, student, freeze_last_layer)
        optimizer.step()
        with torch.no_grad(): teacher <- m * teacher + (1 - m) * student   (zip of .parameters())
    (main_dino zips student.module.parameters(): there is no DDP here.)

Writes

    OUT.json          recipe "dino", the configuration, the loss, versions, parameter groups,
                      the clipped parameters, clip_gradients' param_norms
    OUT.safetensors   init.student.<key>, init.teacher.<key>  state_dict()s before the step
                        (official key names: backbone.*, head.mlp.{0,2,4}.*,
                        head.last_layer.weight_g [out_dim,1], head.last_layer.weight_v
                        [out_dim,bottleneck]: nn.utils.weight_norm's parameters, dim 0)
                      init.center [1,out_dim]
                      input.crop0 .. input.crop{ncrops-1}  (2 global [B,3,G,G], then local
                        [B,3,Lc,Lc])
                      output.teacher [2B,out_dim]; output.student [ncrops*B,out_dim]
                      output.teacher_backbone [2B,width], output.student_backbone
                        [ncrops*B,width]: the backbone outputs (cls token after the final norm)
                        as the MultiCropWrapper concatenates them (one backbone call per
                        resolution group, in order)
                      interp.pos_embed_local [1,1+(Lc/p)^2,width]: the initial pos_embed as
                        interpolate_pos_encoding resizes it for the local crops (what the
                        student added to the local tokens)
                      grad_raw.<key>  student gradients right after backward (requires_grad)
                      grad.<key>  after clip_gradients and cancel_gradients_last_layer (keys
                        whose gradient is then None are left out; JSON "no_grad_after_cancel")
                      after.student.<key>, after.teacher.<key>, after.center
                      opt.exp_avg.<key>, opt.exp_avg_sq.<key>  AdamW's moments after the step
                        (the student's; none for a cancelled last layer, which took no step)

The fixtures checked in are

    PYTHONPATH=/var/cache/ijepa/pyextra-mae python scripts/make-dino-parity-fixture.py \
        OFFICIAL_CHECKOUT tests/fixtures/dino-step-tiny --epoch 1 --freeze-last-layer 1
    PYTHONPATH=/var/cache/ijepa/pyextra-mae python scripts/make-dino-parity-fixture.py \
        OFFICIAL_CHECKOUT tests/fixtures/dino-step-frozen --epoch 0 --freeze-last-layer 1

(add --official-commit when the checkout is not a git checkout). In the first the last layer is
trained (epoch >= freeze_last_layer); in the second cancel_gradients_last_layer sets its
gradient to None, so AdamW skips it (no update, no weight decay) and grad.head.last_layer.* is
absent. The teacher temperature is teacher_temp_schedule[epoch] (0.04 at epoch 0, 0.07 at
epoch 1 with the defaults).

needs: torch (the project venv's), numpy, the official checkout. main_dino.py imports torchvision
and PIL at import time: /var/cache/ijepa/pyextra-mae (see make-mae-parity-fixture.py) has
torchvision 0.26 and pillow installed without dependencies, so put it on PYTHONPATH. No official
file is edited; main_dino, utils and vision_transformer are imported from the checkout.
"""
import argparse
import json
import math
import os
import sys
import tempfile
from functools import partial

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from fixture_io import check_inputs, official_commit, write_safetensors


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("official", help="a checkout of facebookresearch/dino")
    ap.add_argument("out", help="output path without extension")
    ap.add_argument("--name", default=None)
    ap.add_argument("--global-size", type=int, default=32, help="side of the global crops (and the ViT's img_size)")
    ap.add_argument("--local-size", type=int, default=16, help="side of the local crops")
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--out-dim", type=int, default=256)
    ap.add_argument("--hidden-dim", type=int, default=128)
    ap.add_argument("--bottleneck-dim", type=int, default=32)
    ap.add_argument("--nlayers", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--local-crops", type=int, default=2, help="number of local crops (2 global crops always)")
    ap.add_argument("--student-temp", type=float, default=0.1)
    ap.add_argument("--warmup-teacher-temp", type=float, default=0.04)
    ap.add_argument("--teacher-temp", type=float, default=0.07)
    ap.add_argument("--warmup-teacher-temp-epochs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4, help="nepochs of DINOLoss's temperature schedule")
    ap.add_argument("--epoch", type=int, default=1, help="the epoch of the recorded step")
    ap.add_argument("--freeze-last-layer", type=int, default=1)
    ap.add_argument("--center-momentum", type=float, default=0.9)
    ap.add_argument("--center-std", type=float, default=0.1, help="init.center = center_std * randn (official: zeros)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.04)
    ap.add_argument("--clip-grad", type=float, default=3.0,
                    help="utils.clip_gradients' per-parameter max norm (main_dino's default; 0: no clipping)")
    ap.add_argument("--momentum", type=float, default=0.996, help="teacher EMA momentum")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--official-commit", default=None,
                    help="the checkout's commit (default: `git -C OFFICIAL rev-parse HEAD`, if it is a git checkout)")
    a = ap.parse_args()
    check_inputs(a.official, "facebookresearch/dino", ["main_dino.py", "vision_transformer.py", "utils.py"], a.out)
    if a.heads < 1 or a.width % a.heads:
        sys.exit(f"--heads {a.heads} must divide --width {a.width}")

    sys.path.insert(0, a.official)
    import torchvision
    import PIL
    import main_dino
    import utils
    import vision_transformer as vits

    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    eps = 1e-6
    betas = (0.9, 0.999)  # torch.optim.AdamW's defaults, which main_dino keeps
    adam_eps = 1e-8
    n_global, ncrops = 2, 2 + a.local_crops
    B, W = a.batch, a.width

    def build(student):
        backbone = vits.VisionTransformer(
            img_size=[a.global_size], patch_size=a.patch, embed_dim=W, depth=a.depth, num_heads=a.heads,
            mlp_ratio=a.mlp_ratio, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=eps),
            drop_path_rate=0.0)
        if student:
            head = vits.DINOHead(W, a.out_dim, use_bn=False, norm_last_layer=True, nlayers=a.nlayers,
                                 hidden_dim=a.hidden_dim, bottleneck_dim=a.bottleneck_dim)
        else:  # main_dino: DINOHead(embed_dim, args.out_dim, args.use_bn_in_head)
            head = vits.DINOHead(W, a.out_dim, False, nlayers=a.nlayers,
                                 hidden_dim=a.hidden_dim, bottleneck_dim=a.bottleneck_dim)
        return utils.MultiCropWrapper(backbone, head)

    student = build(True)
    teacher = build(False)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    student.train(True)
    teacher.train(True)

    tensors = {}
    for k, v in student.state_dict().items():
        tensors["init.student." + k] = v.detach().clone()
    for k, v in teacher.state_dict().items():
        tensors["init.teacher." + k] = v.detach().clone()
    assert student.state_dict().keys() == teacher.state_dict().keys()
    for k in student.state_dict():
        assert torch.equal(tensors["init.student." + k], tensors["init.teacher." + k]), k

    # loss (temperature schedule as in DINOLoss.__init__)
    dino_loss = main_dino.DINOLoss(a.out_dim, ncrops, a.warmup_teacher_temp, a.teacher_temp,
                                   a.warmup_teacher_temp_epochs, a.epochs,
                                   student_temp=a.student_temp, center_momentum=a.center_momentum)
    temp = float(dino_loss.teacher_temp_schedule[a.epoch])

    # main_dino's optimiser
    params_groups = utils.get_params_groups(student)
    optimizer = torch.optim.AdamW(params_groups)
    names = {id(p): n for n, p in student.named_parameters()}
    assert len(optimizer.param_groups) == 2
    regularized = [names[id(p)] for p in optimizer.param_groups[0]["params"]]
    not_regularized = [names[id(p)] for p in optimizer.param_groups[1]["params"]]
    frozen = [n for n, p in student.named_parameters() if not p.requires_grad]
    assert optimizer.param_groups[0]["betas"] == betas and optimizer.param_groups[0]["eps"] == adam_eps
    for i, g in enumerate(optimizer.param_groups):  # what train_one_epoch writes from its schedules
        g["lr"] = a.lr
        if i == 0:  # only the first group is regularized
            g["weight_decay"] = a.wd
    assert optimizer.param_groups[1]["weight_decay"] == 0.0

    # inputs: seeded crops, then the centre, from their own generator
    gen = torch.Generator().manual_seed(a.seed + 1)
    images = [torch.randn(B, 3, a.global_size, a.global_size, generator=gen) for _ in range(n_global)]
    images += [torch.randn(B, 3, a.local_size, a.local_size, generator=gen) for _ in range(a.local_crops)]
    center0 = a.center_std * torch.randn(1, a.out_dim, generator=gen)
    dino_loss.center = center0.clone()
    for i, im in enumerate(images):
        tensors[f"input.crop{i}"] = im
    tensors["init.center"] = center0

    # the initial pos_embed as the student resizes it for the local crops
    with torch.no_grad():
        lp = a.local_size // a.patch
        tokens = torch.zeros(1, 1 + lp * lp, W)
        tensors["interp.pos_embed_local"] = student.backbone.interpolate_pos_encoding(
            tokens, a.local_size, a.local_size).detach().clone()

    captured = {"student": [], "teacher": []}
    hooks = [student.backbone.register_forward_hook(lambda m, i, o: captured["student"].append(o.detach().clone())),
             teacher.backbone.register_forward_hook(lambda m, i, o: captured["teacher"].append(o.detach().clone()))]

    tmp = tempfile.mkdtemp(prefix="dino-fixture-")
    dist.init_process_group(backend="gloo", init_method="file://" + os.path.join(tmp, "rendezvous"),
                            rank=0, world_size=1)
    try:
        # main_dino.train_one_epoch's step, fp32 (no autocast / fp16 scaler)
        teacher_output = teacher(images[:2])  # only the 2 global views pass through the teacher
        student_output = student(images)
        loss = dino_loss(student_output, teacher_output, a.epoch)
        loss_value = loss.item()
        assert math.isfinite(loss_value)
        optimizer.zero_grad()
        loss.backward()
        for k, p in student.named_parameters():
            if p.requires_grad:
                tensors["grad_raw." + k] = p.grad.detach().clone()
        param_norms = None
        if a.clip_grad:
            param_norms = utils.clip_gradients(student, a.clip_grad)
        utils.cancel_gradients_last_layer(a.epoch, student, a.freeze_last_layer)
        no_grad_after_cancel = []
        for k, p in student.named_parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:
                no_grad_after_cancel.append(k)
            else:
                tensors["grad." + k] = p.grad.detach().clone()
        optimizer.step()
        # AdamW's moments after the step (what checks the betas; a cancelled last layer took
        # no step and has none)
        for k, p in student.named_parameters():
            if p in optimizer.state and "exp_avg" in optimizer.state[p]:
                for moment in ("exp_avg", "exp_avg_sq"):
                    tensors["opt.%s.%s" % (moment, k)] = optimizer.state[p][moment].detach().clone()
        # EMA update for the teacher (main_dino: student.module; no DDP here)
        with torch.no_grad():
            m = a.momentum
            for param_q, param_k in zip(student.parameters(), teacher.parameters()):
                param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)
    finally:
        dist.destroy_process_group()
        for h in hooks:
            h.remove()
        try:
            os.remove(os.path.join(tmp, "rendezvous"))
        except OSError:
            pass
        os.rmdir(tmp)

    for k, v in student.state_dict().items():
        tensors["after.student." + k] = v.detach().clone()
    for k, v in teacher.state_dict().items():
        tensors["after.teacher." + k] = v.detach().clone()
    tensors["after.center"] = dino_loss.center.detach().clone()
    tensors["output.teacher"] = teacher_output.detach()
    tensors["output.student"] = student_output.detach()
    assert [t.shape[0] for t in captured["teacher"]] == [n_global * B]
    assert [t.shape[0] for t in captured["student"]] == (
        [n_global * B, a.local_crops * B] if a.local_crops and a.local_size != a.global_size else [ncrops * B])
    tensors["output.teacher_backbone"] = torch.cat(captured["teacher"])
    tensors["output.student_backbone"] = torch.cat(captured["student"])

    # --- checks ---
    # the backbone outputs are what the head consumed
    with torch.no_grad():
        head0 = _init_head(tensors, "init.student.", build(True).head)
        assert torch.allclose(head0(tensors["output.student_backbone"]), student_output, rtol=0, atol=1e-6)
        assert torch.allclose(head0(tensors["output.teacher_backbone"]), teacher_output, rtol=0, atol=1e-6)
    # the loss, recomputed by hand (float64) from the recorded outputs, centre and temperatures
    s = (student_output.detach().double() / a.student_temp).chunk(ncrops)
    q = F.softmax((teacher_output.detach().double() - center0.double()) / temp, dim=-1).chunk(2)
    terms = [torch.sum(-q[iq] * F.log_softmax(s[v], dim=-1), dim=-1).mean()
             for iq in range(2) for v in range(ncrops) if v != iq]
    check = (sum(terms) / len(terms)).item()
    assert abs(check - loss_value) <= 2e-6, (check, loss_value)
    # the centre's EMA
    expect_center = center0 * a.center_momentum + teacher_output.detach().mean(dim=0, keepdim=True) * (1 - a.center_momentum)
    center_err = (expect_center - tensors["after.center"]).abs().max().item()
    assert center_err <= 1e-7, center_err
    # clipping: per parameter, coefficient clip / (norm + 1e-6) applied when < 1
    clipped, unclipped = [], []
    grad_names = [k for k, p in student.named_parameters() if ("grad_raw." + k) in tensors]
    if a.clip_grad:
        assert len(param_norms) == len(grad_names)
        for k, n in zip(grad_names, param_norms):
            g0 = tensors["grad_raw." + k]
            assert abs(g0.norm(2).item() - n) <= 1e-6 * max(1.0, n)
            coef = a.clip_grad / (n + 1e-6)
            (clipped if coef < 1 else unclipped).append(k)
            if "grad." + k in tensors:
                if coef < 1:
                    assert torch.allclose(tensors["grad." + k], g0 * coef, rtol=1e-6, atol=0), k
                else:
                    assert torch.equal(tensors["grad." + k], g0), k
        assert clipped and unclipped, ("--clip-grad should clip some parameters and not others", param_norms)
    # the last layer: frozen (no gradient, untouched by AdamW) or trained
    last_layer_frozen = a.epoch < a.freeze_last_layer
    if last_layer_frozen:
        assert no_grad_after_cancel and all("last_layer" in k for k in no_grad_after_cancel)
        for k in no_grad_after_cancel:
            assert torch.equal(tensors["after.student." + k], tensors["init.student." + k]), k
    else:
        assert not no_grad_after_cancel
    # the EMA: teacher' = m * teacher + (1 - m) * student'
    for k in student.state_dict():
        expect = tensors["init.teacher." + k] * a.momentum + (1 - a.momentum) * tensors["after.student." + k]
        assert torch.allclose(tensors["after.teacher." + k], expect, rtol=0, atol=1e-7), k

    commit = official_commit(a.official, a.official_commit)

    write_safetensors(a.out + ".safetensors", tensors)
    spec = {
        "recipe": "dino",
        "name": a.name or a.out.rsplit("/", 1)[-1],
        "image_size": a.global_size, "global_size": a.global_size, "local_size": a.local_size,
        "patch": a.patch, "in_chans": 3,
        "width": W, "depth": a.depth, "heads": a.heads, "mlp_ratio": a.mlp_ratio, "eps": eps, "qkv_bias": True,
        "drop_path_rate": 0.0,
        "out_dim": a.out_dim, "hidden_dim": a.hidden_dim, "bottleneck_dim": a.bottleneck_dim,
        "nlayers": a.nlayers, "use_bn": False, "norm_last_layer": True,
        "batch": B, "n_global": n_global, "n_local": a.local_crops, "ncrops": ncrops,
        "student_temp": a.student_temp, "teacher_temp": temp,
        "warmup_teacher_temp": a.warmup_teacher_temp, "teacher_temp_final": a.teacher_temp,
        "warmup_teacher_temp_epochs": a.warmup_teacher_temp_epochs, "nepochs": a.epochs,
        "teacher_temp_schedule": [float(t) for t in dino_loss.teacher_temp_schedule],
        "center_momentum": a.center_momentum, "center_init_std": a.center_std,
        "lr": a.lr, "wd": a.wd, "betas": list(betas), "adam_eps": adam_eps,
        "clip_grad": a.clip_grad, "freeze_last_layer": a.freeze_last_layer, "epoch": a.epoch,
        "momentum": a.momentum, "seed": a.seed,
        "loss": loss_value,
        "loss_desc": "DINOLoss: mean over the 2*ncrops-2 pairs (teacher global view iq, student view v != iq) of "
                     "the batch mean of sum(-softmax((teacher - center) / teacher_temp) * "
                     "log_softmax(student / student_temp)); divisions by the f32-rounded temperatures",
        "last_layer_frozen": last_layer_frozen,
        "clipped": clipped,
        "not_clipped": unclipped,
        "param_norms": [[k, n] for k, n in zip(grad_names, param_norms)] if param_norms is not None else None,
        "regularized": regularized,
        "not_regularized": not_regularized,
        "frozen": frozen,
        "no_grad_after_cancel": no_grad_after_cancel,
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "pillow_version": PIL.__version__,
        "numpy_version": np.__version__,
        "official": "facebookresearch/dino",
        "official_commit": commit,
        "generator": "scripts/make-dino-parity-fixture.py",
        "tensors": {
            "init": "init.student.<key> / init.teacher.<key>: state_dict()s before the step (official key names; "
                    "equal); init.center [1,out_dim] = center_std * randn from the input generator (official: zeros)",
            "input": "crop0..crop{ncrops-1}: 2 global crops [B,3,G,G], then the local crops [B,3,Lc,Lc], "
                     "randn from a generator seeded seed+1 (drawn in that order, then init.center)",
            "interp": "pos_embed_local [1,1+(Lc/p)^2,width]: init pos_embed through interpolate_pos_encoding for "
                      "Lc x Lc inputs (cls row unchanged; patch grid bicubic, scale_factor (Lc/p+0.1)/sqrt(N))",
            "output": "teacher [2B,out_dim] = teacher(crops[:2]); student [ncrops*B,out_dim] = student(crops); "
                      "teacher_backbone [2B,width] / student_backbone [ncrops*B,width]: backbone outputs (cls token "
                      "after the final norm), concatenated over the MultiCropWrapper's resolution groups in order",
            "grad_raw": "student gradients right after backward (parameters with requires_grad)",
            "grad": "after utils.clip_gradients and utils.cancel_gradients_last_layer; keys whose gradient is "
                    "None are omitted (no_grad_after_cancel)",
            "after": "after.student.<key> after the AdamW step; after.teacher.<key> after the EMA; after.center "
                     "= center * center_momentum + mean(teacher_output) * (1 - center_momentum)",
        },
        "notes": "head.last_layer is nn.utils.weight_norm(nn.Linear(bottleneck, out_dim, bias=False)) (deprecated "
                 "hook-based weight_norm, FutureWarning under torch 2.11): parameters weight_g [out_dim,1] "
                 "(filled with 1, requires_grad False with norm_last_layer, so in neither optimiser group) and "
                 "weight_v [out_dim,bottleneck] (nn.Linear's default kaiming-uniform init; DINOHead's "
                 "trunc_normal init runs before last_layer exists); weight = weight_g * weight_v / ||row of "
                 "weight_v||. get_params_groups regularizes every parameter that is not a .bias and not 1-D, so "
                 "cls_token [1,1,W], pos_embed [1,1+N,W] and weight_v get weight decay. The EMA also runs over "
                 "weight_g (stays 1). The head normalises with F.normalize(x, dim=-1, p=2) (eps 1e-12) before "
                 "last_layer. As in the MAE fixture, the key slice of every attn.qkv.bias has a mathematically "
                 "zero gradient; compare that slice loosely.",
    }
    with open(a.out + ".json", "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    print(f"teacher_temp {temp}; loss {loss_value:.7f} (by hand {check:.7f}); centre err {center_err:.2e}")
    if param_norms is not None:
        print(f"clip_grad {a.clip_grad}: clipped {len(clipped)} of {len(grad_names)}: {clipped}")
        print("param norms: " + ", ".join(f"{k}={n:.4g}" for k, n in zip(grad_names, param_norms)))
    print(f"last layer frozen: {last_layer_frozen}; no grad after cancel: {no_grad_after_cancel}")
    print(f"wrote {a.out}.safetensors ({len(tensors)} tensors) and {a.out}.json; loss {loss_value:.6f}")


def _init_head(tensors, prefix, h):
    """A fresh head `h` given the recorded init weights, for the output check (a weight_norm module
    cannot be deep-copied)."""
    sd = {k[len(prefix) + len("head."):]: v for k, v in tensors.items() if k.startswith(prefix + "head.")}
    h.load_state_dict(sd)
    return h


if __name__ == "__main__":
    main()
