#!/usr/bin/env python3
"""Times the I-JEPA training step as the official PyTorch code runs it, for comparison with
`ijepa bench step` on the same machine and configuration.

The model and step below follow the official facebookresearch/ijepa code path
(`src/models/vision_transformer.py`, `src/train.py`): explicit softmax attention, fused qkv,
pre-norm blocks, no CLS token, predictor with mask tokens, smooth-L1 against the layer-normed
target encoder, AdamW with the four parameter groups, EMA. Masks come from a multi-block
sampler with the official shapes. Random images (no data loading), like `ijepa bench step`.

Usage (with the project venv): .venv/bin/python scripts/bench_official.py --batch 64 --precision bf16
Prints one line in the same format as `ijepa bench step`.
"""
import argparse, math, time
import torch, torch.nn as nn, torch.nn.functional as F

PRESETS = {"vit-tiny": (192, 12, 3), "vit-small": (384, 12, 6), "vit-base": (768, 12, 12)}


class Attention(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.scale = (d // h) ** -0.5
        s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d)

    def forward(s, x):
        B, N, C = x.shape
        qkv = s.qkv(x).reshape(B, N, 3, s.h, C // s.h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = ((q @ k.transpose(-2, -1)) * s.scale).softmax(dim=-1)
        return s.proj((a @ v).transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__()
        s.norm1 = nn.LayerNorm(d, eps=1e-6); s.attn = Attention(d, h)
        s.norm2 = nn.LayerNorm(d, eps=1e-6)
        s.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(s, x):
        x = x + s.attn(s.norm1(x))
        return x + s.mlp(s.norm2(x))


def apply_masks(x, masks):
    return torch.cat([torch.gather(x, 1, m.unsqueeze(-1).repeat(1, 1, x.size(-1))) for m in masks], 0)


class Encoder(nn.Module):
    def __init__(s, size, patch, d, depth, h):
        super().__init__()
        n = (size // patch) ** 2
        s.proj = nn.Conv2d(3, d, patch, patch)
        s.pos_embed = nn.Parameter(torch.zeros(1, n, d), requires_grad=False)
        s.blocks = nn.ModuleList([Block(d, h) for _ in range(depth)]); s.norm = nn.LayerNorm(d, eps=1e-6)

    def forward(s, x, masks=None):
        x = s.proj(x).flatten(2).transpose(1, 2) + s.pos_embed
        if masks is not None:
            x = apply_masks(x, masks)
        for b in s.blocks:
            x = b(x)
        return s.norm(x)


class Predictor(nn.Module):
    def __init__(s, n, d, dp, depth, h):
        super().__init__()
        s.embed = nn.Linear(d, dp); s.mask_token = nn.Parameter(torch.zeros(1, 1, dp))
        s.pos = nn.Parameter(torch.zeros(1, n, dp), requires_grad=False)
        s.blocks = nn.ModuleList([Block(dp, h) for _ in range(depth)])
        s.norm = nn.LayerNorm(dp, eps=1e-6); s.proj = nn.Linear(dp, d)

    def forward(s, x, masks_x, masks):
        B = len(x) // len(masks_x)
        x = s.embed(x)
        pos = s.pos.repeat(B, 1, 1)
        x = x + apply_masks(pos, masks_x)
        n_ctx = x.shape[1]
        pe = apply_masks(pos, masks)
        t = s.mask_token.repeat(pe.size(0), pe.size(1), 1) + pe
        x = torch.cat([x.repeat(len(masks), 1, 1), t], 1)
        for b in s.blocks:
            x = b(x)
        return s.proj(s.norm(x)[:, n_ctx:])


def sample_masks(g, batch, n_tgt, min_keep):
    # official shapes: targets ~15-20% of the grid, aspect 0.75-1.5; context 85-100% minus targets
    r = torch.rand(1).item()
    area = int(g * g * (0.15 + 0.05 * r)); a = 0.75 + 0.75 * r
    h = min(int(round(math.sqrt(area * a))), g - 1); w = min(int(round(math.sqrt(area / a))), g - 1)
    ctx_side = g - 1
    tg, cx = [], []
    for _ in range(batch):
        keep = torch.ones(g, g, dtype=torch.bool); ts = []
        for _ in range(n_tgt):
            t0, l0 = torch.randint(0, g - h, (1,)).item(), torch.randint(0, g - w, (1,)).item()
            m = torch.zeros(g, g, dtype=torch.bool); m[t0:t0 + h, l0:l0 + w] = True
            keep &= ~m; ts.append(m.flatten().nonzero().squeeze(1))
        c = torch.zeros(g, g, dtype=torch.bool); c[:ctx_side, :ctx_side] = True
        c &= keep
        cx.append(c.flatten().nonzero().squeeze(1)); tg.append(ts)
    kt = min(len(t) for ts in tg for t in ts); kc = max(min(len(c) for c in cx), min_keep + 1)
    masks_pred = [torch.stack([ts[j][:kt] for ts in tg]) for j in range(n_tgt)]
    masks_enc = [torch.stack([c[:kc] if len(c) >= kc else torch.arange(kc) for c in cx])]
    return masks_enc, masks_pred


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="vit-tiny"); p.add_argument("--patch", type=int, default=4)
    p.add_argument("--size", type=int, default=32); p.add_argument("--batch", type=int, default=64)
    p.add_argument("--pred-depth", type=int, default=4); p.add_argument("--pred-width", type=int, default=96)
    p.add_argument("--targets", type=int, default=4); p.add_argument("--precision", default="fp32")
    p.add_argument("--steps", type=int, default=20); p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, depth, h = PRESETS[a.preset]
    g = a.size // a.patch
    enc = Encoder(a.size, a.patch, d, depth, h); tgt = Encoder(a.size, a.patch, d, depth, h)
    tgt.load_state_dict(enc.state_dict())
    for q in tgt.parameters():
        q.requires_grad = False
    pred = Predictor(g * g, d, a.pred_width, a.pred_depth, h)
    groups = [
        {"params": [q for n, q in enc.named_parameters() if "bias" not in n and q.ndim != 1]},
        {"params": [q for n, q in pred.named_parameters() if "bias" not in n and q.ndim != 1]},
        {"params": [q for n, q in enc.named_parameters() if "bias" in n or q.ndim == 1], "weight_decay": 0},
        {"params": [q for n, q in pred.named_parameters() if "bias" in n or q.ndim == 1], "weight_decay": 0},
    ]
    opt = torch.optim.AdamW(groups, lr=1e-3, weight_decay=0.04)
    imgs = torch.randn(a.batch, 3, a.size, a.size)
    bf16 = a.precision == "bf16"
    times = []
    for i in range(a.warmup + a.steps):
        me, mp = sample_masks(g, a.batch, a.targets, 4)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            with torch.no_grad():
                hh = tgt(imgs); hh = F.layer_norm(hh, (hh.size(-1),)); hh = apply_masks(hh, mp)
            z = pred(enc(imgs, me), me, mp)
            loss = F.smooth_l1_loss(z, hh)
        loss.backward(); opt.step(); opt.zero_grad()
        with torch.no_grad():
            for q, k in zip(enc.parameters(), tgt.parameters()):
                k.data.mul_(0.996).add_((1 - 0.996) * q.detach().data)
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
    n = sum(p.numel() for p in enc.parameters() if p.requires_grad) + sum(p.numel() for p in pred.parameters() if p.requires_grad)
    mean = sum(times) / len(times); std = (sum((t - mean) ** 2 for t in times) / len(times)) ** 0.5
    print(f"bench step (official pytorch) preset={a.preset} patch={a.patch} size={a.size} batch={a.batch} "
          f"pred_depth={a.pred_depth} pred_width={a.pred_width} targets={a.targets} precision={a.precision} "
          f"device=cpu_({torch.get_num_threads()}_threads) params={n / 1e6:.2f}M steps={a.steps} "
          f"ms_per_step={mean * 1e3:.2f} ms_std={std * 1e3:.2f} img_per_s={a.batch / mean:.1f}")


if __name__ == "__main__":
    main()
