#!/usr/bin/env python3
"""PyTorch twin of bench/bench_gpu_train.cpp: the same model and train step on CUDA.

Model: pre-norm GPT with LayerNorm (no bias), GELU (tanh) MLP of 4d, learned positions, tied
input/output embeddings, no biases anywhere. Step: forward, mean cross-entropy, backward,
clip_grad_norm_(1.0), AdamW (lr 3e-4, weight decay 0.1 on tensors with dim >= 2), zero_grad, and
loss.item() (the host reads the loss each step, as lmlab's benchmark does). Weights need not match
lmlab's; only the architecture and FLOPs do. Attention is F.scaled_dot_product_attention
(is_causal=True) at every precision. Prints one "RESULT ..." line per config and mode (with
precision= and the peak memory of that run, torch.cuda.max_memory_allocated, as peak_gb=), parsed
by scripts/gpu_check.sh.

--precision (default fp32; `--tf32 0|1` is kept as another spelling of fp32|tf32):
  fp32  full fp32 GEMMs, the plain AdamW (foreach), as before;
  tf32  the same with TF32 allowed for matmuls and cuDNN;
  bf16  PyTorch's best practice, nanoGPT's setting: forward and loss under
        torch.autocast("cuda", dtype=torch.bfloat16) (the flash SDPA kernels then run in bf16),
        backward outside it, fp32 parameters, AdamW(fused=True), TF32 allowed for what stays fp32.

    python3 tools/bench_torch_gpu.py [--config all|gpt2s|tiny|default|nanogpt_cpu]
                                     [--mode eager|compile|both] [--steps 20] [--warmup 5]
                                     [--batch B] [--block-size T] [--precision fp32|tf32|bf16]
                                     [--profile N]
"""
import argparse
import contextlib
import gc
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {  # name: (n_layer, n_embd, n_head, block_size, vocab_size, batch), as the C++ bench
    "tiny": (2, 32, 4, 16, 65, 4),
    "default": (3, 96, 4, 64, 65, 12),
    "nanogpt_cpu": (4, 128, 4, 64, 65, 12),
    "gpt2s": (12, 768, 12, 1024, 50304, 8),
}
PEAK_FP32 = 67e12     # H200 SXM dense FP32 (NVIDIA datasheet)
PEAK_TF32 = 494.7e12  # H200 SXM dense TF32 tensor cores
PEAK_BF16 = 989.4e12  # H200 SXM dense BF16 tensor cores (datasheet: 1,979 with sparsity, half dense)
PEAKS = {"fp32": PEAK_FP32, "tf32": PEAK_TF32, "bf16": PEAK_BF16}


class Block(nn.Module):
    def __init__(self, d, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d, bias=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d, bias=False)
        self.fc = nn.Linear(d, 4 * d, bias=False)
        self.fc_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, n_layer, d, n_head, block_size, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList(Block(d, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, bias=False)
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, ids, targets):
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied output embedding
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def flops_per_token(n_layer, d, block_size, params):
    n = params - block_size * d  # without the position table, as the C++ bench
    return 6 * n + 12 * n_layer * block_size * d


def print_profile(name, step, steps):
    """Kernel time of `steps` more steps by torch.profiler, largest self device time first: the
    counterpart of bench_gpu_train --profile."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    table = None
    for key in ("self_device_time_total", "self_cuda_time_total"):  # the name changed in 2.x
        try:
            table = prof.key_averages().table(sort_by=key, row_limit=20)
            break
        except Exception:  # noqa: BLE001 (an unknown sort key in this version: try the other)
            continue
    print(f"torch profile {name}: {steps} steps (totals over all of them)")
    print(table if table is not None else "(profiler table unavailable)", flush=True)


def run(name, mode, steps, warmup, batch, precision, profile_steps=0, block_size=0):
    n_layer, d, n_head, T, V, B = CONFIGS[name]
    B = batch or B
    T = block_size or T
    bf16 = precision == "bf16"
    # Peak memory of this run alone: the previous run's model, optimizer and compiled graph freed.
    if mode == "compile":
        # A fresh compile per run: the cache of an earlier run (another config or T) would make
        # dynamo recompile this shape as dynamic rather than specialise it.
        import torch._dynamo as dynamo  # (a plain `import torch._dynamo` would make torch local)
        dynamo.reset()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(1)
    model = GPT(n_layer, d, n_head, T, V).cuda()
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    # bf16 takes the fused AdamW (one kernel for all tensors) as nanoGPT does; fp32/tf32 keep the
    # default (foreach) AdamW of the earlier rows.
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=3e-4,
                            **({"fused": True} if bf16 else {}))
    fwd = torch.compile(model) if mode == "compile" else model
    # Forward and loss under autocast (bf16), backward outside it, as nanoGPT's train.py.
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16
                else contextlib.nullcontext)
    seq = torch.randint(0, V, (B, T + 1), device="cuda")
    ids, targets = seq[:, :T].contiguous(), seq[:, 1:].contiguous()
    times = []
    loss_value = 0.0

    def step():
        nonlocal loss_value
        with autocast():
            loss = fwd(ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_value = loss.item()

    for s in range(warmup + steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    tok_s = B * T / median
    n_params = sum(p.numel() for p in params)
    flops = flops_per_token(n_layer, d, T, n_params) * tok_s
    peak = PEAKS[precision]
    peak_gb = torch.cuda.max_memory_allocated() / 1e9  # since this run's start, compile included
    print(f"{name:12s} torch {mode:7s} {precision.upper()} B={B} T={T} {median * 1e3:.2f} ms/step "
          f"{tok_s:.0f} tok/s MFU {100 * flops / peak:.1f}% of {precision.upper()} peak "
          f"loss {loss_value:.4f} peak mem {peak_gb:.2f} GB")
    # tf32= (kept for older parsers) says whether TF32 was allowed: 1 for bf16 too.
    print(f"RESULT config={name} mode={mode} batch={B} T={T} tok_s={tok_s:.1f} "
          f"ms={median * 1e3:.3f} mfu={flops / peak:.4f} precision={precision} "
          f"tf32={int(precision != 'fp32')} peak_gb={peak_gb:.2f}", flush=True)
    if profile_steps > 0 and mode == "eager":
        try:
            print_profile(name, step, profile_steps)
        except Exception as e:  # noqa: BLE001 (the profile is extra: never lose the result for it)
            print(f"bench_torch_gpu: profile of {name} failed: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="all")
    ap.add_argument("--mode", default="both", choices=["eager", "compile", "both"])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--block-size", type=int, default=0, help="T (and the position table)")
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default=None)
    ap.add_argument("--tf32", type=int, choices=[0, 1], default=0,
                    help="the older spelling of --precision fp32|tf32")
    ap.add_argument("--profile", type=int, default=0, help="eager: kernel table over N more steps")
    a = ap.parse_args()
    precision = a.precision or ("tf32" if a.tf32 else "fp32")
    if not torch.cuda.is_available():
        print("bench_torch_gpu: no CUDA device visible to PyTorch", file=sys.stderr)
        return 1
    tf32 = precision != "fp32"  # bf16: TF32 for the matmuls autocast leaves in fp32, as nanoGPT
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    names = list(CONFIGS) if a.config == "all" else [a.config]
    modes = ["eager", "compile"] if a.mode == "both" else [a.mode]
    for name in names:
        for mode in modes:
            try:
                run(name, mode, a.steps, max(a.warmup, 3 if mode == "compile" else 1), a.batch,
                    precision, a.profile, a.block_size)
            except Exception as e:  # e.g. torch.compile without a working Triton: report, go on
                T = a.block_size or CONFIGS[name][3]
                print(f"RESULT config={name} mode={mode} T={T} precision={precision} "
                      f"tf32={int(precision != 'fp32')} error={type(e).__name__}", flush=True)
                print(f"bench_torch_gpu: {name} {mode}: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
