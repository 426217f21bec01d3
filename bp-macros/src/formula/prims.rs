//! The primitive functions formulas are built from, one entry each: the name, how the
//! docs write it, its value at a constant (for folding), its derivative as a formula, and
//! the Rust code it emits. The table of the language's functions (`functions.rs`) is
//! built from these.

use super::{c, div, mul, neg, pow, sub, un, where_, Cmp, E};
use proc_macro2::TokenStream;
use quote::quote;
use std::f64::consts::PI;

/// How a primitive's code uses its argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Once, as a method receiver or call argument: any expression may stand there.
    Once,
    /// Several times (`if x < 0.0 { 0.0 } else { x }`): the emitter binds a
    /// subexpression to a name first, so nothing is computed twice.
    Repeated,
}

/// A primitive function of one argument.
pub struct Prim {
    /// The name in the language and in the structure hash.
    pub name: &'static str,
    /// The name in the docs' math (`σ` for sigmoid).
    pub math: &'static str,
    /// Its value at a constant, for constant folding (`None`: never folded).
    pub eval: Option<fn(f64) -> f64>,
    /// f′(a) as a formula over the argument `a`. At kinks it is PyTorch's choice.
    pub derivative: fn(E) -> E,
    /// How `code` uses its argument.
    pub arg: Arg,
    /// The Rust expression of f(x) for the argument's code `x` and the scalar type `ty`.
    pub code: fn(x: TokenStream, ty: &TokenStream) -> TokenStream,
    /// The precedence of `code` (0 `if`, 2 `* /`, 4 a call or method call), so the
    /// emitter parenthesizes it only where it must.
    pub prec: u8,
}

impl PartialEq for Prim {
    fn eq(&self, other: &Prim) -> bool {
        self.name == other.name
    }
}

impl std::fmt::Debug for Prim {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Above this, PyTorch's softplus returns its input.
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

pub static EXP: Prim = Prim {
    name: "exp",
    math: "exp",
    eval: Some(f64::exp),
    derivative: |a| un(&EXP, a),
    arg: Arg::Once,
    code: |x, _| quote!(#x.exp()),
    prec: 4,
};

pub static LN: Prim = Prim {
    name: "ln",
    math: "ln",
    eval: Some(f64::ln),
    derivative: |a| div(c(1.0), a),
    arg: Arg::Once,
    code: |x, _| quote!(#x.ln()),
    prec: 4,
};

pub static SQRT: Prim = Prim {
    name: "sqrt",
    math: "sqrt",
    eval: Some(f64::sqrt),
    derivative: |a| div(c(0.5), un(&SQRT, a)),
    arg: Arg::Once,
    code: |x, _| quote!(#x.sqrt()),
    prec: 4,
};

/// 1/√x, as `torch.rsqrt`; its derivative −½·rsqrt(x)³ reads the stored output.
pub static RSQRT: Prim = Prim {
    name: "rsqrt",
    math: "rsqrt",
    eval: Some(|v| v.sqrt().recip()),
    derivative: |a| mul(c(-0.5), pow(un(&RSQRT, a), 3.0)),
    arg: Arg::Once,
    code: |x, _| quote!(#x.sqrt().recip()),
    prec: 4,
};

/// |x|, with |x|′(0) = 0 as PyTorch.
pub static ABS: Prim = Prim {
    name: "abs",
    math: "abs",
    eval: Some(f64::abs),
    derivative: |a| {
        let negative = where_(Cmp::Lt, a.clone(), c(0.0), c(-1.0), c(0.0));
        where_(Cmp::Gt, a, c(0.0), c(1.0), negative)
    },
    arg: Arg::Once,
    code: |x, _| quote!(#x.abs()),
    prec: 4,
};

pub static TANH: Prim = Prim {
    name: "tanh",
    math: "tanh",
    eval: Some(f64::tanh),
    derivative: |a| {
        let t = un(&TANH, a);
        sub(c(1.0), mul(t.clone(), t))
    },
    arg: Arg::Once,
    code: |x, _| quote!(#x.tanh()),
    prec: 4,
};

pub static SIGMOID: Prim = Prim {
    name: "sigmoid",
    math: "σ",
    eval: Some(|v| 1.0 / (1.0 + (-v).exp())),
    derivative: |a| {
        let s = un(&SIGMOID, a);
        mul(s.clone(), sub(c(1.0), s))
    },
    arg: Arg::Once,
    code: |x, _| quote!(1.0 / (1.0 + (-#x).exp())),
    prec: 2,
};

/// relu(NaN) = NaN, as in PyTorch (`f32::max` would give 0); relu′(0) = 0.
pub static RELU: Prim = Prim {
    name: "relu",
    math: "relu",
    eval: Some(|v| v.max(0.0)),
    derivative: |a| where_(Cmp::Gt, a, c(0.0), c(1.0), c(0.0)),
    arg: Arg::Repeated,
    code: |x, _| quote!(if #x < 0.0 { 0.0 } else { #x }),
    prec: 0,
};

/// PyTorch's softplus (beta 1, threshold 20): the identity above the threshold.
pub static SOFTPLUS: Prim = Prim {
    name: "softplus",
    math: "softplus",
    eval: Some(|v| {
        if v > SOFTPLUS_THRESHOLD {
            v
        } else {
            v.exp().ln_1p()
        }
    }),
    derivative: |a| {
        let t = c(SOFTPLUS_THRESHOLD);
        where_(Cmp::Gt, a.clone(), t, c(1.0), un(&SIGMOID, a))
    },
    arg: Arg::Repeated,
    code: |x, _| {
        let t = proc_macro2::Literal::f64_unsuffixed(SOFTPLUS_THRESHOLD);
        quote!(if #x > #t { #x } else { #x.exp().ln_1p() })
    },
    prec: 0,
};

pub static SIN: Prim = Prim {
    name: "sin",
    math: "sin",
    eval: Some(f64::sin),
    derivative: |a| un(&COS, a),
    arg: Arg::Once,
    code: |x, _| quote!(#x.sin()),
    prec: 4,
};

pub static COS: Prim = Prim {
    name: "cos",
    math: "cos",
    eval: Some(f64::cos),
    derivative: |a| neg(un(&SIN, a)),
    arg: Arg::Once,
    code: |x, _| quote!(#x.cos()),
    prec: 4,
};

/// The error function; erf′(a) = 2/√π·exp(−a²). Rust's own `erf` is unstable, so the
/// code calls the runtime's (`libm`); it is never folded at compile time.
pub static ERF: Prim = Prim {
    name: "erf",
    math: "erf",
    eval: None,
    derivative: |a| mul(c(2.0 / PI.sqrt()), un(&EXP, neg(pow(a, 2.0)))),
    arg: Arg::Once,
    code: |x, ty| quote!(<#ty as ::bp::__private::Float>::erf(#x)),
    prec: 4,
};
