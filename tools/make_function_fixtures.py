#!/usr/bin/env python3
"""Writes tests/fixtures/functions/*.safetensors: what PyTorch computes for the networks of
tests/pytorch_parity_functions.rs — the elementwise functions sin, cos, erf, square,
rsqrt, clamp (both bounds, only `min`, only `max`, min > max) and gelu (exact erf form and
tanh form) — forward and backward, in float64.

The Rust test builds the same networks with `bp::network!`, loads these files and
compares. CI never runs this script; it only reads the committed files. The format is the
one of tools/make_network_fixtures.py (tests/fixtures/networks/; see its header):

    NAME.params.safetensors   exactly the network's parameters under bp's / PyTorch's names
                              (`fc1.weight`), for `net.load(path)` (strict).
    NAME.data.safetensors     input.X, d_out.O, output.O, grad.P, input_grad.X (every
                              input here is declared `grad`), value.N and residual.N of
                              every `let` node N; metadata "architecture": the bp source.

Every network is `input x: [8] grad; let h = linear(x, 5); let y = F(h); let z =
linear(y, 3);` plus F applied straight to the input (`d = F(x)`), with outputs `z` and
`d`: the direct output makes input_grad.x · d_out show F' element by element, and the
layers give F' at the pre-activations of a real layer. Inputs and weights are drawn wider
than PyTorch's default initialization (|h| up to ~6), and the first rows of the batch are
written by hand:

    sin, cos      several periods, and x = 0, ±π/2, ±π, 100;
    erf, gelu     both tails (erf = ±1 to the last bit at |x| ≥ 6, gelu ≈ 0 or x), 0;
    square        signs and magnitudes;
    rsqrt         only of positive arguments: rsqrt(exp(h)), rsqrt(square(x) + 0.5),
                  rsqrt(abs(x) + 0.001) (x never 0 there, away from abs' kink);
    clamp         values below, inside, above and EXACTLY AT each bound, both on the input
                  (written by hand) and on the pre-activation h (a sample x = 0 makes h
                  equal to the bias, which is set to the bounds).

PyTorch's clamp gradient at a value exactly equal to a bound (checked with 2.15.0,
float64 and float32, number bounds): 0, at `min` and at `max`, whether one bound or both
are given — the same as F.hardtanh; only lo < x < hi passes the gradient.
`check_clamp_at_bounds` below asserts it. Older PyTorch passed it at the bounds (1.13:
lo <= x <= hi); with tensor bounds 2.15 splits it, 0.5 (the language has only number
bounds). With min > max every output is `max` and every gradient is 0.

To re-run (from the repository root, with a Python that has torch, numpy and safetensors;
`python3 -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch numpy
safetensors` gives one from PyPI):

    /path/to/python tools/make_function_fixtures.py

and commit the regenerated files. The output is deterministic for a given torch version
(seeded numpy streams, no torch randomness).
"""

import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures", "functions"))

f64 = torch.float64
BATCH = 4
IN, HIDDEN, OUT_DIM = 8, 5, 3


def src(y, d, extra=""):
    """The bp source of a network: y = F(h) on the layer, d = F(x) on the input."""
    return (
        "input x: [8] grad;\n"
        "let h = linear(x, 5);\n"
        f"let y = {y};\n"
        "let z = linear(y, 3);\n"
        f"let d = {d};\n"
        f"{extra}"
        f"output z, d{', e' if extra else ''};\n"
    )


# Each network: its name, the bp source, the two (or three) torch functions and the
# hand-written first rows of x. `y` maps h, `d` maps x (and `e`, if any, maps x).
PI = math.pi
NETWORKS = [
    dict(
        name="sin",
        src=src("sin(h)", "sin(x)"),
        y=torch.sin,
        d=torch.sin,
        rows=[[0.0, PI / 2, -PI / 2, PI, -PI, 100.0, -7.5, 3.0]],
    ),
    dict(
        name="cos",
        src=src("cos(h)", "cos(x * 2.0)"),
        y=torch.cos,
        d=lambda x: torch.cos(x * 2.0),
        rows=[[0.0, PI / 4, -PI / 4, PI / 2, -PI, 50.0, -6.0, 2.2]],
    ),
    dict(
        name="erf",
        src=src("erf(h)", "erf(x)"),
        y=torch.erf,
        d=torch.erf,
        rows=[[0.0, -6.5, 6.5, -3.0, 2.5, 1e-3, -0.5, 0.9]],
    ),
    dict(
        name="square",
        src=src("square(h)", "square(x) - x"),
        y=torch.square,
        d=lambda x: torch.square(x) - x,
        rows=[[0.0, -1.0, 1.0, -3.5, 7.0, 0.5, -0.25, 1e-3]],
    ),
    dict(
        name="rsqrt",
        src=src("rsqrt(exp(h))", "rsqrt(square(x) + 0.5)", "let e = rsqrt(abs(x) + 0.001);\n"),
        y=lambda h: torch.rsqrt(torch.exp(h)),
        d=lambda x: torch.rsqrt(torch.square(x) + 0.5),
        e=lambda x: torch.rsqrt(torch.abs(x) + 0.001),
        rows=[[1e-4, -1e-4, 2.0, -3.0, 0.01, 5.0, -0.5, 40.0]],
    ),
    dict(
        name="gelu",
        src=src("gelu(h)", "gelu(x, approximate = \"none\")"),
        y=F.gelu,
        d=lambda x: F.gelu(x, approximate="none"),
        rows=[[0.0, -12.0, 12.0, -6.0, -2.5, -0.5, 0.7, 3.0]],
    ),
    dict(
        name="gelu_tanh",
        src=src("gelu(h, approximate = \"tanh\")", "gelu(x, \"tanh\")"),
        y=lambda h: F.gelu(h, approximate="tanh"),
        d=lambda x: F.gelu(x, approximate="tanh"),
        rows=[[0.0, -12.0, 12.0, -6.0, -2.5, -0.5, 0.7, 3.0]],
    ),
    dict(
        name="clamp",
        src=src("clamp(h, -0.3, 0.4)", "clamp(x, min = -1.0, max = 2.0)",
                "let e = clamp(x, 1.0, -1.0);\n"),
        y=lambda h: torch.clamp(h, -0.3, 0.4),
        d=lambda x: torch.clamp(x, min=-1.0, max=2.0),
        e=lambda x: torch.clamp(x, 1.0, -1.0),
        # Exactly at both bounds, just inside and outside each, far outside.
        rows=[[-1.0, 2.0, -1.0 - 1e-9, -1.0 + 1e-9, 2.0 - 1e-9, 2.0 + 1e-9, -5.0, 0.5],
              [0.0] * 8],
        bias=[-0.3, 0.4, 0.0, -1.0, 1.0],
    ),
    dict(
        name="clamp_min",
        src=src("clamp(h, min = -0.3)", "clamp(x, min = -1.0)"),
        y=lambda h: torch.clamp(h, min=-0.3),
        d=lambda x: torch.clamp(x, min=-1.0),
        rows=[[-1.0, 2.0, -1.0 - 1e-9, -1.0 + 1e-9, -3.0, 5.0, 0.0, -0.3],
              [0.0] * 8],
        bias=[-0.3, 0.4, -0.3, -1.0, 1.0],
    ),
    dict(
        name="clamp_max",
        src=src("clamp(h, max = 0.4)", "clamp(x, max = 2.0)"),
        y=lambda h: torch.clamp(h, max=0.4),
        d=lambda x: torch.clamp(x, max=2.0),
        rows=[[-1.0, 2.0, 2.0 - 1e-9, 2.0 + 1e-9, -3.0, 5.0, 0.0, 0.4],
              [0.0] * 8],
        bias=[0.4, -0.3, 0.4, -1.0, 1.0],
    ),
]


def run_network(spec, seed):
    rng = np.random.default_rng(2000 + seed)
    # Wider than nn.Linear's U(−1/√8, 1/√8), so that h spans several units.
    params = OrderedDict()
    params["h.weight"] = rng.uniform(-1.0, 1.0, size=(HIDDEN, IN))
    params["h.bias"] = rng.uniform(-0.5, 0.5, size=(HIDDEN,))
    if "bias" in spec:
        params["h.bias"] = np.array(spec["bias"], dtype=np.float64)
    params["z.weight"] = rng.uniform(-0.5, 0.5, size=(OUT_DIM, HIDDEN))
    params["z.bias"] = rng.uniform(-0.5, 0.5, size=(OUT_DIM,))
    x = rng.uniform(-3.0, 3.0, size=(BATCH, IN))
    for i, row in enumerate(spec["rows"]):
        x[i] = row

    P = OrderedDict((n, torch.tensor(v, dtype=f64).requires_grad_(True)) for n, v in params.items())
    X = torch.tensor(x, dtype=f64).requires_grad_(True)
    n = OrderedDict()
    n["h"] = F.linear(X, P["h.weight"], P["h.bias"])
    n["y"] = spec["y"](n["h"])
    n["z"] = F.linear(n["y"], P["z.weight"], P["z.bias"])
    n["d"] = spec["d"](X)
    out_names = ["z", "d"]
    if "e" in spec:
        n["e"] = spec["e"](X)
        out_names.append("e")
    for t in n.values():
        t.retain_grad()
    outputs = OrderedDict((k, n[k]) for k in out_names)
    d_out = OrderedDict((k, torch.tensor(rng.normal(size=o.shape), dtype=f64))
                        for k, o in outputs.items())
    torch.autograd.backward(list(outputs.values()), list(d_out.values()))

    data = OrderedDict()
    data["input.x"] = X.detach()
    for k, o in outputs.items():
        data["output." + k] = o.detach()
        data["d_out." + k] = d_out[k]
    for k, p in P.items():
        data["grad." + k] = p.grad
    data["input_grad.x"] = X.grad
    for k, t in n.items():
        data["value." + k] = t.detach()
        data["residual." + k] = t.grad
    about = (f"bp::network! (#[dtype(f64)]) as in tests/pytorch_parity_functions.rs; "
             f"PyTorch {torch.__version__}, float64\n")
    save(data, spec["name"] + ".data.safetensors", about + spec["src"].strip())
    save(OrderedDict((k, p.detach()) for k, p in P.items()), spec["name"] + ".params.safetensors",
         spec["src"].strip())
    return x, data


def save(tensors, filename, architecture):
    """One metadata key only: safetensors writes its metadata map in hash order, so several
    keys would make the bytes differ from run to run."""
    path = os.path.join(OUT, filename)
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, path,
              metadata={"architecture": architecture})
    os.chmod(path, 0o644)  # safetensors creates files readable by their owner only
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


def check_clamp_at_bounds():
    """The rule the clamp fixtures record, asserted so that a torch which changes it is
    noticed when the files are regenerated: 0 exactly at a bound, 1 strictly inside."""
    x = torch.tensor([-1.0, -0.5, 2.0, 3.0], dtype=f64, requires_grad=True)
    for kw, want in [(dict(min=-1.0, max=2.0), [0, 1, 0, 0]),
                     (dict(min=-1.0), [0, 1, 1, 1]),
                     (dict(max=2.0), [1, 1, 0, 0])]:
        (g,) = torch.autograd.grad(torch.clamp(x, **kw).sum(), x)
        assert g.tolist() == want, f"torch.clamp(x, {kw}) gradient {g.tolist()}, expected {want}"


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    check_clamp_at_bounds()
    for seed, spec in enumerate(NETWORKS):
        run_network(spec, seed)


if __name__ == "__main__":
    main()
