#!/usr/bin/python3
"""PyTorch twin of lmlab's nn::TransformerLM, and the fixture exporter for the whole-model parity test.

Usage (Debian's interpreter, which has python3-torch; after a build, since the model options come
from `build/lmlab options --json`, the one table of them in nn/options.h):
    /usr/bin/python3 tools/torch_reference.py --out tests/fixtures/torch
    ... --lmlab PATH           another lmlab binary to ask for the table
    ... --options-json FILE    a saved `lmlab options --json` instead (no binary needed)
Every fixture starts from every option's table default, then sets its sizes and the overrides of
CONFIGS below (n_kv_head 0 is resolved to n_head). An option of the table the twin does not
implement stops the export with "model option 'xyz' is not implemented in
tools/torch_reference.py" when a fixture would take it away from its default (IMPLEMENTED, FIXED).

Writes one safetensors file per config below (tests/nn/test_torch_parity.cpp reads them all):
    __metadata__     every model option of the table as a string, by its type (int and real
                     via repr, bool true/false, enum by name), plus "fixture" (the file's stem) and
                     "torch_version"; a reader gives an option a fixture lacks (one added later)
                     its default
    ids, targets     int32 (B, T)
    <param name>     every parameter, named as lmlab's named_parameters() ("blocks.0.attn.wq.weight")
    logits           float32 (B, T, V)
    loss             float32 () -- mean cross-entropy over the B*T tokens
    grad.<name>      d loss / d <param>, for every parameter (float64 noise as 0, see below)
    adamw_losses     float32 (11,) -- 10 torch.optim.AdamW steps on the same batch (a copy of the
                     model): the loss before each step and after the last (see extra_tensors())
    adamw_grad_norms float32 (10,) -- clip_grad_norm_'s norm before clipping, per step
    and in __metadata__ "adamw.lr", "adamw.beta1", "adamw.beta2", "adamw.eps",
    "adamw.weight_decay", "adamw.grad_clip", "adamw.steps" (ADAMW below; decay on dim >= 2 only)

The model is tools/torch_twin.py's TransformerLM (its docstring says how it mirrors nn/); its
names (TransformerLM, Norm, HeadRmsNorm, adamw_groups, ...) can still be imported from here.

Configs: a pairwise covering array over five axes -- every value of every axis meets every value of
every other axis in at least one row (the C++ test re-checks this, so a deleted fixture is noticed):

    name                            placement  norm       n_kv_head  mlp     position
    pre_ln_kv4_gelu_learned         pre        layernorm  4 (MHA)    gelu    learned
    post_rms_kv4_swiglu_rope        post       rmsnorm    4 (MHA)    swiglu  rope
    pre_ln_kv2_swiglu_rope          pre        layernorm  2 (GQA)    swiglu  rope
    post_rms_kv2_gelu_learned       post       rmsnorm    2 (GQA)    gelu    learned
    pre_rms_kv1_gelu_rope           pre        rmsnorm    1 (MQA)    gelu    rope
    post_ln_kv1_swiglu_learned      post       layernorm  1 (MQA)    swiglu  learned
  plus
    deepnorm_ln_kv2_gelu_rope       deepnorm   layernorm  2 (GQA)    gelu    rope
    nobias_untied_pre_ln_kv1_swiglu pre        layernorm  1 (MQA)    swiglu  learned  (bias off, untied head)
    qknorm_pre_rms_kv2_rope         pre        rmsnorm    2 (GQA)    swiglu  rope     (qk_norm)
    qknorm_post_ln_kv4_learned      post       layernorm  4 (MHA)    gelu    learned  (qk_norm)

(Construction: the four binary axes of the two rows sharing an n_kv_head value are complements, and
the three row pairs start from 0000, 0011, 0101, so every pair of binary axes is seen equal and
unequal.) All models: n_embd 32, n_head 4, n_layer 2, vocab 48, block_size 16, B 2, T 8.

Weights are random from a fixed seed, scaled so every part matters (attention is far from uniform,
norm weights and biases are away from 1 and 0): Linear weights N(0, 1/in), embeddings N(0, 0.25^2)
(logits of a few units, loss near 5), biases N(0, 0.1^2), norm weights 1 + N(0, 0.2^2), norm
biases N(0, 0.1^2); a parameter's kind comes from the module that owns it, never from its name.
The draws are float32 (a torch.Generator, named_parameters() order); then the model becomes float64
and the forward, loss, backward and AdamW trajectory run in float64, stored rounded to float32
(lmlab's float32 model lands within 6% of the C++ test's tolerances). A float64 gradient below
NOISE (1e-12) of the model's largest is stored as 0: the gradients zero in theory (the key bias with
learned positions and no QK-norm), whose +-1e-17 noise followed glibc's libm; real gradients of the
fixtures are all above 1.8e-8 of the largest.

Reproducible bytes: before torch is imported the script sets ATEN_CPU_CAPABILITY=default (torch's
non-vectorised CPU kernels: with AVX2 / AVX-512 dispatch the float32 torch.randn fill draws other
last bits) and, on a CPU with AVX2 + FMA, OPENBLAS_CORETYPE=Haswell (the float64 GEMMs); main() sets
one torch thread and deterministic algorithms. With Debian 12's torch 1.13.1, OpenBLAS 0.3.21 and
glibc 2.36 on an AMD EPYC, runs with ATEN_CPU_CAPABILITY avx2 / avx512, OPENBLAS_CORETYPE SkylakeX
/ Zen, 1-2 threads or glibc's non-FMA libm (GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F)
wrote cmp-identical files, all 10 (before the noise flush, the libm variant changed 2 and three
OpenBLAS cores 3). Not checked: an Intel CPU, another torch / OpenBLAS / glibc, or another BLAS behind
torch (the script warns); docs/checkpoint.md ("The PyTorch parity fixtures") says what may differ.
Needs only torch (and the numpy it ships with); the safetensors writer is json + struct here.
"""
import argparse
import copy
import json
import math
import os
import struct
import subprocess



def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# Exporting fixtures: the same kernels on every x86-64 machine, read by torch and OpenBLAS when they
# load. ATEN_CPU_CAPABILITY=default takes torch's non-vectorised paths: with AVX2 dispatch even
# torch.randn draws other numbers (its vectorised normal fill of float32). OPENBLAS_CORETYPE=Haswell
# pins the float64 GEMM kernels (an Intel Xeon would pick SkylakeX, an AMD EPYC Zen = Haswell); they
# need AVX2 and FMA, so a CPU without them keeps its own (and gets a warning in main()). One thread
# and deterministic algorithms are set in main(). Not when imported: tools/bench_torch.py times this
# model and wants the fast kernels.
PINNED_BLAS = {"avx2", "fma"} <= cpu_flags()
if __name__ == "__main__":
    os.environ["ATEN_CPU_CAPABILITY"] = "default"
    if PINNED_BLAS:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"

import torch  # noqa: E402
import torch.nn as tnn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# The twin; its names stay importable from here (tools/recipe_check.py uses them so).
from torch_twin import (Attention, Block, HeadRmsNorm, Mlp, Norm, Rope,  # noqa: E402,F401
                        TransformerLM, adamw_groups, hidden_size)

B, T = 2, 8
# The fixtures' sizes; every other model option keeps its default from the option table.
SIZES = dict(vocab_size=48, block_size=16, n_layer=2, n_head=4, n_kv_head=4, n_embd=32)
# The options this twin implements (TransformerLM below). A table option not here must stay at its
# default in every fixture, or the export stops: a twin without the layer would be a wrong reference.
# (init_std only shapes lmlab's own initialisation: the fixtures hold their weights.)
IMPLEMENTED = {"vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "n_embd", "norm",
               "norm_placement", "mlp", "mlp_multiple_of", "mlp_hidden", "position", "rope_base",
               "norm_eps", "bias", "tie_embeddings", "init_std", "qk_norm"}
# Options the twin implements at one value only, which every fixture takes whatever the table's
# default: the twin has no dropout.
FIXED = {"dropout": 0.0}


def load_options(lmlab, saved_json):
    """The model option table: `lmlab options --json` (or a saved copy of its output)."""
    if saved_json:
        with open(saved_json) as f:
            return json.load(f)
    if not os.path.isfile(lmlab):
        raise SystemExit(f"{lmlab} not found: build lmlab first, or pass --lmlab PATH or "
                         "--options-json FILE (a saved `lmlab options --json`)")
    out = subprocess.run([lmlab, "options", "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def reproducibility_warnings():
    """Why this machine may not write the committed bytes: the float64 GEMMs are pinned only for
    OpenBLAS on a CPU with AVX2 + FMA (see the docstring)."""
    out = []
    if not PINNED_BLAS:
        out.append("this CPU lacks AVX2/FMA: OpenBLAS keeps its own kernels")
    try:
        with open("/proc/self/maps") as f:
            if "openblas" not in f.read():
                out.append("torch's BLAS is not OpenBLAS: OPENBLAS_CORETYPE pins nothing")
    except OSError:
        out.append("no /proc/self/maps: cannot tell which BLAS torch uses")
    return out


def base_config(options):
    """Every option at its table default, then the fixture sizes and FIXED."""
    c = {o["name"]: o["default"] for o in options}
    c.update(SIZES)
    c.update(FIXED)
    return c


def check_implemented(name, c, options):
    """Stops when the config turns on an option this twin does not implement (one it does not know,
    away from the table's default, or one of FIXED at another value), or names no option."""
    for o in options:
        n = o["name"]
        if n in FIXED and c[n] != FIXED[n]:
            raise SystemExit(f"{name}: model option '{n}' = {c[n]!r} is not implemented in "
                             f"tools/torch_reference.py (only {FIXED[n]!r})")
        if n not in IMPLEMENTED and n not in FIXED and c[n] != o["default"]:
            raise SystemExit(f"{name}: model option '{n}' is not implemented in "
                             "tools/torch_reference.py")
    unknown = set(c) - {o["name"] for o in options}
    if unknown:
        raise SystemExit(f"{name}: {sorted(unknown)} are not model options of this lmlab")


# (name, overrides of the base config); see the table in the docstring.
CONFIGS = [
    ("pre_ln_kv4_gelu_learned", dict(norm_placement="pre", norm="layernorm", n_kv_head=4, mlp="gelu", position="learned")),
    ("post_rms_kv4_swiglu_rope", dict(norm_placement="post", norm="rmsnorm", n_kv_head=4, mlp="swiglu", position="rope")),
    ("pre_ln_kv2_swiglu_rope", dict(norm_placement="pre", norm="layernorm", n_kv_head=2, mlp="swiglu", position="rope")),
    ("post_rms_kv2_gelu_learned", dict(norm_placement="post", norm="rmsnorm", n_kv_head=2, mlp="gelu", position="learned")),
    ("pre_rms_kv1_gelu_rope", dict(norm_placement="pre", norm="rmsnorm", n_kv_head=1, mlp="gelu", position="rope")),
    ("post_ln_kv1_swiglu_learned", dict(norm_placement="post", norm="layernorm", n_kv_head=1, mlp="swiglu", position="learned")),
    ("deepnorm_ln_kv2_gelu_rope", dict(norm_placement="deepnorm", norm="layernorm", n_kv_head=2, mlp="gelu", position="rope")),
    ("nobias_untied_pre_ln_kv1_swiglu", dict(norm_placement="pre", norm="layernorm", n_kv_head=1, mlp="swiglu",
                                             position="learned", bias=False, tie_embeddings=False)),
    ("qknorm_pre_rms_kv2_rope", dict(norm_placement="pre", norm="rmsnorm", n_kv_head=2, mlp="swiglu",
                                     position="rope", qk_norm=True)),
    ("qknorm_post_ln_kv4_learned", dict(norm_placement="post", norm="layernorm", n_kv_head=4, mlp="gelu",
                                        position="learned", qk_norm=True)),
]


def randomize(model, gen):
    """Scaled random weights (see the docstring) so every parameter visibly shapes the output. A
    parameter's kind comes from the module that owns it (a norm, a Linear, an embedding), never
    from its name. Drawn in float32 from `gen` in named_parameters() order."""
    kinds = {}
    for module in model.modules():
        for leaf, p in module.named_parameters(recurse=False):
            if isinstance(module, (Norm, HeadRmsNorm)):
                kinds[id(p)] = "norm_" + leaf
            elif isinstance(module, tnn.Embedding):
                kinds[id(p)] = "embedding"
            elif isinstance(module, tnn.Linear):
                kinds[id(p)] = "linear_" + leaf
            else:
                raise SystemExit(f"randomize: no rule for a parameter of {type(module).__name__}")
    with torch.no_grad():
        for _, p in model.named_parameters():
            kind = kinds[id(p)]
            r = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if kind == "norm_weight":
                p.copy_(1 + 0.2 * r)
            elif kind in ("norm_bias", "linear_bias"):
                p.copy_(0.1 * r)
            elif kind == "embedding":
                p.copy_(0.25 * r)
            else:  # Linear weight (out, in)
                p.copy_(r / math.sqrt(p.shape[1]))


def metadata_of(c, options):
    """Every option of the table as a string, by its table type: int and real via repr (a real
    always with its point or exponent), bool as true/false, enum by its choice's name."""
    out = {}
    for o in options:
        v, kind = c[o["name"]], o["type"]
        if kind == "bool":
            out[o["name"]] = "true" if v else "false"
        elif kind == "real":
            out[o["name"]] = repr(float(v))
        elif kind == "int":
            out[o["name"]] = repr(int(v))
        else:
            out[o["name"]] = str(v)
    return out


# The AdamW trajectory stored in every fixture: torch.optim.AdamW with nanoGPT's two parameter
# groups (decay on dim >= 2 only) and global-norm clipping, all steps on the fixture's one batch.
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1, grad_clip=1.0, steps=10)


def extra_tensors(model, c, ids, targets):
    """ADAMW["steps"] AdamW steps on (ids, targets), from a copy of the model (the exported weights
    stay the initial ones). Each step: loss, backward, clip_grad_norm_, step.
    Returns ({name: tensor}, metadata):
        adamw_losses      float32 (steps + 1,): the loss before each step, then after the last
        adamw_grad_norms  float32 (steps,): clip_grad_norm_'s total norm (before clipping) per step
        metadata          "adamw.<key>" for every ADAMW hyper-parameter"""
    h = ADAMW
    m = copy.deepcopy(model)
    opt = torch.optim.AdamW(adamw_groups(m, h["weight_decay"]), lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                            eps=h["eps"], foreach=False)
    losses, norms = [], []
    for step in range(h["steps"] + 1):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(ids).view(-1, c["vocab_size"]), targets.view(-1))
        losses.append(loss.item())
        if step == h["steps"]:
            break
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(m.parameters(), h["grad_clip"])))
        opt.step()
    tensors = {"adamw_losses": torch.tensor(losses, dtype=torch.float32),
               "adamw_grad_norms": torch.tensor(norms, dtype=torch.float32)}
    return tensors, {"adamw." + k: repr(v) for k, v in h.items()}


DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int32: ("I32", "<i4")}


def write_safetensors(path, tensors, metadata):
    """8-byte little-endian header length, JSON header padded with spaces to 8 bytes, raw data."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype, _ = DTYPES[t.dtype]
        data = t.numpy().tobytes() if t.dim() else t.reshape(1).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


# A float64 gradient below this fraction of the model's largest is rounding noise, stored as 0: the
# gradients that are zero in theory (the key bias when nothing position-dependent acts on k: softmax
# ignores a per-row shift) come out as +-1e-17 noise whose bits follow the libm variant (glibc picks
# exp/log/tanh by CPU features), while every real gradient of the fixtures is above 1e-8 of the max.
NOISE = 1e-12


def flush_noise(grads):
    """{name: float64 grad} with every |value| <= NOISE * (the largest |value| of all) set to 0."""
    limit = NOISE * max(float(g.abs().max()) for g in grads.values())
    return {n: torch.where(g.abs() <= limit, torch.zeros_like(g), g) for n, g in grads.items()}


def export(name, c, options, seed, out_dir):
    """One fixture: weights drawn in float32, then everything computed in float64 (forward, loss,
    backward, the AdamW trajectory) and stored rounded to float32 (gradients' noise as 0)."""
    gen = torch.Generator().manual_seed(seed)
    model = TransformerLM(c)
    randomize(model, gen)
    ids = torch.randint(0, c["vocab_size"], (B, T), generator=gen)
    targets = torch.randint(0, c["vocab_size"], (B, T), generator=gen)
    model.double()
    logits = model(ids)
    loss = F.cross_entropy(logits.view(-1, c["vocab_size"]), targets.view(-1))
    loss.backward()
    tensors = {"ids": ids.int(), "targets": targets.int(), "logits": logits.float(), "loss": loss.float()}
    grads = flush_noise({pname: p.grad for pname, p in model.named_parameters()})
    for pname, p in model.named_parameters():
        tensors[pname] = p.float()
        tensors["grad." + pname] = grads[pname].float()
    extra, extra_meta = extra_tensors(model, c, ids, targets)
    tensors.update(extra)
    meta = metadata_of(c, options)
    meta.update(extra_meta)
    meta.update(fixture=name, torch_version=torch.__version__)
    path = os.path.join(out_dir, name + ".safetensors")
    write_safetensors(path, tensors, meta)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/torch", help="output folder")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--lmlab", default=os.path.join(os.path.dirname(__file__), "..", "build", "lmlab"),
                    help="the lmlab binary whose `lmlab options --json` gives the option table")
    ap.add_argument("--options-json", help="a saved `lmlab options --json` output instead")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for w in reproducibility_warnings():
        print(f"warning: {w}; the fixtures' last bits may differ from the committed ones")
    options = load_options(args.lmlab, args.options_json)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for i, (name, overrides) in enumerate(CONFIGS):
        c = dict(base_config(options), **overrides)
        check_implemented(name, c, options)
        if c["n_kv_head"] == 0:
            c["n_kv_head"] = c["n_head"]
        path = export(name, c, options, args.seed + i, args.out)
        size = os.path.getsize(path)
        total += size
        print(f"{path}: {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
