#!/usr/bin/env python3
"""Times the official I-JEPA training step: the code of facebookresearch/ijepa itself, imported
from a checkout given on the command line (nothing is downloaded). Used by
scripts/bench-official.sh, which runs it alternately with `ijepa bench step` on the same
configuration and threads; it can also run alone.

What runs is the official code path, not a re-implementation: `src.helper.init_model` (the
`vit_*` encoder and `vit_predictor`, their weight initialisation), `src.helper.init_opt` (AdamW
with its four parameter groups, the lr / wd schedulers), `src.masks.multiblock.MaskCollator`
(the multi-block masks) and the body of `train_step` in `src/train.py` (scheduler steps, target
forward with layer norm + apply_masks + repeat_interleave_batch, context encoder + predictor,
smooth L1, backward, AdamW step, grad_logger, zero_grad, EMA update). Two departures, both
needed to time the step alone and on a CPU:
  - the masks of every step are collated before its timer starts (as `ijepa bench step` does),
    and the images are random (no data loading), like `ijepa bench step`;
  - bf16 autocast uses `torch.autocast(device_type=<the device>)`: the official
    `torch.cuda.amp.autocast` is the same thing on CUDA and a no-op on a CPU (where it would time
    fp32 under the name bf16). The official GradScaler is kept on CUDA; on a CPU it is absent
    (torch disables it there anyway).

Prints one line in the format of `ijepa bench step`, with the peak resident memory of the
process (`peak_rss_mb`, after the timed steps) and, on CUDA, the peak allocated GPU memory.

    python scripts/bench_official_step.py OFFICIAL_CHECKOUT --preset vit-tiny --patch 4 \
        --size 32 --batch 64 --pred-depth 4 --pred-width 96 --precision fp32 --threads 2

needs: torch (the project venv's) and numpy (the official vision_transformer.py imports it).
"""
import argparse
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

PRESETS = {"vit-tiny": "vit_tiny", "vit-small": "vit_small", "vit-base": "vit_base",
           "vit-large": "vit_large", "vit-huge": "vit_huge", "vit-giant": "vit_giant"}


def bf16_native(dev):
    if dev.type == "cuda":
        return torch.cuda.get_device_capability(dev)[0] >= 8
    flags = open("/proc/cpuinfo").read()
    return " amx_bf16" in flags or " avx512_bf16" in flags


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("official", help="a checkout of facebookresearch/ijepa")
    ap.add_argument("--preset", default="vit-tiny", choices=sorted(PRESETS))
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--pred-depth", type=int, default=4)
    ap.add_argument("--pred-width", type=int, default=96)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--min-keep", type=int, default=4)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--products", default="blas", choices=["auto", "blas", "onednn"],
                    help="kernel of the dense layers' products on a CPU: blas (nn.Linear as it is: the official "
                         "code; `auto` means the same here) or onednn (nn.Linear computed as ijepa's 1x1 "
                         "convolution over a channels-last view, to compare both codes on the same kernel)")
    ap.add_argument("--profile", type=int, default=0, metavar="STEPS",
                    help="after the timed steps, profile this many more (torch.profiler, CPU) and print "
                         "the time in matrix products (mm, addmm, bmm, baddbmm, and the convolutions) against the whole step: "
                         "the floor any implementation with the same kernels and FLOPs stays above")
    a = ap.parse_args()
    sys.path.insert(0, a.official)
    try:
        from src.helper import init_model, init_opt
        from src.masks.multiblock import MaskCollator
        from src.masks.utils import apply_masks
        from src.utils.logging import grad_logger
        from src.utils.tensors import repeat_interleave_batch
    except ImportError as e:
        sys.exit(f"error: cannot import the official code from {a.official!r} ({e}); "
                 "give a checkout of facebookresearch/ijepa and install numpy into this Python")
    import copy
    import logging
    import warnings
    # train_step's own `float(loss)` on a tensor that requires grad warns once; it is the official code
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")
    logging.getLogger().setLevel(logging.WARNING)  # init_model logs the whole encoder at INFO

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.products == "onednn":
        torch.nn.Linear.forward = linear_as_convolution
    torch.manual_seed(a.seed)
    if a.device == "auto":
        dev = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"error: device {a.device} asked for, but this torch sees no CUDA device")
    bf16 = {"auto": bf16_native(dev), "fp32": False, "bf16": True}[a.precision]

    encoder, predictor = init_model(device=dev, patch_size=a.patch, model_name=PRESETS[a.preset],
                                    crop_size=a.size, pred_depth=a.pred_depth, pred_emb_dim=a.pred_width)
    target_encoder = copy.deepcopy(encoder)
    for p in target_encoder.parameters():
        p.requires_grad = False
    ipe = 1000
    optimizer, scaler, scheduler, wd_scheduler = init_opt(
        encoder=encoder, predictor=predictor, iterations_per_epoch=ipe, start_lr=2e-4, ref_lr=1e-3,
        warmup=40, num_epochs=300, wd=0.04, final_wd=0.4, final_lr=1e-6,
        use_bfloat16=bf16 and dev.type == "cuda", ipe_scale=1.25)
    momentum_scheduler = iter(0.996 + i * (1.0 - 0.996) / (ipe * 300 * 1.25) for i in range(int(ipe * 300 * 1.25) + 1))
    collator = MaskCollator(input_size=a.size, patch_size=a.patch, pred_mask_scale=(0.15, 0.2),
                            enc_mask_scale=(0.85, 1.0), aspect_ratio=(0.75, 1.5), nenc=1, npred=a.targets,
                            allow_overlap=False, min_keep=a.min_keep)
    imgs = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    params = sum(p.numel() for m in (encoder, predictor) for p in m.parameters() if p.requires_grad)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times = []
    prof = None
    total = a.warmup + a.steps + a.profile
    for i in range(total):
        if a.profile and i == a.warmup + a.steps:
            # the profiled steps' masks are sampled first: the collator's own torch calls stay
            # out of the profile, as the timing leaves them out of ms_per_step
            profiled_masks = [collator([(torch.zeros(1), 0)] * a.batch)[1:] for _ in range(a.profile)]
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            prof.__enter__()
            t_prof = time.perf_counter()
        if prof is not None:
            masks_enc, masks_pred = profiled_masks[i - a.warmup - a.steps]
        else:
            _, masks_enc, masks_pred = collator([(torch.zeros(1), 0)] * a.batch)
        masks_enc = [u.to(dev, non_blocking=True) for u in masks_enc]
        masks_pred = [u.to(dev, non_blocking=True) for u in masks_pred]
        sync()
        t0 = time.perf_counter()

        # ---- the body of train_step in src/train.py ----
        _new_lr = scheduler.step()
        _new_wd = wd_scheduler.step()

        def forward_target():
            with torch.no_grad():
                h = target_encoder(imgs)
                h = F.layer_norm(h, (h.size(-1),))
                B = len(h)
                h = apply_masks(h, masks_pred)
                h = repeat_interleave_batch(h, B, repeat=len(masks_enc))
                return h

        def forward_context():
            z = encoder(imgs, masks_enc)
            z = predictor(z, masks_enc, masks_pred)
            return z

        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            h = forward_target()
            z = forward_context()
            loss = F.smooth_l1_loss(z, h)  # AllReduce.apply is the identity on one process
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        grad_stats = grad_logger(encoder.named_parameters())
        optimizer.zero_grad()
        with torch.no_grad():
            m = next(momentum_scheduler)
            for param_q, param_k in zip(encoder.parameters(), target_encoder.parameters()):
                param_k.data.mul_(m).add_((1. - m) * param_q.detach().data)
        _ = float(loss)
        # ----
        sync()
        if a.warmup <= i < a.warmup + a.steps:
            times.append(time.perf_counter() - t0)
    if prof is not None:
        wall = time.perf_counter() - t_prof
        prof.__exit__(None, None, None)
        gemm = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution", "aten::convolution_backward")
        rows = prof.key_averages()
        gemm_us = sum(r.self_cpu_time_total for r in rows if r.key in gemm)
        all_us = sum(r.self_cpu_time_total for r in rows)
        print(f"profile of {a.profile} steps (the profiler's own overhead included): {wall / a.profile * 1e3:.1f} ms/step; "
              f"matrix products {gemm_us / a.profile / 1e3:.1f} ms/step = {100 * gemm_us / max(all_us, 1):.1f}% of the ops' "
              f"self time; speed-up ceiling with the same products: {all_us / max(gemm_us, 1):.2f}x", flush=True)
        print(rows.table(sort_by="self_cpu_time_total", row_limit=15), flush=True)

    mean = statistics.fmean(times)
    std = statistics.pstdev(times)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    gpu = f" gpu_peak_mb={torch.cuda.max_memory_allocated(dev) / 2**20:.0f}" if dev.type == "cuda" else ""
    print(f"official step preset={a.preset} patch={a.patch} size={a.size} batch={a.batch} "
          f"pred_depth={a.pred_depth} pred_width={a.pred_width} targets={a.targets} "
          f"precision={'bf16' if bf16 else 'fp32'} products={'onednn' if a.products == 'onednn' else 'blas'} "
          f"device={dev} threads={torch.get_num_threads()} "
          f"params={params / 1e6:.2f}M steps={a.steps} ms_per_step={mean * 1e3:.2f} ms_std={std * 1e3:.2f} "
          f"img_per_s={a.batch / mean:.1f} peak_rss_mb={rss_mb:.0f}{gpu}", flush=True)


def linear_as_convolution(self, x):
    """nn.Linear's forward as ijepa's oneDNN path (engine/src/model/linear.rs): the rows as 16
    images of M/16 x 1 pixels, channels-last (no copy), and the weight as 1x1 filters; rows not in
    groups of 16 are one image where torch has more than one thread, else plain `linear`."""
    k = x.shape[-1]
    m = x.numel() // max(k, 1)
    if x.device.type != "cpu" or m == 0 or (m % 16 and torch.get_num_threads() == 1):
        return torch.nn.functional.linear(x, self.weight, self.bias)
    g = 16 if m % 16 == 0 else 1
    y = torch.nn.functional.conv2d(x.reshape(g, m // g, 1, k).permute(0, 3, 1, 2), self.weight.view(-1, k, 1, 1), self.bias)
    return y.permute(0, 2, 3, 1).reshape(*x.shape[:-1], self.weight.shape[0])


if __name__ == "__main__":
    main()
