"""PyTorch twin of lmlab's nn::TransformerLM: the model the parity fixtures come from
(tools/torch_reference.py), timed by tools/bench_torch.py and trained by tools/recipe_check.py.

A model is built from a config dict holding every model option of `lmlab options --json` (the one
table of them in nn/options.h), n_kv_head resolved (never 0); its named_parameters() are lmlab's
("blocks.0.attn.wq.weight"). It mirrors nn/ exactly:
    LayerNorm   (x - mean) / sqrt(var_biased + eps) * w + b
    RMSNorm     x * rsqrt(mean(x^2) + eps) * w                 (no bias)
    pre         x = x + attn(norm1(x)); x = x + mlp(norm2(x)); final norm_f before the head
    post        x = norm1(x + attn(x)); x = norm2(x + mlp(x)); no final norm
    deepnorm    x = norm1(a x + attn(x)); x = norm2(a x + mlp(x)), a = (2 n_layer)^(1/4); no final norm
    attention   wq, wk, wv, wo Linear ((out, in) weights); GQA: kv head h // (NH / KVH)
                (repeat_interleave); scores q k^T / sqrt(HS), causal mask, softmax
    rope        half-split rotate_half, theta_i = base^(-2i/HS), cos/sin in float64 then float32,
                applied to q and k after the projections
    mlp         gelu: proj(gelu_tanh(fc x)); swiglu: w2(silu(w1 x) * w3 x), hidden as
                ModelConfig::hidden_size()
    head        tied to wte (logits = h wte^T) unless tie_embeddings is false (lm_head, no bias)
    qk_norm     RMSNorm over the head dim of q and k (one weight of head size each), after the
                projections and before RoPE (nn/qk_norm.cpp)
    dropout     none (tools/torch_reference.py's FIXED)
Plus adamw_groups(), nanoGPT's two AdamW parameter groups. Importing this module sets no
environment: the pinned kernels of the fixture export are tools/torch_reference.py's business.
"""
import math

import torch
import torch.nn as tnn
import torch.nn.functional as F


def hidden_size(c):
    """ModelConfig::hidden_size(): 4d for GELU; int(2 * 4d / 3) rounded up to mlp_multiple_of for SwiGLU."""
    if c["mlp_hidden"] > 0:
        return c["mlp_hidden"]
    if c["mlp"] == "gelu":
        return 4 * c["n_embd"]
    h = 2 * 4 * c["n_embd"] // 3
    m = c["mlp_multiple_of"]
    return (h + m - 1) // m * m


class Norm(tnn.Module):
    """Parameters directly under the norm's name (blocks.0.norm1.weight), as nn::Norm."""

    def __init__(self, c):
        super().__init__()
        self.rms = c["norm"] == "rmsnorm"
        self.eps = c["norm_eps"]
        self.weight = tnn.Parameter(torch.ones(c["n_embd"]))
        self.bias = tnn.Parameter(torch.zeros(c["n_embd"])) if (c["bias"] and not self.rms) else None

    def forward(self, x):
        if self.rms:
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight
        return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)


class HeadRmsNorm(tnn.Module):
    """QK-norm (nn/qk_norm.cpp): RMSNorm over the head dim of q (B, H, T, HS) or k, one weight of
    head size shared by the heads."""

    def __init__(self, c):
        super().__init__()
        self.eps = c["norm_eps"]
        self.weight = tnn.Parameter(torch.ones(c["n_embd"] // c["n_head"]))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Rope:
    """Half-split RoPE; the tables are computed in float64 and cast to float32 (as nn::Rope)."""

    def __init__(self, head_size, max_positions, base):
        i = torch.arange(head_size // 2, dtype=torch.float64)
        theta = base ** (-2.0 * i / head_size)
        angle = torch.arange(max_positions, dtype=torch.float64)[:, None] * theta[None, :]
        self.cos = torch.cos(angle).float().double()  # (max_positions, HS/2), float32 values
        self.sin = torch.sin(angle).float().double()

    def apply(self, x):  # x (B, H, T, HS)
        t = x.shape[-2]
        c, s = self.cos[:t], self.sin[:t]
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)


class Attention(tnn.Module):
    def __init__(self, c):
        super().__init__()
        d, self.nh, self.kvh = c["n_embd"], c["n_head"], c["n_kv_head"]
        self.hs = d // self.nh
        self.wq = tnn.Linear(d, self.nh * self.hs, bias=c["bias"])
        self.wk = tnn.Linear(d, self.kvh * self.hs, bias=c["bias"])
        self.wv = tnn.Linear(d, self.kvh * self.hs, bias=c["bias"])
        self.wo = tnn.Linear(self.nh * self.hs, d, bias=c["bias"])
        if c["qk_norm"]:  # registered after wo, as nn::CausalSelfAttention's plugged layers
            self.q_norm = HeadRmsNorm(c)
            self.k_norm = HeadRmsNorm(c)
        self.qk_norm = c["qk_norm"]

    def forward(self, x, rope):
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.nh, self.hs).transpose(1, 2)
        k = self.wk(x).view(b, t, self.kvh, self.hs).transpose(1, 2)
        v = self.wv(x).view(b, t, self.kvh, self.hs).transpose(1, 2)
        if self.qk_norm:  # after the projections, before RoPE
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = rope.apply(q), rope.apply(k)
        g = self.nh // self.kvh
        k = k.repeat_interleave(g, dim=1)  # query head h reads kv head h // g
        v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.hs)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, self.nh * self.hs)
        return self.wo(y)


class Mlp(tnn.Module):
    def __init__(self, c):
        super().__init__()
        d, h = c["n_embd"], hidden_size(c)
        self.gelu = c["mlp"] == "gelu"
        if self.gelu:
            self.fc = tnn.Linear(d, h, bias=c["bias"])
            self.proj = tnn.Linear(h, d, bias=c["bias"])
        else:  # registration order w1, w3, w2 as nn::Mlp
            self.w1 = tnn.Linear(d, h, bias=c["bias"])
            self.w3 = tnn.Linear(d, h, bias=c["bias"])
            self.w2 = tnn.Linear(h, d, bias=c["bias"])

    def forward(self, x):
        if self.gelu:
            return self.proj(F.gelu(self.fc(x), approximate="tanh"))
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.placement = c["norm_placement"]
        self.alpha = (2.0 * c["n_layer"]) ** 0.25 if self.placement == "deepnorm" else 1.0
        self.norm1 = Norm(c)
        self.attn = Attention(c)
        self.norm2 = Norm(c)
        self.mlp = Mlp(c)

    def forward(self, x, rope):
        if self.placement == "pre":
            x = x + self.attn(self.norm1(x), rope)
            return x + self.mlp(self.norm2(x))
        skip = (lambda t: t) if self.alpha == 1.0 else (lambda t: t * self.alpha)
        x = self.norm1(skip(x) + self.attn(x, rope))
        return self.norm2(skip(x) + self.mlp(x))


class TransformerLM(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.wte = tnn.Embedding(c["vocab_size"], c["n_embd"])
        self.wpe = tnn.Embedding(c["block_size"], c["n_embd"]) if c["position"] == "learned" else None
        self.rope = Rope(c["n_embd"] // c["n_head"], c["block_size"], c["rope_base"]) \
            if c["position"] == "rope" else None
        self.blocks = tnn.ModuleList([Block(c) for _ in range(c["n_layer"])])
        self.norm_f = Norm(c) if c["norm_placement"] == "pre" else None
        self.lm_head = None if c["tie_embeddings"] else tnn.Linear(c["n_embd"], c["vocab_size"], bias=False)

    def forward(self, ids):
        x = self.wte(ids)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(ids.shape[1]))
        for block in self.blocks:
            x = block(x, self.rope)
        if self.norm_f is not None:
            x = self.norm_f(x)
        return self.lm_head(x) if self.lm_head is not None else x @ self.wte.weight.t()



def adamw_groups(model, weight_decay):
    """nanoGPT's configure_optimizers: matrices and embeddings decay, biases and norm gains do not."""
    params = list(model.parameters())
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
