#!/usr/bin/python3
"""Records a five-step torch.optim.AdamW trajectory for tests/optim/test_adamw.cpp.

Usage (Debian's interpreter, which has python3-torch):
    /usr/bin/python3 tools/adamw_reference.py

Two parameters in two groups, as nanoGPT configures them: a 2x2 weight with weight decay and a
3-vector bias without. The gradients are fixed numbers per step; the bias has no gradient at step 3
(grad None), so it skips that step and its own step count lags behind the weight's. The learning
rate changes every step. The trajectory is run in float32 and in float64 and printed as C++
initializer lists to paste into the test.
"""
import torch

LRS = [1e-2, 2e-2, 3e-2, 2e-2, 1e-2]
BETAS, EPS, WD = (0.9, 0.95), 1e-8, 0.1
W0 = [[0.5, -0.3], [0.8, 0.1]]
B0 = [0.2, -0.1, 0.05]
GW = [[[0.1, -0.2], [0.3, -0.05]], [[0.02, 0.4], [-0.3, 0.15]], [[-0.25, 0.05], [0.1, 0.2]],
      [[0.5, -0.1], [-0.05, 0.3]], [[-0.1, 0.2], [0.25, -0.4]]]
GB = [[0.3, -0.1, 0.7], [-0.2, 0.05, 0.1], None, [0.4, -0.3, 0.02], [0.1, 0.1, -0.6]]


def run(dtype):
    w = torch.tensor(W0, dtype=dtype, requires_grad=True)
    b = torch.tensor(B0, dtype=dtype, requires_grad=True)
    opt = torch.optim.AdamW([{"params": [w], "weight_decay": WD}, {"params": [b], "weight_decay": 0.0}],
                            lr=LRS[0], betas=BETAS, eps=EPS, foreach=False)
    ws, bs = [], []
    for k, lr in enumerate(LRS):
        for group in opt.param_groups:
            group["lr"] = lr
        w.grad = torch.tensor(GW[k], dtype=dtype)
        b.grad = None if GB[k] is None else torch.tensor(GB[k], dtype=dtype)
        opt.step()
        ws.append(w.detach().flatten().tolist())
        bs.append(b.detach().flatten().tolist())
    return ws, bs


def show(name, rows, digits):
    body = ",\n    ".join("{" + ", ".join(f"{x:.{digits}g}" for x in r) + "}" for r in rows)
    print(f"// {name}\n{{\n    {body}}};")


if __name__ == "__main__":
    print(f"// torch {torch.__version__}")
    for dtype, digits in ((torch.float32, 9), (torch.float64, 17)):
        ws, bs = run(dtype)
        show(f"w after each step, {dtype}", ws, digits)
        show(f"b after each step, {dtype}", bs, digits)
