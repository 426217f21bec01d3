#!/usr/bin/env python3
"""Random valid networks, gradient-checked (issue 9, point 4).

A seeded generator of random `bp::network!` descriptions over every operation of the
language, with consistent shapes: one to three inputs (vectors [F], sequences [T, F],
images [C, H, W], per-sample scalars []), fan-out (a value read by several nodes),
residual joins (a shape-preserving branch joined back to its input), every family mixed in
one network (dense, activations, arithmetic with broadcasting and `param`s, reductions,
softmax, structure, convolution, pooling, normalization, dropout, recurrent layers) and
several outputs. Each network is small (per-sample tensors of at most 160 elements, at
most 420 scalar parameters, a batch of 2 or 3) and is checked in f64 against five-point
central differences on every parameter and `grad` input.

Usage (Python 3.11, standard library only; run from anywhere):

    python3 tools/random_networks.py --seeds 0..200 --out tests/random_networks.rs
        Writes the CI set: one `mod seed_N` per network, each with its `#[test]`, and
        formats the file with rustfmt. The committed file is exactly this output.

    python3 tools/random_networks.py --check --seeds 1000..1400 [--jobs N] [--rounding F]
        Writes the networks of those seeds (`A..B`, `N`, comma-separated) into a
        throwaway crate under the cargo target directory ($CARGO_TARGET_DIR, else
        <repo>/target; never committed), runs it with `cargo test`, and prints the seeds
        whose check failed with the failing tensors (exit status 1 if any). `--rounding 0`
        checks with the bare criterion (see "The criterion"); `--bp PATH` tests another
        checkout of bp (a locally broken one, to see that the checks catch it).

    python3 tools/random_networks.py --print SEED
        Prints one network's description and test, to read or to shrink by hand.

The criterion. That of the existing gradient checks (`common::gradcheck` in
`tests/common/mod.rs`: five-point differences, h = 1e-4, |a − b| ≤ 1e-6·|b| +
1e-9·max|b|) plus `GradCheck`'s own bound on the rounding error of the difference
quotient, 16·ε·S/h with S = Σ|output ⊙ projection| (16 is `GradCheck`'s default; the
existing checks turn it off). Every evaluation of J is rounded to about ε·S, so the
quotient carries about ε·S/h ≈ 1e-11 of noise, more than 1e-6·|b| for the tensors whose
gradients are 1e-6 of J's scale or smaller that random networks routinely have (recurrent
weights behind squashing functions). With the bare criterion 11 of seeds 0..400 fail
(`--check --rounding 0`), every one by less than that bound (they pass with `16`).

How the test treats non-differentiable points (kinks). relu, abs, leaky_relu, elu,
min/max and max pooling are piecewise smooth: a finite difference is valid only when no
perturbation the gradient check makes moves a kink's argument across the kink (or
changes which element of a pooling window is the maximum). The generator applies those
operations only to values the generated API can read (`let` nodes and inputs through
`Network::value`, params through `Network::param`) and emits, per network, a function
that reads the *side* of every kink: the sign of each argument minus its kink, of each
min/max operand difference, and the index of each max-pool window's maximum. Before
checking, the test perturbs every parameter and `grad` input element by exactly the
offsets the check uses (±h, ±2h), and if any side changes, the draw is rejected and the
network is rebuilt and new inputs drawn with the next draw seed, at most `DRAWS` (10)
times; a network without a valid draw fails. This depends only on forward values, never
on gradients, so it cannot hide a wrong gradient. Exact ties of constants (relu of a
relu's zeros, dropped elements) stay ties under every perturbation and are differentiated
correctly, so they need no rejection; an exact tie between values that move differently
(two overlapping pooling windows sharing their maximum, then pooled again) is rejected.

Degenerate and vanishing gradients. Some compositions make a whole tensor's gradient 0
exactly or nearly (a bias before a batch norm, which subtracts it again; a per-sample
scalar before a softmax, which is shift-invariant; the sum of a softmax, which is 1; a
relu or min of a value that has one sign; x − dropout(x) in evaluation mode), or shrink it
to rounding noise (a softmax of a softmax, a saturated tanh, x³ of a scaled-down x).
They are identities, not bugs, and check nothing, so the generator keeps them out: it
tracks per value a rough magnitude, whether it takes both signs, and whether it carries a
parameter-dependent term constant along the batch or a row (through affine,
piecewise-linear and elementwise operations); normalizations and softmax read only values
without such a term, sum/mean no softmax or layer norm output, relu/min/max only values
of both signs over at least 3 elements, squashing functions only arguments scaled into
their non-flat range, recurrent layers only unsaturating inputs.

Dropout: the gradient check reseeds the network before every forward pass, so each pass
draws the same masks (`GradCheck`, "Randomness in the network"), as in
`tests/gradcheck_layers.rs`; so does the kink scan. A network with dropout or batch norm
is, for about a third of the seeds, checked a second time in evaluation mode (dropout the
identity, batch norm with running statistics from one training pass).

Not generated: f32 (the check is f64); kinks inside anonymous sub-expressions (their
values are not readable); a bias before batch norm (see above); the operations in the
specification's "additions decided since" (sin, cos, erf, embedding, matmul, transpose,
reshape, attention, …), which the language does not have yet.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The largest per-sample tensor and the most scalar parameters one network may hold:
# the check perturbs every parameter element (4 forward passes each, twice: the kink
# scan and the check itself), so this bounds its run time.
MAX_NUMEL = 160
MAX_PARAMS = 420
MAX_LINEAR_PARAMS = 160
# The factor of the gradient check's rounding floor (see `harness::gradcheck`).
ROUNDING = 16.0


@dataclass
class Val:
    """An input or a `let` node: a name, a per-sample shape and what the generator knows
    of its values (`Expr` has the same flags)."""

    name: str
    shape: tuple
    kind: str  # "input" | "node"
    mag: float = 1.5
    signed: bool = True
    rowconst: bool = False
    batchconst: bool = False
    rowsum: bool = False
    uses: int = 0
    op: str = ""

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class Expr:
    """Rust code of an elementwise formula, and what is known of its values:

    - `mag`: a rough bound on |value|, to keep exp, powers and squashing functions in
      their useful range (a saturated tanh passes gradients too small to check);
    - `signed`: takes both signs (relu, min and max of it are not constant);
    - `rowconst`: carries a term constant along the last dimension that depends on a
      parameter or a per-sample scalar (softmax, log_softmax and layer norm cancel it);
    - `batchconst`: carries a term constant over the batch that depends on a parameter
      (a bias; batch norm in training cancels it);
    - `rowsum`: its rows sum to a constant (softmax, layer norm), so its sum or mean
      does not depend on what it was computed from.
    """

    code: str
    mag: float = 1.5
    signed: bool = True
    rowconst: bool = False
    batchconst: bool = False
    rowsum: bool = False
    # Smooth functions applied so far in this formula: a second one only from those
    # whose slope at 0 is not 0, so that gradients do not shrink to rounding noise.
    depth: int = 0

    @staticmethod
    def of(v: Val, code: str) -> "Expr":
        return Expr(code, v.mag, v.signed, v.rowconst, v.batchconst, v.rowsum)

    def but(self, code: str, **kw) -> "Expr":
        e = Expr(
            code, self.mag, self.signed, self.rowconst, self.batchconst, self.rowsum, self.depth
        )
        for k, val in kw.items():
            setattr(e, k, val)
        return e


def merged(code: str, mag: float, *parts: Expr, signed=None) -> Expr:
    """A combination of `parts`: it carries every constant any of them carries, and
    takes both signs if all of them do (unless told)."""
    return Expr(
        code,
        mag,
        all(p.signed for p in parts) if signed is None else signed,
        any(p.rowconst for p in parts),
        any(p.batchconst for p in parts),
        any(p.rowsum for p in parts),
        max(p.depth for p in parts),
    )


@dataclass
class Network:
    seed: int
    inputs: list = field(default_factory=list)  # (Val, grad)
    items: list = field(default_factory=list)  # lines of the description
    outputs: list = field(default_factory=list)
    kinks: list = field(default_factory=list)  # Rust statements
    batch: int = 2
    eval_too: bool = False
    ops: set = field(default_factory=set)
    n_params: int = 0


def fmt(x: float) -> str:
    """A Rust float literal."""
    s = repr(float(x))
    return s if ("." in s or "e" in s) else s + ".0"


class Gen:
    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(f"bp-random-network-{seed}")
        self.net = Network(seed)
        self.values: list[Val] = []
        self.n_nodes = 0
        self.n_param_decls = 0
        self.has_bn = False
        self.has_dropout = False

    # ---- names and bookkeeping -------------------------------------------------------

    def use(self, v: Val) -> str:
        v.uses += 1
        return v.name

    def leaf(self, v: Val) -> Expr:
        return Expr.of(v, self.use(v))

    def define(self, e: Expr, shape, op: str = "") -> Val:
        name = f"n{self.n_nodes}"
        self.n_nodes += 1
        self.net.items.append(f"let {name} = {e.code};")
        v = Val(
            name,
            tuple(shape),
            "node",
            min(e.mag, 1e6),
            e.signed,
            e.rowconst,
            e.batchconst,
            e.rowsum,
            op=op,
        )
        self.values.append(v)
        return v

    def add_params(self, n: int):
        self.net.n_params += n

    def room(self, n: int) -> bool:
        return self.net.n_params + n <= MAX_PARAMS

    def pick(self, pred, prefer_unused=0.75):
        cands = [v for v in self.values if pred(v)]
        if not cands:
            return None
        unused = [v for v in cands if v.uses == 0]
        if unused and self.rng.random() < prefer_unused:
            return self.rng.choice(unused)
        return self.rng.choice(cands)

    def param(self, shape, init: str | None = None) -> str:
        """Declares a free `param` of `shape` and returns its name."""
        r = self.rng
        name = f"p{self.n_param_decls}"
        self.n_param_decls += 1
        if init is None:
            init = r.choice(
                [
                    "normal(0.5)",
                    "uniform(-1.0, 1.0)",
                    "uniform(0.5, 1.5)",
                    fmt(r.choice([0.7, -0.4, 1.3])),
                    "ones",
                    "zeros",
                ]
            )
        dims = ", ".join(str(d) for d in shape)
        self.net.items.append(f"param {name}: [{dims}] = {init};")
        self.add_params(max(1, math.prod(shape)))
        self.net.ops.add("param")
        return name

    # ---- elementwise formulas --------------------------------------------------------

    def tame(self, e: Expr, limit: float) -> Expr:
        """`e`, scaled by a literal so that its magnitude is at most about `limit`."""
        if e.mag <= limit:
            return e
        scale = next(s for s in (0.5, 0.2, 0.1) if e.mag * s <= limit or s == 0.1)
        return e.but(f"{_paren(e.code)} * {fmt(scale)}", mag=e.mag * scale)

    def smooth(self, e: Expr, leaf: bool = False) -> Expr:
        """A smooth nonlinear function of `e`, its argument scaled into the range where
        the function is not flat. Functions flat at 0 (x², x³, ln(x² + c), 1/(x² + 1))
        get neither a scaled argument nor one that already went through a function: a
        product of small slopes would leave gradients too small to check against
        rounding noise."""
        r = self.rng
        # (name, largest |argument|, flat at 0, make(code, mag) -> (code, mag, signed))
        opts = [
            ("sigmoid", 3.0, False, lambda c, m: (f"sigmoid({c})", 1.0, False)),
            ("tanh", 2.5, False, lambda c, m: (f"tanh({c})", 1.0, True)),
            ("gelu", 4.0, False, lambda c, m: (f"gelu({c})", m, True)),
            ("silu", 4.0, False, lambda c, m: (f"silu({c})", m, True)),
            ("softplus", 4.0, False, lambda c, m: (f"softplus({c})", m + 0.7, False)),
            ("sqrt", 4.0, False, lambda c, m: (f"sqrt(softplus({c}) + 0.1)", m**0.5 + 1, False)),
            ("pow", 3.0, False, lambda c, m: (f"pow(sigmoid({c}) + 0.5, 1.5)", 1.9, False)),
            ("pow", 4.0, False, lambda c, m: (f"pow(softplus({c}) + 0.5, -0.5)", 1.5, False)),
            ("exp", 1.5, False, lambda c, m: (f"exp({c})", math.exp(m), False)),
            ("sqrt", 2.0, False, lambda c, m: (f"sqrt(exp({c}) + 0.1)", math.exp(m / 2), False)),
            ("ln", 4.0, True, lambda c, m: (f"ln(pow({c}, 2) + 0.5)", max(0.7, 2 * m), True)),
            ("div", 3.0, True, lambda c, m: (f"1.0 / (pow({c}, 2) + 1.0)", 1.0, False)),
            ("pow", 2.5, True, lambda c, m: (f"pow({c}, 2)", m * m, False)),
        ]
        if leaf:
            opts.append(("pow", 1.6, True, lambda c, m: (f"pow({c}, 3)", m**3, True)))
            opts.append(("swish", 4.0, False, None))
        # Arguments are scaled by 0.1 at most (a smaller factor shrinks gradients).
        ok = [o for o in opts if e.mag * 0.1 <= o[1]]
        ok = [o for o in ok if not o[2] or (e.depth == 0 and e.mag <= o[1])]
        if e.depth > 0:
            # Composition only with functions whose slope stays near 1 somewhere.
            ok = [o for o in ok if o[0] in ("tanh", "gelu", "silu", "softplus", "exp")]
        if not ok:
            ok = [o for o in opts if o[0] == "gelu"]
        op, limit, _, make = r.choice(ok)
        self.net.ops.add(op)
        arg = self.tame(e, limit)
        if op == "swish":
            code, mag, signed = f"{_paren(arg.code)} * sigmoid({arg.code})", arg.mag, True
        else:
            code, mag, signed = make(arg.code, arg.mag)
        return Expr(code, mag, signed and e.signed, depth=e.depth + 1)

    def kink(self, v: Val, same: list) -> Expr:
        """A kink function of the readable value `v`, and the reading of its side.

        relu, min and max select: they are applied only to values that take both signs
        over at least 3 elements per sample, against operands of a comparable size (a
        param starting near 0, a literal near 0), so that no selection is the same for
        every element (which would cut a whole tensor's gradient to exactly 0)."""
        r = self.rng
        name = self.use(v)
        x = Expr.of(v, name)
        kinks = self.net.kinks
        choices = ["abs", "leaky_relu", "elu"]
        if v.signed and v.numel >= 3:
            choices += ["relu", "relu", "minmax", "minmax", "minmax"]
        k = r.choice(choices)
        if k != "minmax":
            self.net.ops.add(k)
            kinks.append(f'h::side(h::value(net, "{name}"), 0.0, sig);')
            form = {
                "relu": "",
                "abs": "",
                "leaky_relu": r.choice(["", ", 0.2", ", slope = 0.1", ", slope = 0.3"]),
                "elu": r.choice(["", ", alpha = 0.7", ", alpha = 1.5", ", 0.5"]),
            }[k]
            signed = v.signed and k in ("leaky_relu", "elu")
            return x.but(f"{k}({name}{form})", signed=signed)
        f = r.choice(["min", "max"])
        self.net.ops.add(f)
        close = lambda u: u.signed and u.mag <= 3 * v.mag and v.mag <= 3 * u.mag
        others = [u for u in same if u is not v and close(u)]
        scalars = [u for u in self.values if u.rank == 0 and u.mag <= v.mag]
        c = r.random()
        if others and c < 0.4:
            u = r.choice(others)
            kinks.append(
                f'h::pair(h::value(net, "{name}"), h::value(net, "{self.use(u)}"), sig);'
            )
            a, b = (name, u.name) if r.random() < 0.5 else (u.name, name)
            code = f"{f}({a}, {b})"
            return merged(code, max(v.mag, u.mag), x, Expr.of(u, u.name), signed=False)
        if scalars and c < 0.6:
            u = r.choice(scalars)
            kinks.append(
                f'h::pair_scalar(h::value(net, "{name}"), h::value(net, "{self.use(u)}"), sig);'
            )
            e = merged(f"{f}({name}, {u.name})", v.mag, x, Expr.of(u, u.name), signed=False)
            return e.but(e.code, rowconst=True)
        if c < 0.8:
            full = r.random() < 0.6
            init = r.choice(["uniform(-0.3, 0.3)", "normal(0.2)"])
            p = self.param(v.shape if full else (), init)
            kinks.append(f'h::pair_param(h::value(net, "{name}"), h::param(net, "{p}"), sig);')
            return x.but(
                f"{f}({name}, {p})", signed=False, batchconst=True, rowconst=x.rowconst or not full
            )
        lit = r.choice([0.0, 0.25, -0.5, 0.1])
        kinks.append(f'h::side(h::value(net, "{name}"), {fmt(lit)}, sig);')
        return x.but(f"{f}({name}, {fmt(lit)})", signed=False)

    def term(self, v: Val, same: list, kinks_ok: bool) -> Expr:
        r = self.rng
        x = r.random()
        if kinks_ok and x < 0.4:
            e = self.kink(v, same)
            if r.random() < 0.2:
                e = self.smooth_keep(e)
            return e
        leaf = self.leaf(v)
        if x < 0.85:
            return self.smooth_keep(leaf, leaf=True)
        c = r.choice([0.5, 2.0, -1.0, 3])
        if c == -1.0:
            self.net.ops.add("neg")
            return leaf.but(f"-{v.name}")
        return leaf.but(f"{v.name} * {c}", mag=v.mag * abs(c))

    def smooth_keep(self, e: Expr, leaf: bool = False) -> Expr:
        """A smooth function of `e` that keeps the constants `e` carries (a smooth function
        does not remove a term that is constant along the batch or a row: it bends it)."""
        s = self.smooth(e, leaf)
        s.rowconst, s.batchconst = e.rowconst, e.batchconst
        return s

    def join(self, a: Expr, b: Expr, sub: bool = True) -> Expr:
        r = self.rng
        op = r.choice(["+", "-", "*", "/"] if sub else ["+", "*", "/"])
        self.net.ops.add({"+": "add", "-": "sub", "*": "mul", "/": "div"}[op])
        if op == "+":
            return merged(f"{a.code} + {b.code}", math.hypot(a.mag, b.mag), a, b)
        if op == "-":
            return merged(f"{a.code} - {_paren(b.code)}", math.hypot(a.mag, b.mag), a, b)
        if op == "*":
            # A value of both signs times anything keeps both signs.
            signed = a.signed or b.signed
            code = f"{_paren(a.code)} * {_paren(b.code)}"
            return merged(code, a.mag * b.mag, a, b, signed=signed)
        bb = self.tame(b, 4.0)
        code = f"{_paren(a.code)} / (softplus({bb.code}) + 0.5)"
        return merged(code, a.mag * 2.0, a, bb, signed=a.signed)

    def broadcast(self, e: Expr, shape) -> Expr:
        """Combines `e` with a broadcast scalar: a [] node, a param, or a literal."""
        r = self.rng
        scalars = [u for u in self.values if u.rank == 0]
        x = r.random()
        op = r.choice(["+", "*", "-"])
        if scalars and shape != () and x < 0.4:
            u = r.choice(scalars)
            s = self.leaf(u)
            self.net.ops.add("broadcast")
            out = merged("", 0.0, e, s).but("", rowconst=True)
        elif x < 0.8:
            full = bool(shape) and r.random() < 0.5
            # A factor starts away from 0 (a path scaled by 0.01 is too small to check).
            init = None
            if op == "*":
                init = r.choice(["uniform(0.5, 1.5)", "ones", "0.7", "-1.3"])
            s = Expr(self.param(shape if full else (), init), 1.5)
            out = merged("", 0.0, e).but("", batchconst=True, rowconst=e.rowconst or not full)
        else:
            s = Expr(fmt(r.choice([0.5, 1.5, -2.0])), 2.0)
            op = r.choice(["+", "*"])
            out = e.but("")
        out.code = f"{_paren(e.code)} {op} {s.code}"
        out.mag = e.mag * s.mag if op == "*" else math.hypot(e.mag, s.mag)
        out.signed = e.signed and op == "*"
        return out

    def formula(self, main: list, kinks_ok: bool) -> Expr:
        """An elementwise formula over `main` (values of one shape)."""
        r = self.rng
        shape = main[0].shape
        terms = [self.term(v, main, kinks_ok) for v in main]
        e = terms[0]
        for t in terms[1:]:
            e = self.join(e, t)
        if r.random() < 0.35:
            e = self.broadcast(e, shape)
        if r.random() < 0.15:
            e = self.smooth_keep(e)
        return self.tame(e, 8.0)

    # ---- steps -------------------------------------------------------------------------

    def step_elementwise(self):
        r = self.rng
        v = self.pick(lambda v: True)
        same = [u for u in self.values if u.shape == v.shape and u is not v]
        main = [v]
        for _ in range(r.choice([0, 0, 1, 1, 2])):
            if not same:
                break
            u = r.choice(same)
            same.remove(u)
            main.append(u)
        return self.define(self.formula(main, kinks_ok=True), v.shape)

    def pre(self, v: Val) -> Expr:
        """The argument of a layer: the value itself, or now and then a kink-free formula
        (an anonymous node, whose value is not readable)."""
        if self.rng.random() < 0.15:
            return self.formula([v], kinks_ok=False)
        return self.leaf(v)

    def step_linear(self, v: Val | None = None, out: int | None = None):
        r = self.rng
        if v is None:
            v = self.pick(lambda v: v.rank >= 1)
        inp = v.shape[-1]
        out = out or r.randint(2, 6)
        if inp * out > MAX_LINEAR_PARAMS:
            out = max(1, MAX_LINEAR_PARAMS // inp)
        shape = v.shape[:-1] + (out,)
        if math.prod(shape) > MAX_NUMEL or not self.room(inp * out + out):
            return None
        bias = r.random() < 0.8
        x = self.pre(v)
        self.add_params(inp * out + (out if bias else 0))
        self.net.ops.add("linear" if bias else "linear(bias=false)")
        hyper = "" if bias else ", bias = false"
        e = Expr(
            f"linear({x.code}, {out}{hyper})",
            0.7 * x.mag + 0.5,
            x.signed,
            rowconst=False,
            batchconst=x.batchconst or bias,
        )
        return self.define(e, shape)

    def step_conv(self, v: Val | None = None, same_shape=False):
        r = self.rng
        v = v or self.pick(lambda v: v.rank == 3)
        if v is None:
            return None
        c, h, w = v.shape
        for _ in range(20):
            if same_shape:
                k, stride, pad, out = r.choice([(1, 1, 0), (3, 1, 1)]) + (c,)
            else:
                k = r.choice([1, 2, 3, 3])
                stride = r.choice([1, 1, 2])
                # At most k // 2, as PyTorch requires: a window never holds only padding.
                pad = min(r.choice([0, 0, 1]), k // 2)
                out = r.randint(1, 4)
            if k > h + 2 * pad or k > w + 2 * pad:
                continue
            ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
            n = out * c * k * k
            if out * ho * wo > MAX_NUMEL or ho * wo < 2 or not self.room(n + out):
                continue
            break
        else:
            return None
        bias = r.random() < 0.75
        forms = [f"kernel = {k}"] if r.random() < 0.6 else [f"{k}"]
        if stride != 1 or r.random() < 0.2:
            forms.append(f"stride = {stride}")
        if pad != 0 or r.random() < 0.2:
            forms.append(f"padding = {pad}")
        if not bias:
            forms.append("bias = false")
        x = self.pre(v)
        self.add_params(n + (out if bias else 0))
        self.net.ops.add("conv2d")
        self.net.ops.add(f"conv2d(k={k},s={stride},p={pad})")
        e = Expr(
            f"conv2d({x.code}, {out}, {', '.join(forms)})",
            0.7 * x.mag + 0.5,
            x.signed,
            rowconst=x.rowconst or bias,
            batchconst=x.batchconst or bias,
        )
        return self.define(e, (out, ho, wo))

    def step_pool(self):
        r = self.rng
        v = self.pick(lambda v: v.rank == 3 and min(v.shape[1:]) >= 2)
        if v is None:
            return None
        c, h, w = v.shape
        k = r.choice([2, 2, 3, 1]) if min(h, w) >= 3 else r.choice([2, 1])
        stride = r.choice([k, k, 1, 2]) if k > 1 else 1
        ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
        if ho * wo < 2 and k > 1:
            k, stride, ho, wo = 1, 1, h, w
        kind = r.choice(["max_pool2d", "max_pool2d", "avg_pool2d"])
        form = r.choice([f"{k}", f"kernel = {k}", f"{k}, stride = {stride}", f"{k}, {stride}"])
        if stride != k and form in (f"{k}", f"kernel = {k}"):
            form = f"kernel = {k}, stride = {stride}"
        self.net.ops.add(kind)
        name = self.use(v)
        e = Expr.of(v, f"{kind}({name}, {form})")
        if kind == "max_pool2d":
            self.net.kinks.append(
                f'h::pool(h::value(net, "{name}"), [{c}, {h}, {w}], {k}, {stride}, sig);'
            )
            # The maximum of a window of both signs is mostly positive.
            e.signed = k == 1 and v.signed
        return self.define(e, (c, ho, wo))

    def step_norm(self, v: Val | None = None, kind: str | None = None):
        """batch_norm or layer_norm of a value that carries no constant it would cancel."""
        r = self.rng
        kind = kind or r.choice(["batch_norm", "layer_norm"])
        if kind == "layer_norm":
            ok = lambda v: v.rank >= 1 and v.shape[-1] >= 3 and not v.rowconst
        else:
            ok = lambda v: v.rank >= 1 and not v.batchconst
        v = self.pick(ok) if v is None else v if ok(v) else None
        if v is None:
            return None
        ch = v.shape[0] if kind == "batch_norm" else v.shape[-1]
        if not self.room(2 * ch):
            return None
        hyper = ""
        if kind == "batch_norm":
            self.has_bn = True
            hyper = r.choice(
                ["", "", ", momentum = 0.3", ", eps = 0.001", ", momentum = 0.5, eps = 0.0001"]
            )
        elif r.random() < 0.3:
            hyper = ", eps = 0.001"
        self.add_params(2 * ch)
        self.net.ops.add(kind)
        e = Expr(
            f"{kind}({self.use(v)}{hyper})",
            3.0,
            True,
            # Batch norm's weight and bias are per channel: constant along a row of a
            # [C, …] value. Layer norm's are per feature of the row.
            rowconst=kind == "batch_norm" and v.rank >= 2,
            batchconst=True,
            rowsum=kind == "layer_norm",
        )
        return self.define(e, v.shape)

    def step_dropout(self, v: Val | None = None):
        r = self.rng
        v = v or self.pick(lambda v: v.rank >= 1)
        if v is None:
            return None
        # Small tensors are never dropped whole (a gradient that is zero everywhere).
        p = r.choice([0.1, 0.25, 0.5, 0.0] if v.numel >= 8 else [0.1, 0.25, 0.0])
        form = f"{fmt(p)}" if r.random() < 0.5 else f"p = {fmt(p)}"
        self.has_dropout = True
        self.net.ops.add("dropout")
        x = self.pre(v)
        return self.define(x.but(f"dropout({x.code}, {form})", mag=x.mag / (1 - p)), v.shape)

    def step_softmax(self, v: Val | None = None):
        r = self.rng
        # Not of a softmax: its outputs are too close together for a second softmax to
        # pass on more than a sliver of the gradient.
        def ok(v):
            return v.rank >= 1 and v.shape[-1] >= 3 and not v.rowconst and v.op != "softmax"

        v = self.pick(ok) if v is None else v if ok(v) else None
        if v is None:
            return None
        kind = r.choice(["softmax", "log_softmax"])
        x = self.tame(self.leaf(v), 4.0)
        self.net.ops.add(kind)
        if kind == "softmax":
            e = Expr(f"softmax({x.code})", 1.0, False, rowsum=True)
            return self.define(e, v.shape, "softmax")
        mag = 2 * x.mag + math.log(v.shape[-1])
        return self.define(Expr(f"log_softmax({x.code})", mag, False), v.shape)

    def step_reduce(self):
        r = self.rng
        v = self.pick(lambda v: v.rank >= 1 and v.numel >= 2)
        if v is None:
            return None
        kind = r.choice(["sum", "mean"])
        x = self.pre(v)
        if x.rowsum:
            x = self.smooth_keep(x)
        self.net.ops.add(kind)
        if kind == "sum":
            mag = x.mag * (math.sqrt(v.numel) if x.signed else 0.6 * v.numel)
        else:
            mag = x.mag
        return self.define(x.but(f"{kind}({x.code})", mag=mag, rowsum=False), ())

    def step_concat(self):
        r = self.rng
        groups = {}
        for v in self.values:
            for d in range(v.rank):
                key = (v.rank, d, v.shape[:d] + v.shape[d + 1 :])
                groups.setdefault(key, []).append(v)
        keys = [k for k, vs in groups.items() if len(vs) >= 2]
        if not keys:
            return None
        key = r.choice(keys)
        vs = groups[key]
        unused = [v for v in vs if v.uses == 0]
        n = r.choice([2, 2, 3])
        chosen = []
        pool = unused + [v for v in vs if v not in unused]
        for v in pool:
            if len(chosen) < n and (v in unused or r.random() < 0.6):
                chosen.append(v)
        while len(chosen) < 2:
            chosen.append(r.choice(vs))
        r.shuffle(chosen)
        rank, d, _ = key
        shape = list(chosen[0].shape)
        shape[d] = sum(v.shape[d] for v in chosen)
        if math.prod(shape) > MAX_NUMEL:
            return None
        parts = [self.leaf(v) for v in chosen]
        hyper = "" if (d == 0 and r.random() < 0.5) else f", dim = {d}"
        self.net.ops.add(f"concat(dim={d},rank={rank})")
        self.net.ops.add("concat")
        code = f"concat({', '.join(p.code for p in parts)}{hyper})"
        return self.define(merged(code, max(p.mag for p in parts), *parts), shape)

    def step_flatten(self):
        v = self.pick(lambda v: v.rank >= 2)
        if v is None:
            return None
        self.net.ops.add("flatten")
        return self.define(Expr.of(v, f"flatten({self.use(v)})"), (v.numel,))

    def step_last(self):
        v = self.pick(lambda v: v.rank == 2)
        if v is None:
            return None
        self.net.ops.add("last")
        return self.define(Expr.of(v, f"last({self.use(v)})"), (v.shape[1],))

    def step_recurrent(self, v: Val | None = None, hidden: int | None = None):
        r = self.rng
        # Inputs in the range where the gates are not saturated, taken as they are.
        v = v or self.pick(lambda v: v.rank == 2 and v.mag <= 4.0)
        if v is None or v.mag > 4.0:
            return None
        t, f = v.shape
        kind = r.choice(["rnn", "lstm", "gru"])
        g = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
        hidden = hidden or r.randint(3, 4)
        n = g * hidden * (f + hidden) + 2 * g * hidden
        if not self.room(n) or t * hidden > MAX_NUMEL:
            return None
        x = self.leaf(v)
        self.add_params(n)
        self.net.ops.add(kind)
        return self.define(Expr(f"{kind}({x.code}, hidden = {hidden})", 1.0, v.signed), (t, hidden))

    def step_residual(self):
        """A shape-preserving branch added back to its input: x + f(x)."""
        r = self.rng
        v = self.pick(lambda v: v.rank >= 1, prefer_unused=0.5)
        if v is None:
            return None
        choices = ["linear", "norm", "dropout", "softmax"]
        if v.rank == 3:
            choices += ["conv", "conv"]
        if v.rank == 2:
            choices += ["recurrent"]
        kind = r.choice(choices)
        if kind == "linear":
            b = self.step_linear(v, out=v.shape[-1])
        elif kind == "conv":
            b = self.step_conv(v, same_shape=True)
        elif kind == "norm":
            b = self.step_norm(v, "layer_norm" if r.random() < 0.5 else "batch_norm")
        elif kind == "dropout":
            b = self.step_dropout(v)
        elif kind == "softmax":
            b = self.step_softmax(v)
        else:
            b = self.step_recurrent(v, hidden=v.shape[1])
        if b is None or b.shape != v.shape:
            return None
        self.net.ops.add("residual")
        branch = self.leaf(b)
        bent = r.random() < 0.5
        if bent:
            branch = self.smooth_keep(branch)
        # x − dropout(x) is exactly 0 in evaluation mode: no gradient to check.
        sub = bent or kind != "dropout"
        return self.define(self.join(self.leaf(v), branch, sub), v.shape)

    # ---- the network -------------------------------------------------------------------

    def make_input(self, i: int, family: str) -> Val:
        r = self.rng
        if family == "vector":
            shape = (r.randint(2, 8),)
        elif family == "sequence":
            # At least 3 steps: with 2, weight_hh only sees the first step's small state.
            shape = (r.randint(3, 4), r.randint(2, 5))
        elif family == "image":
            shape = (r.randint(1, 3), r.randint(3, 6), r.randint(3, 6))
        else:
            shape = ()
        return Val(f"x{i}", shape, "input")

    def generate(self) -> Network:
        r = self.rng
        net = self.net
        n_inputs = r.choice([1, 1, 2, 2, 2, 3, 3])
        families = ["vector", "sequence", "image"]
        for i in range(n_inputs):
            fam = r.choice(families + (["scalar"] if i > 0 else []))
            v = self.make_input(i, fam)
            grad = i == 0 or r.random() < 0.5
            net.inputs.append((v, grad))
            self.values.append(v)
            net.ops.add(f"input:{fam}")
        steps = {
            "elementwise": 4.0,
            "linear": 2.5,
            "residual": 1.5,
            "conv": 2.0,
            "pool": 1.3,
            "norm": 1.5,
            "dropout": 0.8,
            "softmax": 1.0,
            "reduce": 1.0,
            "concat": 1.5,
            "flatten": 1.0,
            "last": 0.8,
            "recurrent": 1.6,
        }
        n_steps = r.randint(5, 9)
        done = tries = 0
        while done < n_steps and tries < 60:
            tries += 1
            kind = r.choices(list(steps), weights=list(steps.values()))[0]
            if getattr(self, f"step_{kind}")() is not None:
                done += 1
        # Every input is read, and at least one layer has parameters.
        for v, _ in net.inputs:
            if v.uses == 0:
                self.consume(v)
        if net.n_params == 0:
            self.step_linear(self.pick(lambda v: v.rank >= 1))
        # Outputs: every node nothing reads; merged when there are many.
        loose = [v for v in self.values if v.kind == "node" and v.uses == 0]
        while len(loose) > 3:
            a, b = loose.pop(), loose.pop()
            loose.append(self.merge(a, b))
        outs = [v.name for v in loose]
        if len(outs) == 1 and r.random() < 0.4:
            used = [v for v in self.values if v.kind == "node" and v.uses > 0]
            if used:
                outs.insert(r.randrange(2), r.choice(used).name)
                net.ops.add("output also read")
        if len(outs) > 1:
            net.ops.add("several outputs")
        net.outputs = outs
        if any(v.uses >= 2 for v in self.values):
            net.ops.add("fan-out")
        if len(net.inputs) > 1:
            net.ops.add("several inputs")
        net.batch = 3 if self.has_bn else r.choice([2, 3])
        net.eval_too = (self.has_bn or self.has_dropout) and r.random() < 0.35
        return net

    def consume(self, v: Val):
        """Reads an input no step has read yet."""
        r = self.rng
        if v.rank == 0:
            others = [u for u in self.values if u.kind == "node" and u.rank >= 1]
            if others:
                u = r.choice(others)
                e = self.join(self.leaf(u), self.smooth(self.leaf(v)))
                self.define(e.but(e.code, rowconst=True), u.shape)
                return
            self.define(self.formula([v], kinks_ok=True), ())
            return
        if r.random() < 0.5 and self.step_linear(v) is not None:
            return
        self.define(self.formula([v], kinks_ok=True), v.shape)

    def merge(self, a: Val, b: Val) -> Val:
        """One [] node from two loose values (too many outputs otherwise)."""
        r = self.rng
        self.net.ops.add("merge")
        parts = []
        for v in (a, b):
            if v.rank == 0:
                parts.append(self.leaf(v))
            else:
                inner = self.leaf(v)
                if v.rowsum:
                    inner = self.smooth_keep(inner)
                parts.append(inner.but(f"mean({inner.code})", rowsum=False))
        code = " + ".join(p.code for p in parts)
        return self.define(merged(code, math.hypot(a.mag, b.mag), *parts), ())


def _atomic(code: str) -> bool:
    """Whether `code` needs no parentheses as an operand: a name or one call."""
    name_or_call = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\(.*\))?", code) is not None
    return name_or_call and _balanced_call(code)


def _balanced_call(code: str) -> bool:
    """Whether `code` is a name or a single call `f(…)` (its parentheses close at the end)."""
    if "(" not in code:
        return True
    depth = 0
    for i, ch in enumerate(code):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and i != len(code) - 1:
                return False
    return True


def _paren(code: str) -> str:
    return code if _atomic(code) else f"({code})"


# ---- emission ---------------------------------------------------------------------------

HEADER = """\
//! Random valid networks, gradient-checked: GENERATED by `tools/random_networks.py
//! --seeds {seeds} --out tests/random_networks.rs`; do not edit, regenerate (the script's
//! docstring explains the generator; `--check --seeds A..B` runs other seeds).
//!
//! One module per seed: a random DAG over every family of operations (several inputs and
//! outputs, fan-out, residual joins, broadcast scalars and params), checked in f64 against
//! five-point central differences on every parameter and `grad` input with the criterion
//! of `common::gradcheck` plus the checker's rounding bound (`harness::gradcheck`), in
//! training mode and for some networks with dropout or batch norm also in evaluation
//! mode. Draws whose perturbations would carry a kink's argument across its kink are
//! rejected first (`harness::run`), from the forward values alone.
//!
//! Coverage of the CI set (operations and patterns, networks using each):
{coverage}

mod common;

/// What every generated network's test runs.
#[allow(dead_code)] // a set of seeds need not use every kind of kink
mod harness {{
    use super::common::random;
    use bp::check::GradCheck;
    use bp::{{Network, Tensor}};

    /// The factor of `GradCheck`'s bound on the rounding error of the difference quotient
    /// itself, ROUNDING·ε·S/h (S = Σ|output ⊙ projection|; 16 is `GradCheck`'s default).
    const ROUNDING: f64 = {rounding};

    /// The criterion of `common::gradcheck` — five-point differences with h = 1e-4,
    /// |a − b| ≤ 1e-6·|b| + 1e-9·max|b| — plus that rounding bound. The sum J is
    /// rounded to about ε·S on every evaluation, so the difference quotient is uncertain
    /// by about ε·S/h (≈ 1e-11 here), which exceeds 1e-6·|b| for the tensors a random
    /// network routinely has whose gradients are 1e-6 of J's scale or smaller (deep
    /// recurrent weights, paths through squashing functions).
    /// `tools/random_networks.py --check --rounding 0` runs the bare criterion.
    pub fn gradcheck<N: Network<Scalar = f64>>(net: &mut N, inputs: &[&Tensor<f64>]) {{
        let report = GradCheck::new()
            .five_point(true)
            .step(1e-4)
            .rtol(1e-6)
            .atol(1e-9)
            .rounding(ROUNDING)
            .run(net, inputs)
            .expect("the gradient check runs");
        assert!(report.passed(), "{{report}}");
    }}

    /// The perturbations of the gradient check (`common::gradcheck`: five-point central
    /// differences, h = 1e-4): a draw is valid when none of them moves a kink's argument
    /// across its kink.
    const OFFSETS: [f64; 4] = [-2e-4, -1e-4, 1e-4, 2e-4];
    /// How many draws (network seed and inputs) a test tries before it fails.
    pub const DRAWS: u64 = 10;

    /// Builds network `seed` with the parameters and inputs of successive draws until one
    /// keeps every kink on its side under every perturbation of the check, then checks it
    /// (and, with `eval_too`, checks it again in evaluation mode after one training pass).
    pub fn run<N: Network<Scalar = f64>>(
        make: fn(u64) -> N,
        kinks: fn(&N, &mut Vec<i64>),
        grad_inputs: &[usize],
        seed: u64,
        batch: usize,
        eval_too: bool,
    ) {{
        let mut rejected = Vec::new();
        for draw in 0..DRAWS {{
            let s = seed * 1000 + draw;
            let mut net = make(s);
            let inputs: Vec<Tensor<f64>> = N::INPUTS
                .iter()
                .enumerate()
                .map(|(i, (_, shape))| {{
                    let mut full = vec![batch];
                    full.extend_from_slice(shape);
                    random(&full, -1.5, 1.5, s * 16 + i as u64)
                }})
                .collect();
            let refs: Vec<&Tensor<f64>> = inputs.iter().collect();
            if let Some(why) = crosses_kink(&mut net, kinks, &inputs, grad_inputs) {{
                rejected.push(why);
                continue;
            }}
            if eval_too {{
                let mut eval = make(s);
                eval.forward_dyn(&refs).expect("forward");
                eval.set_training(false);
                if let Some(why) = crosses_kink(&mut eval, kinks, &inputs, grad_inputs) {{
                    rejected.push(format!("evaluation mode: {{why}}"));
                    continue;
                }}
                gradcheck(&mut net, &refs);
                gradcheck(&mut eval, &refs);
            }} else {{
                gradcheck(&mut net, &refs);
            }}
            if !rejected.is_empty() {{
                eprintln!("seed {{seed}}: draw {{draw}} checked; rejected: {{rejected:?}}");
            }}
            return;
        }}
        panic!("no draw of {{DRAWS}} keeps the kinks on their sides: {{rejected:#?}}");
    }}

    /// `Some(what)` when a perturbation of the check changes a kink's side.
    fn crosses_kink<N: Network<Scalar = f64>>(
        net: &mut N,
        kinks: fn(&N, &mut Vec<i64>),
        inputs: &[Tensor<f64>],
        grad_inputs: &[usize],
    ) -> Option<String> {{
        let sides = |net: &mut N, inputs: &[Tensor<f64>]| {{
            let refs: Vec<&Tensor<f64>> = inputs.iter().collect();
            net.reseed(0);
            net.forward_dyn(&refs).expect("forward");
            let mut sig = Vec::new();
            kinks(net, &mut sig);
            sig
        }};
        let base = sides(net, inputs);
        if base.is_empty() {{
            return None;
        }}
        for name in net.param_names() {{
            let n = net.param(name).map_or(0, |p| p.len());
            for i in 0..n {{
                let v = net.param(name).expect("param")[i];
                for off in OFFSETS {{
                    net.param_mut(name).expect("param").as_mut_slice()[i] = v + off;
                    let moved = sides(net, inputs) != base;
                    net.param_mut(name).expect("param").as_mut_slice()[i] = v;
                    if moved {{
                        return Some(format!("{{name}}[{{i}}] {{off:+e}}"));
                    }}
                }}
            }}
        }}
        let mut inputs = inputs.to_vec();
        for &k in grad_inputs {{
            for i in 0..inputs[k].len() {{
                let v = inputs[k][i];
                for off in OFFSETS {{
                    inputs[k].as_mut_slice()[i] = v + off;
                    let moved = sides(net, &inputs) != base;
                    inputs[k].as_mut_slice()[i] = v;
                    if moved {{
                        return Some(format!("{{}}[{{i}}] {{off:+e}}", N::INPUTS[k].0));
                    }}
                }}
            }}
        }}
        None
    }}

    pub fn value<'a, N: Network<Scalar = f64>>(net: &'a N, name: &str) -> &'a Tensor<f64> {{
        net.value(name).expect("every let node and input is readable")
    }}

    pub fn param<'a, N: Network<Scalar = f64>>(net: &'a N, name: &str) -> &'a Tensor<f64> {{
        net.param(name).expect("a declared param")
    }}

    fn sign(d: f64) -> i64 {{
        i64::from(d > 0.0) - i64::from(d < 0.0)
    }}

    /// The side of each element of `t` relative to `kink`.
    pub fn side(t: &Tensor<f64>, kink: f64, sig: &mut Vec<i64>) {{
        sig.extend(t.iter().map(|&v| sign(v - kink)));
    }}

    /// min/max of two values of one shape: which one is larger, per element.
    pub fn pair(a: &Tensor<f64>, b: &Tensor<f64>, sig: &mut Vec<i64>) {{
        assert_eq!(a.shape(), b.shape());
        sig.extend(a.iter().zip(b.iter()).map(|(x, y)| sign(x - y)));
    }}

    /// min/max of a value and a per-sample scalar (a `[]` node, shape `[B]`).
    pub fn pair_scalar(a: &Tensor<f64>, s: &Tensor<f64>, sig: &mut Vec<i64>) {{
        let per = a.len() / s.len();
        sig.extend(a.iter().enumerate().map(|(i, x)| sign(x - s[i / per])));
    }}

    /// min/max of a value and a param shared by every sample (its shape or `[]`).
    pub fn pair_param(a: &Tensor<f64>, p: &Tensor<f64>, sig: &mut Vec<i64>) {{
        sig.extend(a.iter().enumerate().map(|(i, x)| sign(x - p[i % p.len()])));
    }}

    /// Max pooling: the position of each window's first maximum.
    pub fn pool(t: &Tensor<f64>, [c, h, w]: [usize; 3], k: usize, s: usize, sig: &mut Vec<i64>) {{
        let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1);
        let batch = t.len() / (c * h * w);
        for plane in t.chunks_exact(h * w).take(batch * c) {{
            for oy in 0..ho {{
                for ox in 0..wo {{
                    let mut best = (f64::NEG_INFINITY, 0);
                    for dy in 0..k {{
                        for dx in 0..k {{
                            let v = plane[(oy * s + dy) * w + ox * s + dx];
                            if v > best.0 {{
                                best = (v, dy * k + dx);
                            }}
                        }}
                    }}
                    sig.push(best.1 as i64);
                }}
            }}
        }}
    }}
}}
"""


def emit_module(net: Network) -> str:
    ind = " " * 12
    ops = sorted(o for o in net.ops if "(" not in o and ":" not in o)
    lines = [f"/// Seed {net.seed}: {', '.join(ops)}."]
    lines.append(f"mod seed_{net.seed} {{")
    lines.append("    use super::harness as h;")
    lines.append("")
    lines.append("    bp::network! {")
    lines.append("        #[dtype(f64)]")
    lines.append("        pub struct Net {")
    for v, grad in net.inputs:
        dims = ", ".join(str(d) for d in v.shape)
        lines.append(f"{ind}input {v.name}: [{dims}]{' grad' if grad else ''};")
    for item in net.items:
        lines.append(ind + item)
    lines.append(f"{ind}output {', '.join(net.outputs)};")
    lines.append("        }")
    lines.append("    }")
    lines.append("")
    if net.kinks:
        lines.append("    /// The side of every kink's argument (see `harness::run`).")
        lines.append("    fn kinks(net: &Net, sig: &mut Vec<i64>) {")
        for k in net.kinks:
            lines.append("        " + k)
        lines.append("    }")
    else:
        lines.append("    /// No kinks in this network.")
        lines.append("    fn kinks(_: &Net, _: &mut Vec<i64>) {}")
    grads = ", ".join(str(i) for i, (_, g) in enumerate(net.inputs) if g)
    lines.append("")
    lines.append("    #[test]")
    lines.append("    fn gradcheck() {")
    eval_too = "true" if net.eval_too else "false"
    lines.append(
        f"        h::run(Net::new, kinks, &[{grads}], {net.seed}, {net.batch}, {eval_too});"
    )
    lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(seed: int) -> Network:
    return Gen(seed).generate()


def coverage(nets: list) -> str:
    counts = {}
    for n in nets:
        for o in n.ops:
            counts[o] = counts.get(o, 0) + 1
        if n.eval_too:
            counts["evaluation mode"] = counts.get("evaluation mode", 0) + 1
    items = [f"{k} {v}," for k, v in sorted(counts.items())]
    items[-1] = items[-1].rstrip(",") + "."
    out, line = [], "//!"
    for it in items:
        if len(line) + len(it) + 1 > 92:
            out.append(line)
            line = "//!"
        line += f" {it}"
    out.append(line)
    return "\n".join(out)


def render(seeds: list, rounding: float = ROUNDING) -> tuple[str, list]:
    nets = [generate(s) for s in seeds]
    text = HEADER.format(seeds=describe(seeds), coverage=coverage(nets), rounding=fmt(rounding))
    for n in nets:
        text += "\n" + emit_module(n)
    return text, nets


def rustfmt(path: Path):
    subprocess.run(["rustfmt", "--edition", "2021", str(path)], check=True, cwd=ROOT)


def parse_seeds(s: str) -> list:
    """`A..B` (B excluded), single seeds, or both, separated by commas: `0..10,15`."""
    seeds = []
    for part in s.split(","):
        m = re.fullmatch(r"(\d+)\.\.(\d+)", part.strip())
        if m and int(m.group(1)) < int(m.group(2)):
            seeds.extend(range(int(m.group(1)), int(m.group(2))))
        elif part.strip().isdigit():
            seeds.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"expected A..B or N, comma-separated, got {s!r}")
    return seeds


def describe(seeds: list) -> str:
    """`A..B` for a contiguous range, else the list."""
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}..{seeds[-1] + 1}"
    return ",".join(str(s) for s in seeds)


def check(seeds: list, jobs: int | None, bp: Path, rounding: float) -> int:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    crate = target / "random-networks-check"
    tests = crate / "tests"
    tests.mkdir(parents=True, exist_ok=True)
    (crate / "src").mkdir(exist_ok=True)
    (crate / "src" / "lib.rs").write_text("")
    # A workspace of its own, with the repository's profiles, so it builds like the
    # repository's tests (and reuses the same target directory).
    (crate / "Cargo.toml").write_text(
        f"""[package]
name = "random-networks-check"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
bp = {{ path = "{bp}" }}

[workspace]

[profile.dev.package."*"]
opt-level = 2

[profile.test]
opt-level = 1
"""
    )
    shutil.copy(bp / "Cargo.lock", crate / "Cargo.lock")
    common = tests / "common"
    if common.exists():
        shutil.rmtree(common)
    shutil.copytree(bp / "tests" / "common", common)
    text, _ = render(seeds, rounding)
    out = tests / "random_networks.rs"
    out.write_text(text)
    cmd = ["cargo", "test", "--test", "random_networks"]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    extra = ["--", "--test-threads", str(jobs)] if jobs else []
    print(f"checking seeds {describe(seeds)} in {crate}", file=sys.stderr)
    proc = subprocess.run(
        cmd + extra, cwd=crate, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    log = proc.stdout
    (crate / "last-run.log").write_text(log)
    failed = re.findall(r"^test seed_(\d+)::gradcheck \.\.\. FAILED", log, re.M)
    failed = sorted(int(s) for s in failed)
    passed = len(re.findall(r"^test seed_\d+::gradcheck \.\.\. ok", log, re.M))
    if proc.returncode != 0 and not failed:
        print(log[-6000:])
        print("cargo test failed before running the networks (log above)", file=sys.stderr)
        return 2
    print(f"{passed} passed, {len(failed)} failed")
    for s in failed:
        print(f"failing seed: {s}")
        pattern = rf"^---- seed_{s}::gradcheck stdout ----\n(.*?)(?=^----|^failures:)"
        m = re.search(pattern, log, re.M | re.S)
        for line in (m.group(1) if m else "").splitlines():
            if line.startswith("  FAIL") or "no draw" in line or "panicked" in line:
                print("   ", line.strip())
    if failed:
        print(f"full log: {crate / 'last-run.log'}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--seeds",
        type=parse_seeds,
        default=list(range(0, 200)),
        help="A..B (B excluded) or N, comma-separated",
    )
    ap.add_argument("--out", type=Path, help="write the test file here (rustfmt-formatted)")
    ap.add_argument("--check", action="store_true", help="run the seeds in a throwaway crate")
    ap.add_argument("--jobs", type=int, help="test threads for --check")
    ap.add_argument(
        "--rounding",
        type=float,
        default=ROUNDING,
        help="with --check: the factor F of the rounding floor F·ε·S/h added to the criterion "
        f"(default {ROUNDING}, as in the committed test; 0 is the bare criterion)",
    )
    ap.add_argument("--print", type=int, metavar="SEED", help="print one network")
    ap.add_argument(
        "--bp",
        type=Path,
        default=ROOT,
        help="with --check: the bp checkout to test (default: this repository)",
    )
    args = ap.parse_args()
    if args.print is not None:
        print(emit_module(generate(args.print)))
        return 0
    if args.check:
        return check(args.seeds, args.jobs, args.bp.resolve(), args.rounding)
    if args.out is None:
        ap.error("give --out FILE, --check or --print SEED")
    text, nets = render(args.seeds)
    args.out.write_text(text)
    rustfmt(args.out)
    print(f"wrote {len(nets)} networks to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
