#!/usr/bin/env python3
"""Writes tests/fixtures/networks/*.safetensors: what PyTorch computes for the networks of
tests/pytorch_parity.rs, forward and backward, in float64 (and one network in float32).

The Rust test tests/pytorch_parity.rs builds the same networks with `bp::network!`, loads
these files and compares. CI never runs this script; it only reads the committed files.

To re-run (from the repository root, with a Python that has torch, numpy and safetensors):

    /path/to/python tools/make_network_fixtures.py

and commit the regenerated files. The output is deterministic for a given torch version.

Files, for each network NAME (every tensor float64 unless said otherwise):

    NAME.params.safetensors   exactly the network's parameters under bp's / PyTorch's names
                              (`fc1.weight`, a free `param w` as `w`), so that the Rust test
                              loads it with `net.load(path)` (strict: names, shapes, dtype).
    NAME.data.safetensors     input.X        the batch given to input X
                              (for `nan`, forward only: inputs, outputs and values)
                              d_out.O        the gradient handed to backward for output O
                              output.O       the value of output O
                              grad.P         the gradient of parameter P
                              input_grad.X   the gradient of input X (inputs declared `grad`)
                              value.N        the value of the `let`-bound node N
                              residual.N     the residual dJ/dN of node N (J = sum of
                                             <output, d_out> over the outputs)
                              metadata "architecture": the bp source of the network
                              (the one metadata key of every file written here).

    losses.safetensors        CASE.pred/.target/.logits/.labels/.targets, CASE.loss ([1]) and
                              CASE.grad (d loss / d pred or logits) of F.mse_loss,
                              F.cross_entropy, F.binary_cross_entropy_with_logits (mean
                              reduction); labels are stored as float64 class indices.

    interop.f64.safetensors   safetensors.torch.save_file(model.state_dict()) of the module
    interop.f32.safetensors   `Interop` below (float64 and float32 copies of the same module)
    interop.f64.data.safetensors / interop.f32.data.safetensors
                              the module's inputs, outputs, d_out and gradients, in the
                              module's dtype.
"""

import json
import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures", "networks"))

f64 = torch.float64


def linear(P, name, x, bias=True):
    return F.linear(x, P[name + ".weight"], P[name + ".bias"] if bias else None)


def per_sample_sum(x):
    return x.sum(dim=tuple(range(1, x.dim()))) if x.dim() > 1 else x


def per_sample_mean(x):
    return x.mean(dim=tuple(range(1, x.dim()))) if x.dim() > 1 else x


def col(s):
    """A per-sample scalar [B] broadcast against a per-sample vector [B, F]."""
    return s.unsqueeze(-1)


def scalar(v):
    return torch.tensor(v, dtype=f64)


# --------------------------------------------------------------------------- networks
#
# Each network: its bp source (also written into the fixture's metadata), its parameters
# (name, shape, how they are drawn), its inputs (name, per-sample shape, `grad`, how the
# batch is drawn), and the PyTorch function computing (outputs, named nodes) from the
# parameters and inputs.


def uniform_linear(inp):
    bound = 1.0 / math.sqrt(inp)
    return lambda rng, shape: rng.uniform(-bound, bound, size=shape)


def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, size=shape)


def normal(std):
    return lambda rng, shape: rng.normal(0.0, std, size=shape)


ACTIVATIONS_SRC = """
input x: [3, 4] grad;
let fc1 = linear(x, 5);
let fc2 = linear(x, 5, bias = false);
let r = relu(fc1);
let sg = sigmoid(fc1);
let th = tanh(fc2);
let lr = leaky_relu(fc1, slope = 0.2);
let lr0 = leaky_relu(fc2);
let ge = gelu(fc1, approximate = "tanh");
let si = silu(fc2);
let el = elu(fc2, alpha = 0.7);
let el1 = elu(fc1);
let h = concat(r, sg, th, lr, lr0, ge, si, el, el1, dim = 1);
let out = linear(h, 2);
output out;
"""


def activations(P, I):
    x = I["x"]
    fc1 = linear(P, "fc1", x)
    fc2 = linear(P, "fc2", x, bias=False)
    n = OrderedDict(fc1=fc1, fc2=fc2)
    n["r"] = F.relu(fc1)
    n["sg"] = torch.sigmoid(fc1)
    n["th"] = torch.tanh(fc2)
    n["lr"] = F.leaky_relu(fc1, negative_slope=0.2)
    n["lr0"] = F.leaky_relu(fc2)
    n["ge"] = F.gelu(fc1, approximate="tanh")
    n["si"] = F.silu(fc2)
    n["el"] = F.elu(fc2, alpha=0.7)
    n["el1"] = F.elu(fc1)
    n["h"] = torch.cat([n[k] for k in ["r", "sg", "th", "lr", "lr0", "ge", "si", "el", "el1"]], dim=2)
    n["out"] = linear(P, "out", n["h"])
    return OrderedDict(out=n["out"]), n


UNARY_SRC = """
input z: [8] grad;
let sp = softplus(z);
let sg = sigmoid(z);
let th = tanh(z * 0.3);
let ge = gelu(z * 0.4, approximate = "tanh");
let si = silu(z);
let el = elu(z * 0.2, alpha = 1.5);
let ex = exp(z * 0.05);
let lg = ln(abs(z) + 0.5);
let sq = sqrt(z * z + 1.0);
let p3 = pow(z * 0.1, 3);
let pf = pow(abs(z) + 1.0, 1.5);
let pn = pow(z * z + 2.0, -0.5);
let all = concat(sp, sg, th, ge, si, el, ex, lg, sq, p3, pf, pn, dim = 0);
let y = linear(all, 3);
let sm = softmax(z * 30.0);
let ls = log_softmax(z * 30.0);
output sp, y, sm, ls;
"""


def unary(P, I):
    z = I["z"]
    n = OrderedDict()
    n["sp"] = F.softplus(z)  # beta = 1, threshold = 20
    n["sg"] = torch.sigmoid(z)
    n["th"] = torch.tanh(z * 0.3)
    n["ge"] = F.gelu(z * 0.4, approximate="tanh")
    n["si"] = F.silu(z)
    n["el"] = F.elu(z * 0.2, alpha=1.5)
    n["ex"] = torch.exp(z * 0.05)
    n["lg"] = torch.log(torch.abs(z) + 0.5)
    n["sq"] = torch.sqrt(z * z + 1.0)
    n["p3"] = torch.pow(z * 0.1, 3)
    n["pf"] = torch.pow(torch.abs(z) + 1.0, 1.5)
    n["pn"] = torch.pow(z * z + 2.0, -0.5)
    parts = ["sp", "sg", "th", "ge", "si", "el", "ex", "lg", "sq", "p3", "pf", "pn"]
    n["all"] = torch.cat([n[k] for k in parts], dim=1)
    n["y"] = linear(P, "y", n["all"])
    # Logits spread over thousands: softmax saturates to 0 and 1.
    n["sm"] = F.softmax(z * 30.0, dim=-1)
    n["ls"] = F.log_softmax(z * 30.0, dim=-1)
    return OrderedDict((k, n[k]) for k in ["sp", "y", "sm", "ls"]), n


def unary_z(rng, batch):
    z = rng.uniform(-25.0, 25.0, size=(batch, 8))
    # Both sides of softplus's threshold (20), far tails of sigmoid/tanh/gelu/silu/elu.
    z[0] = [-30.0, -5.0, -0.5, 0.3, 19.5, 20.5, 25.0, 60.0]
    return z


ARITHMETIC_SRC = """
input x: [6] grad;
input s: [] grad;
param w: [6] = normal(0.5);
param k: [] = 0.7;
let a = linear(x, 6);
let b = linear(x, 6);
let e1 = a * b - a / (b * b + 1.0) + s * w - k * a + 2.0;
let e2 = -a + 3.0 / (1.0 + b * b) - w / k + s;
let m = min(a, b) + max(a, s) - min(w, b) + max(k, a);
let out1 = e1 * e2 - m / 2.0;
let out2 = sum(out1 * w) + mean(e2) * s;
output out1, out2;
"""


def arithmetic(P, I):
    x, s = I["x"], I["s"]
    w, k = P["w"], P["k"]
    n = OrderedDict()
    a = n["a"] = linear(P, "a", x)
    b = n["b"] = linear(P, "b", x)
    e1 = n["e1"] = a * b - a / (b * b + 1.0) + col(s) * w - k * a + 2.0
    e2 = n["e2"] = -a + 3.0 / (1.0 + b * b) - w / k + col(s)
    m = n["m"] = (
        torch.minimum(a, b)
        + torch.maximum(a, col(s))
        - torch.minimum(w.expand_as(b), b)
        + torch.maximum(k.expand_as(a), a)
    )
    out1 = n["out1"] = e1 * e2 - m / 2.0
    n["out2"] = per_sample_sum(out1 * w) + per_sample_mean(e2) * s
    return OrderedDict(out1=n["out1"], out2=n["out2"]), n


KINKS_SRC = """
input u: [4] grad;
input v: [4] grad;
input t: [] grad;
let fc = linear(u, 3);
let r = relu(fc);
let lr = leaky_relu(fc, slope = 0.1);
let el = elu(fc, alpha = 0.5);
let af = abs(fc);
let o1 = concat(r, lr, el, af, fc, fc, dim = 0);
let a = abs(u);
let ru = relu(u);
let mn = min(u, v);
let mx = max(u, v);
let mz = max(u, 0.0);
let mk = min(v, 0.5);
let mt = max(u, t) + min(t, v);
let st = max(u, u) + min(v, v) * 2.0;
let o2 = concat(a, ru, mn, mx, mz, mk, mt, st, dim = 0);
output o1, o2;
"""


def kinks(P, I):
    u, v, t = I["u"], I["v"], I["t"]
    n = OrderedDict()
    fc = n["fc"] = linear(P, "fc", u)
    n["r"] = F.relu(fc)
    n["lr"] = F.leaky_relu(fc, negative_slope=0.1)
    n["el"] = F.elu(fc, alpha=0.5)
    n["af"] = torch.abs(fc)
    n["o1"] = torch.cat([n["r"], n["lr"], n["el"], n["af"], fc, fc], dim=1)
    n["a"] = torch.abs(u)
    n["ru"] = F.relu(u)
    n["mn"] = torch.minimum(u, v)
    n["mx"] = torch.maximum(u, v)
    n["mz"] = torch.maximum(u, scalar(0.0))
    n["mk"] = torch.minimum(v, scalar(0.5))
    n["mt"] = torch.maximum(u, col(t)) + torch.minimum(col(t), v)
    n["st"] = torch.maximum(u, u) + torch.minimum(v, v) * 2.0  # always a tie: grad/2 twice
    n["o2"] = torch.cat([n[k] for k in ["a", "ru", "mn", "mx", "mz", "mk", "mt", "st"]], dim=1)
    return OrderedDict(o1=n["o1"], o2=n["o2"]), n


def kinks_params(rng):
    w = rng.uniform(-0.5, 0.5, size=(3, 4))
    # Unit 0: 0.5·u0 + 0.5·u1 + ... is exactly 0 for u = [1, -1, 0, 0] (sample 2).
    w[0, :2] = [0.5, 0.5]
    # Zero biases for units 0 and 2: a zero sample (sample 0) gives pre-activations
    # exactly 0 there.
    return {"fc.weight": w, "fc.bias": np.array([0.0, 0.3, 0.0])}


def kinks_inputs(rng, batch):
    u = rng.uniform(-1.0, 1.0, size=(batch, 4))
    v = rng.uniform(-1.0, 1.0, size=(batch, 4))
    t = rng.uniform(-1.0, 1.0, size=(batch,))
    u[0] = 0.0  # relu'(0) = 0, abs'(0) = 0 on a pre-activation and on an input
    v[0] = [0.0, 0.5, -0.25, 0.5]  # ties of min/max with u (0 = 0) and of min(v, 0.5)
    t[0] = 0.0  # max(u, t) ties on every element
    u[1] = [0.3, -0.7, 0.0, 1.25]
    v[1] = [0.3, 0.2, 0.0, 1.25]  # three exact ties
    t[1] = 0.3
    u[2] = [1.0, -1.0, 0.0, 0.0]  # fc unit 0 is exactly 0 with a nonzero input
    v[2] = [1.0, 0.5, 0.5, -1.0]
    t[2] = 0.5  # min(t, v) ties twice
    return {"u": u, "v": v, "t": t}


SOFTPLUS_SRC = """
input z: [8] grad;
let sp = softplus(z);
output sp;
"""


def softplus(P, I):
    sp = F.softplus(I["z"])  # beta = 1, threshold = 20: the identity above 20
    return OrderedDict(sp=sp), OrderedDict(sp=sp)


def softplus_z(rng, batch):
    z = rng.uniform(-40.0, 40.0, size=(batch, 8))
    # Around the threshold, and far above it where exp overflows (exp(800) = inf in f64):
    # there only the threshold branch gives a finite value.
    z[0] = [-800.0, -30.0, 19.9, 20.0, 20.000001, 20.5, 30.0, 800.0]
    z[1] = [1000.0, 21.0, 25.0, 60.0, 100.0, 709.0, 710.0, -1000.0]
    return z


NAN_SRC = """
input x: [6];
let r = relu(x);
let mx = max(x, 0.5);
let mn = min(x, -0.5);
let lr = leaky_relu(x, slope = 0.1);
let el = elu(x);
let sp = softplus(x);
let ge = gelu(x, approximate = "tanh");
let ab = abs(x);
let sm = softmax(x);
let s = sum(x);
let all = concat(r, mx, mn, lr, el, sp, ge, ab, sm, s * x, dim = 0);
output all;
"""


def nan(P, I):
    x = I["x"]
    n = OrderedDict()
    n["r"] = F.relu(x)
    n["mx"] = torch.maximum(x, scalar(0.5))
    n["mn"] = torch.minimum(x, scalar(-0.5))
    n["lr"] = F.leaky_relu(x, negative_slope=0.1)
    n["el"] = F.elu(x)
    n["sp"] = F.softplus(x)
    n["ge"] = F.gelu(x, approximate="tanh")
    n["ab"] = torch.abs(x)
    n["sm"] = F.softmax(x, dim=-1)
    n["s"] = per_sample_sum(x)
    parts = ["r", "mx", "mn", "lr", "el", "sp", "ge", "ab", "sm"]
    n["all"] = torch.cat([n[k] for k in parts] + [col(n["s"]) * x], dim=1)
    return OrderedDict(all=n["all"]), n


def nan_x(rng, batch):
    x = rng.uniform(-2.0, 2.0, size=(batch, 6))
    x[0, 1] = np.nan  # NaN propagates through every operation in PyTorch
    x[1, :] = np.nan
    return x


STRUCTURE_SRC = """
input x: [2, 3] grad;
let a = linear(x, 4);
let c0 = concat(x, a, dim = 1);
let th = tanh(c0);
let c1 = concat(c0, th, dim = 0);
let p = softmax(c1);
let lp = log_softmax(c1 * 3.0);
let f = flatten(p * lp);
let s = sum(c1);
let m = mean(lp);
let out1 = linear(f, 3);
let out2 = s * m + sum(p * c1);
output out1, out2;
"""


def structure(P, I):
    x = I["x"]
    n = OrderedDict()
    a = n["a"] = linear(P, "a", x)
    c0 = n["c0"] = torch.cat([x, a], dim=2)
    th = n["th"] = torch.tanh(c0)
    c1 = n["c1"] = torch.cat([c0, th], dim=1)
    p = n["p"] = F.softmax(c1, dim=-1)
    lp = n["lp"] = F.log_softmax(c1 * 3.0, dim=-1)
    f = n["f"] = (p * lp).flatten(1)
    s = n["s"] = per_sample_sum(c1)
    m = n["m"] = per_sample_mean(lp)
    n["out1"] = linear(P, "out1", f)
    n["out2"] = s * m + per_sample_sum(p * c1)
    return OrderedDict(out1=n["out1"], out2=n["out2"]), n


FAN_OUT_SRC = """
input x: [5] grad;
let h = tanh(linear(x, 6));
let a = linear(h, 4);
let b = sigmoid(h) * h;
let c = sum(h);
let o1 = linear(b, 4) + a;
let o2 = o1 * c;
output o1, o2;
"""


def fan_out(P, I):
    x = I["x"]
    n = OrderedDict()
    h = n["h"] = torch.tanh(linear(P, "h", x))
    a = n["a"] = linear(P, "a", h)
    b = n["b"] = torch.sigmoid(h) * h
    c = n["c"] = per_sample_sum(h)
    o1 = n["o1"] = linear(P, "o1", b) + a
    n["o2"] = o1 * col(c)
    return OrderedDict(o1=n["o1"], o2=n["o2"]), n


def lin_params(name, inp, out, bias=True):
    p = [(name + ".weight", (out, inp), uniform_linear(inp))]
    if bias:
        p.append((name + ".bias", (out,), uniform_linear(inp)))
    return p


NETWORKS = [
    dict(
        name="activations",
        src=ACTIVATIONS_SRC,
        fn=activations,
        params=lin_params("fc1", 4, 5) + lin_params("fc2", 4, 5, bias=False) + lin_params("out", 45, 2),
        inputs=[("x", (3, 4), True, uniform(-2.0, 2.0))],
        batch=3,
        seed=1,
    ),
    dict(
        name="unary",
        src=UNARY_SRC,
        fn=unary,
        params=lin_params("y", 96, 3),
        inputs=[("z", (8,), True, unary_z)],
        batch=3,
        seed=2,
    ),
    dict(
        name="softplus",
        src=SOFTPLUS_SRC,
        fn=softplus,
        params=[],
        inputs=[("z", (8,), True, softplus_z)],
        batch=3,
        seed=7,
    ),
    dict(
        name="nan",
        src=NAN_SRC,
        fn=nan,
        params=[],
        inputs=[("x", (6,), False, nan_x)],
        batch=3,
        seed=8,
        forward_only=True,
    ),
    dict(
        name="arithmetic",
        src=ARITHMETIC_SRC,
        fn=arithmetic,
        params=lin_params("a", 6, 6)
        + lin_params("b", 6, 6)
        + [("w", (6,), normal(0.5)), ("k", (), uniform(0.5, 1.0))],
        inputs=[("x", (6,), True, uniform(-1.0, 1.0)), ("s", (), True, uniform(-1.0, 1.0))],
        batch=4,
        seed=3,
    ),
    dict(
        name="kinks",
        src=KINKS_SRC,
        fn=kinks,
        params=lin_params("fc", 4, 3),
        param_override=kinks_params,
        inputs=[("u", (4,), True, None), ("v", (4,), True, None), ("t", (), True, None)],
        input_override=kinks_inputs,
        batch=4,
        seed=4,
    ),
    dict(
        name="structure",
        src=STRUCTURE_SRC,
        fn=structure,
        params=lin_params("a", 3, 4) + lin_params("out1", 28, 3),
        inputs=[("x", (2, 3), True, uniform(-1.5, 1.5))],
        batch=3,
        seed=5,
    ),
    dict(
        name="fan_out",
        src=FAN_OUT_SRC,
        fn=fan_out,
        params=lin_params("h", 5, 6) + lin_params("a", 6, 4) + lin_params("o1", 6, 4),
        inputs=[("x", (5,), True, uniform(-1.0, 1.0))],
        batch=3,
        seed=6,
    ),
]


def draw(gen, rng, shape):
    # A generator is called with (rng, shape) or, for whole batches, (rng, batch).
    return np.asarray(gen(rng, shape), dtype=np.float64)


def run_network(spec):
    rng = np.random.default_rng(1000 + spec["seed"])
    batch = spec["batch"]
    params = OrderedDict((n, draw(g, rng, s)) for n, s, g in spec["params"])
    if "param_override" in spec:
        params.update(spec["param_override"](rng))
    if "input_override" in spec:
        inputs = spec["input_override"](rng, batch)
    else:
        inputs = {}
        for n, shape, _, g in spec["inputs"]:
            if g in (unary_z, softplus_z, nan_x):
                inputs[n] = g(rng, batch)
            else:
                inputs[n] = draw(g, rng, (batch,) + tuple(shape))
    P = OrderedDict((n, torch.tensor(v, dtype=f64).reshape(s).requires_grad_(True))
                    for (n, s, _), v in zip(spec["params"], params.values()))
    I = OrderedDict()
    for n, shape, grad, _ in spec["inputs"]:
        t = torch.tensor(inputs[n], dtype=f64).reshape((batch,) + tuple(shape))
        I[n] = t.requires_grad_(grad)
    outputs, nodes = spec["fn"](P, I)
    for t in nodes.values():
        if t.requires_grad:
            t.retain_grad()
    d_out = OrderedDict((n, torch.tensor(rng.normal(size=o.shape), dtype=f64)) for n, o in outputs.items())
    if spec.get("forward_only"):
        # Forward values only: no d_out, gradients or residuals in the file.
        d_out = OrderedDict()
    else:
        torch.autograd.backward(list(outputs.values()), list(d_out.values()))

    data = OrderedDict()
    for n, shape, grad, _ in spec["inputs"]:
        data["input." + n] = I[n].detach()
    for n, o in outputs.items():
        data["output." + n] = o.detach()
        if n in d_out:
            data["d_out." + n] = d_out[n]
    for n, p in P.items():
        if p.grad is not None:
            data["grad." + n] = p.grad
    for n, shape, grad, _ in spec["inputs"]:
        if grad:
            data["input_grad." + n] = I[n].grad
    for n, t in nodes.items():
        data["value." + n] = t.detach()
        if t.grad is not None:
            data["residual." + n] = t.grad
    about = f"bp::network! (#[dtype(f64)]) as in tests/pytorch_parity.rs; PyTorch {torch.__version__}, float64\n"
    save(data, spec["name"] + ".data.safetensors", about + spec["src"].strip())
    save(OrderedDict((n, p.detach()) for n, p in P.items()), spec["name"] + ".params.safetensors",
         spec["src"].strip())


def save(tensors, filename, architecture=None):
    """One metadata key only: safetensors writes its metadata map in hash order, so several
    keys would make the bytes differ from run to run."""
    path = os.path.join(OUT, filename)
    meta = None if architecture is None else {"architecture": architecture}
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, path, metadata=meta)
    os.chmod(path, 0o644)  # safetensors creates files readable by their owner only
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


# ----------------------------------------------------------------------------- losses


def losses():
    rng = np.random.default_rng(77)
    data = OrderedDict()

    def record(case, loss, wrt, inputs):
        loss.backward()
        for k, v in inputs.items():
            data[f"{case}.{k}"] = v.detach()
        data[f"{case}.loss"] = loss.detach().reshape(1)
        data[f"{case}.grad"] = wrt.grad

    pred = torch.tensor(rng.normal(size=(4, 3)), dtype=f64, requires_grad=True)
    target = torch.tensor(rng.normal(size=(4, 3)), dtype=f64)
    record("mse", F.mse_loss(pred, target), pred, {"pred": pred, "target": target})

    big = torch.tensor(rng.normal(scale=30.0, size=(3, 5)), dtype=f64, requires_grad=True)
    tbig = torch.tensor(rng.normal(scale=30.0, size=(3, 5)), dtype=f64)
    record("mse_large", F.mse_loss(big, tbig), big, {"pred": big, "target": tbig})

    logits = torch.tensor(rng.normal(scale=2.0, size=(5, 4)), dtype=f64, requires_grad=True)
    labels = torch.tensor([0, 3, 1, 1, 2])
    record("ce", F.cross_entropy(logits, labels), logits,
           {"logits": logits, "labels": labels.to(f64)})

    extreme = torch.tensor(
        [
            [1000.0, -1000.0, 0.0, 50.0, -50.0],  # label 1: loss 2000
            [1000.0, -1000.0, 0.0, 50.0, -50.0],  # label 0: loss ~0
            [-1000.0, -1000.0, -1000.0, -1000.0, -1000.0],  # all equal
            [50.0, -50.0, 49.0, 1.0, 0.0],
            [-50.0, 50.0, -50.0, 50.0, 0.0],  # tie between two maxima
            [1000.0, 999.0, 1000.0, -50.0, 50.0],
        ],
        dtype=f64,
        requires_grad=True,
    )
    xlabels = torch.tensor([1, 0, 3, 2, 3, 4])
    record("ce_extreme", F.cross_entropy(extreme, xlabels), extreme,
           {"logits": extreme, "labels": xlabels.to(f64)})

    bl = torch.tensor(rng.normal(scale=2.0, size=(3, 4)), dtype=f64, requires_grad=True)
    bt = torch.tensor(rng.uniform(0.0, 1.0, size=(3, 4)), dtype=f64)
    bt[0] = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=f64)
    record("bce", F.binary_cross_entropy_with_logits(bl, bt), bl, {"logits": bl, "targets": bt})

    xl = torch.tensor(
        [
            [1000.0, -1000.0, 50.0, -50.0, 0.0, 1000.0],
            [1000.0, -1000.0, 50.0, -50.0, 0.0, -1000.0],
        ],
        dtype=f64,
        requires_grad=True,
    )
    xt = torch.tensor(
        [[0.0, 1.0, 0.0, 1.0, 0.5, 1.0], [1.0, 0.0, 0.3, 0.7, 1.0, 0.25]], dtype=f64
    )
    record("bce_extreme", F.binary_cross_entropy_with_logits(xl, xt), xl,
           {"logits": xl, "targets": xt})
    save(data, "losses.safetensors", f"torch.nn.functional losses, PyTorch {torch.__version__}, float64")


# ---------------------------------------------------------------------------- interop

INTEROP_SRC = """
input x: [6];
param scale: [8] = ones;
let fc1 = linear(x, 16);
let h1 = gelu(fc1, approximate = "tanh");
let fc2 = linear(h1, 8);
let h2 = tanh(fc2) * scale;
let out = linear(h2, 3);
let logp = log_softmax(out);
output logp;
"""


class Interop(nn.Module):
    """PyTorch's side of `Interop` / `InteropF32` in tests/pytorch_parity.rs: attribute
    names are bp's `let` names, so the state_dict keys are bp's parameter names."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(8))
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h1 = F.gelu(self.fc1(x), approximate="tanh")
        h2 = torch.tanh(self.fc2(h1)) * self.scale
        return F.log_softmax(self.out(h2), dim=-1)


def interop():
    torch.manual_seed(2024)
    model = Interop()
    with torch.no_grad():
        model.scale.uniform_(0.5, 1.5)
    x64 = torch.rand(5, 6, generator=torch.Generator().manual_seed(7), dtype=f64) * 4.0 - 2.0
    d64 = torch.randn(5, 3, generator=torch.Generator().manual_seed(8), dtype=f64)
    arch = INTEROP_SRC.strip()
    for tag, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
        m = Interop()
        m.load_state_dict(model.state_dict())
        m = m.to(dtype)
        path = os.path.join(OUT, f"interop.{tag}.safetensors")
        # Exactly what a user does: no bp metadata, PyTorch's own names.
        save_file(m.state_dict(), path)
        os.chmod(path, 0o644)
        print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
        x, d = x64.to(dtype), d64.to(dtype)
        m.zero_grad()
        y = m(x)
        y.backward(d)
        data = OrderedDict([("input.x", x), ("output.logp", y.detach()), ("d_out.logp", d)])
        for n, p in m.named_parameters():
            data["grad." + n] = p.grad
        about = (
            f"bp::network! ({'#[dtype(f64)]' if tag == 'f64' else 'f32, the default'}) as in "
            f"tests/pytorch_parity.rs; PyTorch {torch.__version__}, {tag}\n{arch}\n"
            "PyTorch's module (state_dict keys "
            f"{json.dumps(list(m.state_dict().keys()))}):\n"
            "class Interop(nn.Module): scale = Parameter([8]); fc1 = Linear(6, 16); "
            "fc2 = Linear(16, 8); out = Linear(8, 3); forward(x) = log_softmax(out(tanh(fc2("
            "gelu(fc1(x), approximate='tanh'))) * scale), dim=-1)"
        )
        save(data, f"interop.{tag}.data.safetensors", about)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for spec in NETWORKS:
        run_network(spec)
    losses()
    interop()


if __name__ == "__main__":
    main()
