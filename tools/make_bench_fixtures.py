#!/usr/bin/env python3
"""Writes tests/fixtures/bench/: the shared start of the peer benchmarks and PyTorch's
losses from it, for tests/bench_check.rs (which runs examples/bench.rs's `--check`).

The start is what /work/shared/bench/dump_init.py writes (its `_common.init_params` and
`_common.make_batch`, imported from that directory): W0, b0, W1, b1, ... with W as
(in, out), x (batch, in), y (int64 class labels for cross-entropy, float targets for
MSE). The losses are those of `mlp_torch.py --check 5`: the loss before each of 5 plain
SGD steps (lr 0.01) and after the last, one per line in NAME.torch_losses.txt.

To re-run (from the repository root, with a Python that has torch, numpy, safetensors):

    /tmp/peers/bin/python tools/make_bench_fixtures.py [--bench-dir /work/shared/bench]

The medium configuration is stored with batch 8 to keep the files small (~430 KB).
"""
import argparse
import os
import sys

p = argparse.ArgumentParser()
p.add_argument("--bench-dir", default="/work/shared/bench")
p.add_argument("--steps", type=int, default=5)
args = p.parse_args()
sys.path.insert(0, args.bench_dir)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from _common import init_params, make_batch  # noqa: E402

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "bench")

# name, sizes, batch, seed
CONFIGS = [
    ("medium", [784, 128, 10], 8, 0),
    ("tiny", [2, 8, 1], 32, 0),
]


def torch_losses(params, x, y, loss, lr, steps):
    """mlp_torch.py's model, loss and SGD; the losses of `--check steps`."""
    layers = []
    for i, (W, b) in enumerate(params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = F.cross_entropy if loss == "ce" else F.mse_loss

    def value():
        with torch.no_grad():
            return float(loss_fn(model(xt), yt))

    out = [value()]
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xt), yt).backward()
        opt.step()
        out.append(value())
    return out


os.makedirs(OUT, exist_ok=True)
for name, sizes, batch, seed in CONFIGS:
    loss = "mse" if sizes[-1] == 1 else "ce"
    arrs = {}
    params = init_params(sizes, seed)
    for i, (W, b) in enumerate(params):
        arrs[f"W{i}"], arrs[f"b{i}"] = W, b
    x, y = make_batch(sizes, batch, loss, seed)
    arrs["x"], arrs["y"] = x, y
    path = os.path.join(OUT, f"{name}.safetensors")
    save_file({k: np.ascontiguousarray(v) for k, v in arrs.items()}, path,
              metadata={"sizes": ",".join(map(str, sizes)), "batch": str(batch),
                        "loss": loss, "seed": str(seed)})
    losses = torch_losses(params, x, y, loss, 0.01, args.steps)
    with open(os.path.join(OUT, f"{name}.torch_losses.txt"), "w") as f:
        f.write("".join(f"{v!r}\n" for v in losses))
    print(path, losses)
