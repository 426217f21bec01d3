#!/usr/bin/env python3
"""Writes tests/fixtures/layers/*.safetensors: what PyTorch's modules compute for the
networks of tests/pytorch_parity_layers.rs — nn.Conv2d, nn.MaxPool2d / nn.AvgPool2d,
nn.BatchNorm1d / nn.BatchNorm2d (training and evaluation, running statistics),
nn.LayerNorm, nn.RNN (tanh), nn.LSTM, nn.GRU (batch_first, one layer, zero initial state),
nn.Dropout in evaluation — forward and backward, in float64.

The Rust test builds the same networks with `bp::network!`, loads these files and
compares. CI never runs this script; it only reads the committed files. The format is the
one of tools/make_network_fixtures.py (tests/fixtures/networks/), with the additions
below.

To re-run (from the repository root, with a Python that has torch, numpy and safetensors):

    /path/to/python tools/make_layer_fixtures.py

and commit the regenerated files. The output is deterministic for a given torch version.

To check once that PyTorch takes back a file written by bp's `net.save` (the `BnInterop`
network; `BP_LAYERS_SAVE_TO=/tmp/bp_interop.safetensors cargo test --test
pytorch_parity_layers state_dict` writes one):

    /path/to/python tools/make_layer_fixtures.py --load-bp-file /tmp/bp_interop.safetensors

Each network is an `nn.Module` whose attributes are named like bp's `let`s
(`self.l1 = nn.LSTM(...)` ↔ `let l1 = lstm(x, hidden = H);`), so its `state_dict()` keys
are bp's parameter and buffer names. Files, for each network NAME (float64 unless said
otherwise):

    NAME.params.safetensors   safetensors.torch.save_file(model.state_dict()): the
                              parameters, drawn from a seeded numpy stream, and batch
                              norm's buffers (running_mean, running_var float64;
                              num_batches_tracked int64, 0-dimensional, as PyTorch keeps
                              it), non-default so that their update is tested. The Rust
                              test loads it with `net.load(path)` (strict).
    NAME.data.safetensors     one forward and backward pass in training mode (the
    NAME.step2.data.safetensors   module's default), or in evaluation mode for the files
    NAME.eval.data.safetensors    named `eval`. `step2` is a second pass on a new batch
                              right after the first (no reload, no optimizer step); `eval`
                              starts again from NAME.params.safetensors with model.eval().
                              Keys as in tests/fixtures/networks/:
                              input.X, d_out.O, output.O, grad.P, input_grad.X, value.N,
                              residual.N, and
                              buffer.B   every buffer of the module after the forward
                                         pass (what `net.buffer(B)` reads), float64
                                         (num_batches_tracked converted).
                              metadata "architecture": the bp source of the network.

    bn_interop.safetensors    the state_dict of `BnInterop` (conv, BatchNorm2d, max pool,
                              linear, BatchNorm1d) after three SGD steps in PyTorch,
                              written as a user would: save_file(model.state_dict(), path),
                              no metadata.
    bn_interop.eval.data.safetensors   model.eval(): outputs, gradients, buffers.
    bn_interop.train.data.safetensors  then model.train(): one more pass on a new batch;
                              the buffers after it (num_batches_tracked 4).
"""

import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures", "layers"))

f64 = torch.float64


def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, size=shape)


def normal(std):
    return lambda rng, shape: rng.normal(0.0, std, size=shape)


def quantized(step, lo, hi):
    """Multiples of `step` in [lo, hi]: many exact ties inside pooling windows."""
    n_lo, n_hi = int(round(lo / step)), int(round(hi / step))
    return lambda rng, shape: rng.integers(n_lo, n_hi + 1, size=shape) * step


# --------------------------------------------------------------------------- networks
#
# Each network: its bp source (also written into the fixture's metadata), its PyTorch
# module (forward(**inputs) -> (outputs, named nodes)), its inputs (name, per-sample
# shape, `grad`, how the batch is drawn), the batch size and the passes to record.

CONV_SRC = """
input x: [3, 7, 6] grad;
input y: [2, 5, 5] grad;
let c1 = conv2d(x, 4, kernel = 3, stride = 2, padding = 1);
let c2 = conv2d(x, 2, kernel = 3, stride = 2, padding = 1, bias = false);
let h = concat(tanh(c1), c2, dim = 0);
let c3 = conv2d(h, 3, kernel = 1);
let c4 = conv2d(c3, 2, kernel = 5, padding = 1);
let c5 = conv2d(y, 3, kernel = 7, padding = 1);
let c6 = conv2d(x, 2, kernel = 2, stride = 3);
let c7 = conv2d(x, 2, kernel = 1, stride = 2, padding = 1);
output c4, c5, c6, c7;
"""


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        # Stride 2, padding 1 on 7×6 (H ≠ W; (6 + 2 − 3)/2 floors), C = 3 > 1.
        self.c1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False)
        self.c3 = nn.Conv2d(6, 3, 1)  # 1×1
        # Kernel 5 = the padded width of a 4×3 input (padded 6×5): output 2×1.
        self.c4 = nn.Conv2d(3, 2, 5, padding=1)
        # Kernel 7 = the padded input 5×5 + 2·1 in both dims: output 1×1.
        self.c5 = nn.Conv2d(2, 3, 7, padding=1)
        # Stride 3 > kernel 2: rows and columns skipped.
        self.c6 = nn.Conv2d(3, 2, 2, stride=3)
        # 1×1 with stride 2 and padding 1: the border of the output sees only padding.
        self.c7 = nn.Conv2d(3, 2, 1, stride=2, padding=1)

    def forward(self, x, y):
        n = OrderedDict()
        n["c1"] = self.c1(x)
        n["c2"] = self.c2(x)
        n["h"] = torch.cat([torch.tanh(n["c1"]), n["c2"]], dim=1)
        n["c3"] = self.c3(n["h"])
        n["c4"] = self.c4(n["c3"])
        n["c5"] = self.c5(y)
        n["c6"] = self.c6(x)
        n["c7"] = self.c7(x)
        return OrderedDict((k, n[k]) for k in ["c4", "c5", "c6", "c7"]), n


POOL_SRC = """
input x: [2, 7, 6] grad;
let c = conv2d(x, 2, kernel = 1, bias = false);
let r = relu(c);
let m1 = max_pool2d(x, 3, stride = 2);
let m2 = max_pool2d(r, 2);
let m3 = max_pool2d(x, kernel = 3, stride = 1);
let a1 = avg_pool2d(x, 2);
let a2 = avg_pool2d(r, 3, stride = 2);
output m1, m2, m3, a1, a2;
"""


class Pool(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 2, 1, bias=False)
        self.m1 = nn.MaxPool2d(3, stride=2)  # overlapping; 7×6 → 3×2 (floor)
        self.m2 = nn.MaxPool2d(2)  # 7×6 → 3×3 (floor); relu's zeros tie
        self.m3 = nn.MaxPool2d(3, stride=1)  # every input in up to 9 windows
        self.a1 = nn.AvgPool2d(2)
        self.a2 = nn.AvgPool2d(3, stride=2)

    def forward(self, x):
        n = OrderedDict()
        n["c"] = self.c(x)
        n["r"] = F.relu(n["c"])
        n["m1"] = self.m1(x)
        n["m2"] = self.m2(n["r"])
        n["m3"] = self.m3(x)
        n["a1"] = self.a1(x)
        n["a2"] = self.a2(n["r"])
        return OrderedDict((k, n[k]) for k in ["m1", "m2", "m3", "a1", "a2"]), n


def pool_x(rng, shape):
    # Multiples of 0.5 in [−1.5, 1.5]: a 3×3 window of 7 possible values ties often.
    x = quantized(0.5, -1.5, 1.5)(rng, shape)
    x[0, 0] = 0.25  # a constant plane: every window is one big tie
    x[1, 1, :, :] = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])  # every row alike: ties 2 rows apart
    return x


BN_FEATURES_SRC = """
input x: [5] grad;
input s: [3, 4] grad;
let fc = linear(x, 4);
let bn = batch_norm(fc);
let bn2 = batch_norm(x, momentum = 0.3, eps = 1e-3);
let bs = batch_norm(s, momentum = 0.05);
let h = concat(bn, bn2, fc, dim = 0);
let out = linear(h, 3);
output out, bs;
"""


class BnFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 4)
        self.bn = nn.BatchNorm1d(4)
        self.bn2 = nn.BatchNorm1d(5, momentum=0.3, eps=1e-3)
        self.bs = nn.BatchNorm1d(3, momentum=0.05)  # [B, C, L]: per channel C
        self.out = nn.Linear(13, 3)

    def forward(self, x, s):
        n = OrderedDict()
        n["fc"] = self.fc(x)
        n["bn"] = self.bn(n["fc"])
        n["bn2"] = self.bn2(x)
        n["bs"] = self.bs(s)
        # fc also feeds h directly: through the batch norm alone (training) the gradient of
        # fc.bias would be exactly 0, rounding noise on both sides.
        n["h"] = torch.cat([n["bn"], n["bn2"], n["fc"]], dim=1)
        n["out"] = self.out(n["h"])
        return OrderedDict(out=n["out"], bs=n["bs"]), n


BN_IMAGE_SRC = """
input x: [3, 4, 3] grad;
let c = conv2d(x, 4, kernel = 3, padding = 1, bias = false);
let bn = batch_norm(c, momentum = 0.2);
let r = relu(bn);
let bx = batch_norm(x);
let out = linear(flatten(r), 2);
output out, bx;
"""


class BnImage(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4, momentum=0.2)
        self.bx = nn.BatchNorm2d(3)
        self.out = nn.Linear(48, 2)

    def forward(self, x):
        n = OrderedDict()
        n["c"] = self.c(x)
        n["bn"] = self.bn(n["c"])
        n["r"] = F.relu(n["bn"])
        n["bx"] = self.bx(x)
        n["out"] = self.out(n["r"].flatten(1))
        return OrderedDict(out=n["out"], bx=n["bx"]), n


LAYER_NORM_SRC = """
input x: [6] grad;
input s: [4, 5] grad;
let ln1 = layer_norm(x);
let fc = linear(s, 5);
let ln2 = layer_norm(fc, eps = 1e-3);
let out = linear(ln1, 3);
output out, ln2;
"""


class LayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(6)
        self.fc = nn.Linear(5, 5)
        self.ln2 = nn.LayerNorm(5, eps=1e-3)
        self.out = nn.Linear(6, 3)

    def forward(self, x, s):
        n = OrderedDict()
        n["ln1"] = self.ln1(x)
        n["fc"] = self.fc(s)
        n["ln2"] = self.ln2(n["fc"])
        n["out"] = self.out(n["ln1"])
        return OrderedDict(out=n["out"], ln2=n["ln2"]), n


def layer_norm_x(rng, shape):
    x = rng.uniform(-2.0, 2.0, size=shape)
    x[0] = 0.75  # a constant row: variance 0, only eps keeps it finite
    x[1] *= 1e3  # large values
    return x


def recurrent_src(op):
    return f"""
input x: [5, 3] grad;
let l1 = {op}(x, hidden = 4);
let l2 = {op}(l1, hidden = 3);
let both = concat(l1, l2, dim = 1);
let h = last(both);
let out = linear(h, 2);
output out, l2;
"""


def recurrent_module(cls):
    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = cls(3, 4, batch_first=True)
            self.l2 = cls(4, 3, batch_first=True)
            self.out = nn.Linear(7, 2)

        def forward(self, x):
            n = OrderedDict()
            n["l1"], _ = self.l1(x)  # zero initial state (h0 = None)
            n["l2"], _ = self.l2(n["l1"])
            n["both"] = torch.cat([n["l1"], n["l2"]], dim=2)
            n["h"] = n["both"][:, -1]
            n["out"] = self.out(n["h"])
            return OrderedDict(out=n["out"], l2=n["l2"]), n

    Recurrent.__name__ = cls.__name__ + "Net"
    return Recurrent


DROPOUT_SRC = """
input x: [4, 6] grad;
let fc = linear(x, 6);
let d = dropout(fc, 0.4);
let out = linear(d, 3);
output out;
"""


class Dropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.d = nn.Dropout(0.4)
        self.out = nn.Linear(6, 3)

    def forward(self, x):
        n = OrderedDict()
        n["fc"] = self.fc(x)
        n["d"] = self.d(n["fc"])
        n["out"] = self.out(n["d"])
        return OrderedDict(out=n["out"]), n


TRAIN = [dict(file="data", training=True)]
EVAL = [dict(file="eval", training=False)]
# Batch norm: two training passes (buffers after each), then evaluation from the file.
BN_STEPS = [
    dict(file="data", training=True),
    dict(file="step2", training=True),
    dict(file="eval", training=False, fresh=True),
]

NETWORKS = [
    dict(name="conv", src=CONV_SRC, module=Conv, batch=3, seed=1, steps=TRAIN,
         inputs=[("x", (3, 7, 6), True, uniform(-1.0, 1.0)),
                 ("y", (2, 5, 5), True, uniform(-1.0, 1.0))]),
    dict(name="pool", src=POOL_SRC, module=Pool, batch=2, seed=2, steps=TRAIN,
         inputs=[("x", (2, 7, 6), True, pool_x)]),
    dict(name="bn_features", src=BN_FEATURES_SRC, module=BnFeatures, batch=6, seed=3,
         steps=BN_STEPS, num_batches_tracked=5,
         inputs=[("x", (5,), True, uniform(-2.0, 3.0)), ("s", (3, 4), True, normal(1.5))]),
    dict(name="bn_image", src=BN_IMAGE_SRC, module=BnImage, batch=3, seed=4,
         steps=BN_STEPS, num_batches_tracked=11,
         inputs=[("x", (3, 4, 3), True, uniform(-1.0, 2.0))]),
    dict(name="layer_norm", src=LAYER_NORM_SRC, module=LayerNorm, batch=3, seed=5,
         steps=TRAIN,
         inputs=[("x", (6,), True, layer_norm_x), ("s", (4, 5), True, uniform(-2.0, 2.0))]),
    dict(name="rnn", src=recurrent_src("rnn"), module=recurrent_module(nn.RNN), batch=3,
         seed=6, steps=TRAIN, inputs=[("x", (5, 3), True, uniform(-2.0, 2.0))]),
    dict(name="lstm", src=recurrent_src("lstm"), module=recurrent_module(nn.LSTM), batch=3,
         seed=7, steps=TRAIN, inputs=[("x", (5, 3), True, uniform(-2.0, 2.0))]),
    dict(name="gru", src=recurrent_src("gru"), module=recurrent_module(nn.GRU), batch=3,
         seed=8, steps=TRAIN, inputs=[("x", (5, 3), True, uniform(-2.0, 2.0))]),
    dict(name="dropout", src=DROPOUT_SRC, module=Dropout, batch=3, seed=9, steps=EVAL,
         inputs=[("x", (4, 6), True, uniform(-1.0, 1.0))]),
]


def owner(model, key):
    """The submodule holding state_dict entry `key`, and the entry's own name."""
    path, leaf = key.rsplit(".", 1)
    return model.get_submodule(path), leaf


def draw_state(model, rng, spec):
    """Every state_dict entry from the seeded stream: weights on PyTorch's default scale
    (U(±1/√fan_in), U(±1/√H) for recurrent layers), norm weights and biases away from
    their defaults 1 and 0, running statistics away from 0 and 1, the counter given."""
    state = OrderedDict()
    for key, t in model.state_dict().items():
        mod, leaf = owner(model, key)
        shape = tuple(t.shape)
        if leaf == "num_batches_tracked":
            state[key] = torch.tensor(spec["num_batches_tracked"], dtype=torch.int64)
            continue
        if leaf == "running_mean":
            v = rng.normal(0.0, 0.5, size=shape)
        elif leaf == "running_var":
            v = rng.uniform(0.5, 2.0, size=shape)
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
            v = rng.uniform(0.5, 1.5, size=shape) if leaf == "weight" else rng.uniform(-0.5, 0.5, size=shape)
        elif isinstance(mod, nn.RNNBase):
            b = 1.0 / math.sqrt(mod.hidden_size)
            v = rng.uniform(-b, b, size=shape)
        else:
            fan_in = int(np.prod(mod.weight.shape[1:]))
            b = 1.0 / math.sqrt(fan_in)
            v = rng.uniform(-b, b, size=shape)
        state[key] = torch.tensor(v, dtype=f64)
    return state


def one_pass(model, spec, rng, training):
    """Draws a batch and a d_out, runs forward and backward, and returns the data file's
    tensors."""
    batch = spec["batch"]
    model.train(training)
    model.zero_grad(set_to_none=True)
    I = OrderedDict()
    for n, shape, grad, g in spec["inputs"]:
        v = np.asarray(g(rng, (batch,) + tuple(shape)), dtype=np.float64)
        I[n] = torch.tensor(v, dtype=f64).requires_grad_(grad)
    outputs, nodes = model(**I)
    for t in nodes.values():
        if t.requires_grad:
            t.retain_grad()
    d_out = OrderedDict((n, torch.tensor(rng.normal(size=o.shape), dtype=f64)) for n, o in outputs.items())
    buffers = OrderedDict((n, b.detach().to(f64).clone()) for n, b in model.named_buffers())
    torch.autograd.backward(list(outputs.values()), list(d_out.values()))

    data = OrderedDict()
    for n, shape, grad, _ in spec["inputs"]:
        data["input." + n] = I[n].detach()
    for n, o in outputs.items():
        data["output." + n] = o.detach()
        data["d_out." + n] = d_out[n]
    for n, p in model.named_parameters():
        if p.grad is not None:
            data["grad." + n] = p.grad
    for n, shape, grad, _ in spec["inputs"]:
        if grad:
            data["input_grad." + n] = I[n].grad
    for n, t in nodes.items():
        data["value." + n] = t.detach()
        if t.grad is not None:
            data["residual." + n] = t.grad
    for n, b in buffers.items():
        data["buffer." + n] = b
    return data


def run_network(spec):
    rng = np.random.default_rng(3000 + spec["seed"])
    torch.manual_seed(spec["seed"])  # the modules' own init, overwritten below
    model = spec["module"]().to(f64)
    state = draw_state(model, rng, spec)
    model.load_state_dict(state, strict=True)
    src = spec["src"].strip()
    save(model.state_dict(), spec["name"] + ".params.safetensors", src)
    for step in spec["steps"]:
        if step.get("fresh"):
            model.load_state_dict(state, strict=True)
        data = one_pass(model, spec, rng, step["training"])
        mode = "training" if step["training"] else "evaluation (model.eval())"
        about = (f"bp::network! (#[dtype(f64)]) as in tests/pytorch_parity_layers.rs; "
                 f"PyTorch {torch.__version__}, float64, {mode}\n")
        save(data, data_file(spec["name"], step["file"]), about + src)


def data_file(name, step):
    return f"{name}.data.safetensors" if step == "data" else f"{name}.{step}.data.safetensors"


def save(tensors, filename, architecture=None):
    """One metadata key only: safetensors writes its metadata map in hash order, so several
    keys would make the bytes differ from run to run. `num_batches_tracked` keeps its dtype
    (int64) in a state_dict; everything else is float64."""
    path = os.path.join(OUT, filename)
    meta = None if architecture is None else {"architecture": architecture}
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, path, metadata=meta)
    os.chmod(path, 0o644)  # safetensors creates files readable by their owner only
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")


# ---------------------------------------------------------------------------- interop

BN_INTEROP_SRC = """
input x: [2, 6, 6];
let conv = conv2d(x, 3, kernel = 3, padding = 1, bias = false);
let bn = batch_norm(conv);
let pool = max_pool2d(relu(bn), 2);
let fc = linear(flatten(pool), 5, bias = false);
let bn1 = batch_norm(fc, momentum = 0.2);
let out = linear(relu(bn1), 3);
output out;
"""


class BnInterop(nn.Module):
    """PyTorch's side of `BnInterop` in tests/pytorch_parity_layers.rs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(27, 5, bias=False)  # no bias before a batch norm
        self.bn1 = nn.BatchNorm1d(5, momentum=0.2)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.out(F.relu(self.bn1(self.fc(h.flatten(1)))))


def interop_pass(model, x, d):
    model.zero_grad(set_to_none=True)
    y = model(x)
    buffers = OrderedDict((n, b.detach().to(f64).clone()) for n, b in model.named_buffers())
    y.backward(d)
    data = OrderedDict([("input.x", x), ("output.out", y.detach()), ("d_out.out", d)])
    for n, p in model.named_parameters():
        data["grad." + n] = p.grad
    for n, b in buffers.items():
        data["buffer." + n] = b
    return data


def interop():
    torch.manual_seed(2025)
    model = BnInterop().to(f64)
    gen = torch.Generator().manual_seed(11)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # real training: running statistics and a counter of 3
        x = torch.randn(8, 2, 6, 6, generator=gen, dtype=f64) * 1.5 + 0.3
        target = torch.randn(8, 3, generator=gen, dtype=f64)
        opt.zero_grad()
        F.mse_loss(model(x), target).backward()
        opt.step()
    path = os.path.join(OUT, "bn_interop.safetensors")
    # Exactly what a user does: no bp metadata, PyTorch's own names and dtypes.
    save_file(model.state_dict(), path)
    os.chmod(path, 0o644)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
    keys = list(model.state_dict().keys())
    about = (f"bp::network! (#[dtype(f64)]) as in tests/pytorch_parity_layers.rs; PyTorch "
             f"{torch.__version__}, float64; the module BnInterop of tools/make_layer_fixtures.py "
             f"(state_dict keys {keys})\n{BN_INTEROP_SRC.strip()}")
    model.eval()
    x = torch.randn(4, 2, 6, 6, generator=gen, dtype=f64)
    d = torch.randn(4, 3, generator=gen, dtype=f64)
    save(interop_pass(model, x, d), "bn_interop.eval.data.safetensors", "model.eval(): " + about)
    model.train()
    x = torch.randn(5, 2, 6, 6, generator=gen, dtype=f64) * 0.7 - 0.2
    d = torch.randn(5, 3, generator=gen, dtype=f64)
    save(interop_pass(model, x, d), "bn_interop.train.data.safetensors", "model.train(): " + about)


def load_bp_file(path):
    """PyTorch's load_state_dict(strict=True) of a file written by bp's `net.save` for
    BnInterop, and its evaluation outputs against the committed fixture."""
    sd = load_file(path)
    for k, v in sd.items():
        print(f"  {k}: {v.dtype} {tuple(v.shape)}")
    model = BnInterop().to(f64)
    model.load_state_dict(sd, strict=True)
    ref = load_file(os.path.join(OUT, "bn_interop.safetensors"))
    for k, v in model.state_dict().items():
        assert v.dtype == ref[k].dtype and v.shape == ref[k].shape and torch.equal(v, ref[k]), k
    model.eval()
    fx = load_file(os.path.join(OUT, "bn_interop.eval.data.safetensors"))
    with torch.no_grad():
        y = model(fx["input.x"])
    assert torch.equal(y, fx["output.out"]), (y - fx["output.out"]).abs().max()
    print(f"{path}: load_state_dict(strict=True) accepts it; the state equals "
          "bn_interop.safetensors bit for bit; eval outputs equal the fixture's")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--load-bp-file":
        load_bp_file(sys.argv[2])
        return
    os.makedirs(OUT, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    for spec in NETWORKS:
        run_network(spec)
    interop()


if __name__ == "__main__":
    main()
