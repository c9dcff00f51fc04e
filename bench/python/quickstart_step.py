#!/usr/bin/env python3
"""The quickstart training step written in plain Python PyTorch: the other side of asg_bench_vs_python.

A faithful replica of what `asg run experiments/quickstart.toml` trains (word_embedding text encoder,
unet3d backbone, temporal_conv, v-prediction on a shifted cosine schedule, AdamW, gradient clipping,
warm-up, EMA) written the way a Python researcher writes it. Two styles:

  idiomatic  the diffusers/ModelScope way: every frame attends to its own copy of the caption tokens
             (`encoder_hidden_states.repeat_interleave(frames)`), the temporal layer is an nn.Conv3d
             with a (3, 1, 1) kernel, torch.optim.AdamW with its defaults (on the CPU a per-tensor loop), a
             per-tensor EMA loop.
  matched    the same structural choices the C++ framework makes (one cross-attention call per clip,
             the temporal conv as a (3, 1) Conv2d, foreach AdamW, one flat EMA update), so the gap that
             remains is the language and the framework, not the algorithm.

It is driven over stdin/stdout by bench/vs_python.cpp, which also hands it the C++ model's initial
weights and a probe batch (a file written with torch::pickle_save) so that the replica can prove it
computes the same function before anything is timed. Commands, one per line:

  check          -> "check out_max_abs_diff=<x> loss=<x> grad_norm=<x>"
  steps N        -> "times <ms> <ms> ..." (N training steps, each timed alone)
  quit
"""
import argparse
import json
import math
import re
import sys
import time

import torch
import torch.jit._pickle  # torch.load of a torch::pickle_save file names its restore_type_tag
import torch.nn as nn
import torch.nn.functional as F


def fnv1a(text: str) -> int:
    h = 1469598103934665603
    for byte in text.encode():
        h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


class WordEmbedding(nn.Module):
    """plugins/text_encoders/word_embedding: hashed words and word n-grams."""

    def __init__(self, dim, buckets, max_tokens, ngrams):
        super().__init__()
        self.buckets, self.max_tokens, self.ngrams, self.dim = buckets, max_tokens, ngrams, dim
        self.embedding = nn.Embedding(buckets + 1, dim, padding_idx=0)
        self.null = nn.Parameter(torch.zeros(dim))

    def terms(self, caption):
        words = [w.lower() for w in re.findall(r"[A-Za-z0-9]+", caption)]
        out = list(words)
        for n in range(2, self.ngrams + 1):
            out += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        return out

    def forward(self, captions):
        ids = [[1 + fnv1a(t) % self.buckets for t in self.terms(c)][: self.max_tokens] for c in captions]
        longest = max([1] + [len(i) for i in ids])
        flat = torch.zeros(len(captions), longest, dtype=torch.long)
        for row, i in enumerate(ids):
            flat[row, : len(i)] = torch.tensor(i, dtype=torch.long)
        mask = flat.ne(0)
        tokens = self.embedding(flat)
        count = mask.sum(1, keepdim=True).to(tokens.dtype)
        mean = tokens.sum(1) / count.clamp_min(1)
        pooled = torch.where(count > 0, mean, self.null.unsqueeze(0).expand(len(captions), self.dim))
        return tokens, mask, pooled


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(groups, cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(math.gcd(groups, cout), cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None].chunk(2, 1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(F.silu(h))
        return (self.skip(x) if self.skip is not None else x) + h


class CrossAttention(nn.Module):
    def __init__(self, channels, text_dim, heads, groups, per_clip):
        super().__init__()
        self.heads, self.per_clip = heads, per_clip
        self.norm = nn.GroupNorm(math.gcd(groups, channels), channels)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_k = nn.Linear(text_dim, channels, bias=False)
        self.to_v = nn.Linear(text_dim, channels, bias=False)
        self.to_out = nn.Linear(channels, channels)

    def forward(self, x, tokens, mask):
        # idiomatic: tokens/mask are per frame ([B*T, L, D]); matched: per clip ([B, L, D]).
        b, c, l = tokens.shape[0], x.shape[1], tokens.shape[1]
        dh = c // self.heads
        n = x.shape[0] // b * x.shape[2] * x.shape[3]
        h = self.norm(x).flatten(2).transpose(1, 2).reshape(b, n, c)
        q = self.to_q(h).view(b, n, self.heads, dh).transpose(1, 2)
        k = self.to_k(tokens).view(b, l, self.heads, dh).transpose(1, 2)
        v = self.to_v(tokens).view(b, l, self.heads, dh).transpose(1, 2)
        scores = q.matmul(k.transpose(-1, -2)) / math.sqrt(dh)
        scores = scores.masked_fill(~mask.view(b, 1, 1, l), -1e9)
        o = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(x.shape[0], x.shape[2] * x.shape[3], c)
        return x + self.to_out(o).transpose(1, 2).reshape(x.shape)


class TemporalConv(nn.Module):
    """The temporal_conv plugin: diffusers' TemporalConvLayer layout (convN = [GroupNorm, SiLU, (Dropout), Conv3d])."""

    def __init__(self, channels, layers, groups, as_conv2d):
        super().__init__()
        self.as_conv2d = as_conv2d
        g = math.gcd(groups, channels)
        for i in range(layers):
            parts = [nn.GroupNorm(math.gcd(g, channels), channels), nn.SiLU()]
            if i > 0:
                parts.append(nn.Dropout(0.0))
            parts.append(nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)))
            setattr(self, f"conv{i + 1}", nn.Sequential(*parts))
        self.layers = layers

    def forward(self, x):
        b, _, t, hh, ww = x.shape
        h = x
        for i in range(1, self.layers + 1):
            layer = getattr(self, f"conv{i}")
            h = F.silu(layer[0](h))
            conv = layer[-1]
            if self.as_conv2d:
                flat = h.reshape(b, h.shape[1], t, hh * ww)
                h = F.conv2d(flat, conv.weight.squeeze(-1), conv.bias, padding=(1, 0)).view(b, -1, t, hh, ww)
            else:
                h = conv(h)
        return x + h


def to_video(x, frames):
    return x.view(-1, frames, x.shape[1], x.shape[2], x.shape[3]).permute(0, 2, 1, 3, 4)


def to_frames(v):
    return v.permute(0, 2, 1, 3, 4).reshape(-1, v.shape[1], v.shape[3], v.shape[4])


class StageBlock(nn.Module):
    def __init__(self, res, attention, temporal):
        super().__init__()
        self.res = res
        if attention is not None:
            self.attention = attention
        self.temporal = temporal

    def forward(self, x, emb, tokens, mask, frames):
        h = self.res(x, emb)
        if hasattr(self, "attention"):
            h = self.attention(h, tokens, mask)
        return to_frames(self.temporal(to_video(h, frames)))


class Unet3d(nn.Module):
    """plugins/backbones/unet3d with its quickstart settings."""

    def __init__(self, cfg, matched):
        super().__init__()
        channels, groups, heads = cfg["channels"], cfg["groups"], cfg["attention_heads"]
        self.frames, self.base, self.matched = cfg["frames"], channels[0], matched
        emb_dim = cfg["emb_dim"] or 4 * self.base
        text_dim = cfg["text_dim"]
        self.time_mlp = nn.Sequential(nn.Linear(self.base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.text_proj = nn.Linear(text_dim, emb_dim)
        self.frame_proj = nn.Linear(self.base, emb_dim)
        self.conv_in = nn.Conv2d(4 + 2, self.base, 3, padding=1)
        tc = cfg["temporal"]

        def stage(level, cin, cout):
            attention = None
            if level >= cfg["attention_from_level"]:
                attention = CrossAttention(cout, text_dim, heads, groups, per_clip=matched)
            temporal = TemporalConv(cout, tc["layers"], tc["groups"], as_conv2d=matched)
            return StageBlock(ResBlock(cin, cout, emb_dim, groups), attention, temporal)

        self.levels = len(channels)
        ch, skips = self.base, []
        for level, c in enumerate(channels):
            self.add_module(f"down{level}_0", stage(level, ch, c))
            ch = c
            skips.append(ch)
            if level + 1 < len(channels):
                self.add_module(f"downsample{level}", nn.Conv2d(ch, ch, 3, stride=2, padding=1))
        self.mid = stage(len(channels) - 1, ch, ch)
        for level in reversed(range(len(channels))):
            self.add_module(f"up{level}_0", stage(level, ch + skips.pop(), channels[level]))
            ch = channels[level]
        self.out_norm = nn.GroupNorm(math.gcd(groups, ch), ch)
        self.conv_out = nn.Conv2d(ch, 4, 3, padding=1)

    def sinusoidal(self, values):
        half = self.base // 2
        freqs = torch.exp(-math.log(10000.0) * (torch.arange(half, dtype=values.dtype) / half))
        args = values[:, None] * freqs[None]
        return torch.cat([torch.sin(args), torch.cos(args)], 1)

    def forward(self, x, t, tokens, mask, pooled):
        b, frames = x.shape[0], self.frames
        emb = self.time_mlp(self.sinusoidal(t)) + self.text_proj(pooled)
        emb = emb.repeat_interleave(frames, 0)
        emb = emb + self.frame_proj(self.sinusoidal(torch.arange(frames, dtype=x.dtype).repeat(b)))
        tokens = torch.cat([tokens, pooled[:, None]], 1)
        mask = torch.cat([mask, torch.ones(b, 1, dtype=torch.bool)], 1)
        if not self.matched:  # diffusers' UNet3DConditionModel: one copy of the caption per frame
            tokens, mask = tokens.repeat_interleave(frames, 0), mask.repeat_interleave(frames, 0)
        h = to_frames(x)
        n, hh, ww = h.shape[0], h.shape[2], h.shape[3]
        ys = torch.linspace(-1, 1, hh).view(1, 1, hh, 1).expand(n, 1, hh, ww)
        xs = torch.linspace(-1, 1, ww).view(1, 1, 1, ww).expand(n, 1, hh, ww)
        h = self.conv_in(torch.cat([h, xs, ys], 1))
        skips = []
        for level in range(self.levels):
            h = getattr(self, f"down{level}_0")(h, emb, tokens, mask, frames)
            skips.append(h)
            if level + 1 < self.levels:
                h = getattr(self, f"downsample{level}")(h)
        h = self.mid(h, emb, tokens, mask, frames)
        for level in reversed(range(self.levels)):
            h = getattr(self, f"up{level}_0")(torch.cat([h, skips.pop()], 1), emb, tokens, mask, frames)
            if level > 0:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.conv_out(F.silu(self.out_norm(h)))
        return to_video(h, frames).contiguous().view(x.shape)


def cosine_alphas_cumprod(timesteps, shift):
    s = 0.008
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * (math.pi / 2)).pow(2)
    abar = f / f[0]
    betas = (1 - abar[1:] / abar[:-1]).clamp_max(0.999)
    abar = torch.cumprod(1 - betas, 0)
    snr = abar / (1 - abar) / (shift * shift)
    return snr / (1 + snr)


class Trainer:
    """core/engine/src/trainer.cpp DiffusionTrainer::step, line for line."""

    def __init__(self, cfg, weights, matched, seed):
        self.text = WordEmbedding(cfg["text_dim"], cfg["buckets"], cfg["max_tokens"], cfg["ngrams"])
        self.unet = Unet3d(cfg, matched)
        load(self.text, weights, "text_encoder.")
        load(self.unet, weights, "backbone.")
        self.cfg, self.matched = cfg, matched
        self.params = list(self.unet.parameters()) + list(self.text.parameters())
        self.ema = [p.detach().clone() for p in self.params]
        self.abar = cosine_alphas_cumprod(cfg["timesteps"], cfg["shift"])
        self.opt = torch.optim.AdamW(self.params, lr=cfg["lr"], weight_decay=0.0, foreach=matched)
        self.generator = torch.Generator().manual_seed(seed)
        self.steps = 0

    def loss(self, x0, captions, t, eps):
        a = self.abar[t].to(torch.float32).view(-1, 1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        tokens, mask, pooled = self.text(captions)
        out = self.unet(x_t, t.to(torch.float32), tokens, mask, pooled)
        return out, F.mse_loss(out, a.sqrt() * eps - (1 - a).sqrt() * x0)

    def step(self, x0, captions):
        cfg, b = self.cfg, x0.shape[0]
        drop = torch.rand(b, generator=self.generator)
        used = ["" if drop[i] < cfg["caption_dropout"] else c for i, c in enumerate(captions)]
        t = torch.randint(0, cfg["timesteps"], (b,), generator=self.generator)
        eps = torch.randn(x0.shape, generator=self.generator)
        _, loss = self.loss(x0, used, t, eps)
        self.opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, cfg["grad_clip"])
        lr = cfg["lr"] * min(1.0, (self.steps + 1) / cfg["warmup_steps"])
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        self.steps += 1
        decay = min(cfg["ema_decay"], (1.0 + self.steps) / (10.0 + self.steps))
        with torch.no_grad():
            if self.matched:
                torch._foreach_mul_(self.ema, decay)
                torch._foreach_add_(self.ema, self.params, alpha=1 - decay)
            else:
                for e, p in zip(self.ema, self.params):
                    e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        return loss.item()


def load(module, weights, prefix):
    """Strict load by the C++ parameter names: the replica must have exactly the same parameters."""
    mine = dict(module.named_parameters())
    theirs = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    if set(mine) != set(theirs):
        raise SystemExit(f"replica and C++ model differ in parameters: only in the replica {sorted(set(mine) - set(theirs))}, "
                         f"only in C++ {sorted(set(theirs) - set(mine))}")
    with torch.no_grad():
        for name, p in mine.items():
            if p.shape != theirs[name].shape:
                raise SystemExit(f"parameter {prefix}{name}: replica shape {tuple(p.shape)}, C++ {tuple(theirs[name].shape)}")
            p.copy_(theirs[name])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange", required=True, help="file written by asg_bench_vs_python (torch::pickle_save)")
    parser.add_argument("--style", choices=["idiomatic", "matched"], default="idiomatic")
    parser.add_argument("--threads", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # torch::pickle_save tags its dict's type with torch.jit._pickle.restore_type_tag, which torch.load's
    # weights-only unpickler (the default since 2.6) accepts only when allowed by name.
    with torch.serialization.safe_globals([torch.jit._pickle.restore_type_tag]):
        blob = torch.load(args.exchange, weights_only=True)
    cfg = json.loads(blob["config"])
    trainer = Trainer(cfg, blob["params"], args.style == "matched", seed=cfg["seed"])
    x0, captions = blob["x0"], list(blob["captions"])
    print(f"ready {sum(p.numel() for p in trainer.params)}", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "check":
            out, loss = trainer.loss(blob["probe_x0"], list(blob["probe_captions"]), blob["probe_t"], blob["probe_eps"])
            loss.backward()
            grad_norm = torch.stack([p.grad.norm() for p in trainer.params]).norm().item()
            trainer.opt.zero_grad()
            diff = (out.detach() - blob["probe_out"]).abs().max().item()
            print(f"check out_max_abs_diff={diff:.3e} loss={loss.item():.9g} grad_norm={grad_norm:.9g}", flush=True)
        elif cmd[0] == "steps":
            times = []
            for _ in range(int(cmd[1])):
                start = time.perf_counter()
                trainer.step(x0, captions)
                times.append((time.perf_counter() - start) * 1e3)
            print("times " + " ".join(f"{t:.3f}" for t in times), flush=True)
        elif cmd[0] == "quit":
            return
        else:
            print(f"error unknown command '{cmd[0]}' (valid: check, steps N, quit)", flush=True)


if __name__ == "__main__":
    main()
