//! The elementwise functions of the language, one entry each.
//!
//! A [`Function`] is what a user calls: its name, operands, hyperparameters with their
//! defaults, and its formula over primitives ([`prims`](super::prims)), from which the
//! derivative, the code and the docs follow. Parsing, lowering, differentiation, emission, the docs and
//! the "did you mean" list all read these tables; there is no `match` on a function's
//! name anywhere else, so adding a function is one entry here (and, for a new primitive,
//! one `Prim` beside it).

use super::prims::{ABS, COS, ERF, EXP, LN, RELU, RSQRT, SIGMOID, SIN, SOFTPLUS, SQRT, TANH};
use super::{add, c, mul, pow, sub, un, where_, Bin, Cmp, E};
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// A hyperparameter's kind and default.
#[derive(Clone, Copy)]
pub enum Default {
    /// A number literal that must be given.
    Required,
    /// A number literal with this default.
    Float(f64),
    /// A number literal that may be left out (no default value).
    Optional,
    /// A string literal among these choices; the first is the default.
    Choice(&'static [&'static str]),
}

/// A hyperparameter of a function: given by position after the operands, or by name.
pub struct Hyper {
    pub name: &'static str,
    /// How an error message names it ("the exponent of pow").
    pub what: &'static str,
    pub default: Default,
}

/// A hyperparameter's value in one call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Float(f64),
    Absent,
    Choice(&'static str),
}

impl Value {
    /// The number (0 for a value that is not one; the formulas read only their own kinds).
    pub fn float(self) -> f64 {
        match self {
            Value::Float(v) => v,
            _ => 0.0,
        }
    }
}

/// An elementwise function of the language.
pub struct Function {
    pub name: &'static str,
    /// The operands' names, for the usage text: `["x"]` or `["x", "y"]`.
    pub operands: &'static [&'static str],
    pub hypers: &'static [Hyper],
    /// The formula over the operands and the hyperparameters' values, or why the values
    /// do not make one.
    pub formula: fn(&[E], &[Value]) -> Result<E, String>,
}

impl Function {
    /// `name(x, slope = 0.01)`, for error messages.
    pub fn usage(&self) -> String {
        let mut args: Vec<String> = self.operands.iter().map(|s| s.to_string()).collect();
        args.extend(self.hypers.iter().map(|h| match h.default {
            Default::Required => h.name.to_string(),
            Default::Float(d) => format!("{} = {d:?}", h.name),
            Default::Optional => format!("{} = none", h.name),
            Default::Choice(c) => format!("{} = {:?}", h.name, c[0]),
        }));
        format!("{}({})", self.name, args.join(", "))
    }
}

/// A function that is one primitive.
macro_rules! prim_fn {
    ($name:literal, $prim:expr) => {
        Function {
            name: $name,
            operands: &["x"],
            hypers: &[],
            formula: |x, _| Ok(un(&$prim, x[0].clone())),
        }
    };
}

/// A binary function of two operands that broadcast.
macro_rules! bin_fn {
    ($name:literal, $op:expr) => {
        Function {
            name: $name,
            operands: &["x", "y"],
            hypers: &[],
            formula: |x, _| Ok(super::bin($op, x[0].clone(), x[1].clone())),
        }
    };
}

/// Every elementwise function, in the order of the docs' table.
pub static FUNCTIONS: &[Function] = &[
    prim_fn!("relu", RELU),
    prim_fn!("sigmoid", SIGMOID),
    prim_fn!("tanh", TANH),
    Function {
        name: "leaky_relu",
        operands: &["x"],
        hypers: &[Hyper {
            name: "slope",
            what: "slope",
            default: Default::Float(0.01),
        }],
        formula: |x, h| {
            let x = x[0].clone();
            Ok(where_(
                Cmp::Gt,
                x.clone(),
                c(0.0),
                x.clone(),
                mul(c(h[0].float()), x),
            ))
        },
    },
    Function {
        name: "gelu",
        operands: &["x"],
        hypers: &[Hyper {
            name: "approximate",
            what: "approximate",
            default: Default::Choice(&["none", "tanh"]),
        }],
        formula: |x, h| Ok(gelu(x[0].clone(), h[0] == Value::Choice("tanh"))),
    },
    Function {
        name: "silu",
        operands: &["x"],
        hypers: &[],
        formula: |x, _| Ok(mul(x[0].clone(), un(&SIGMOID, x[0].clone()))),
    },
    prim_fn!("softplus", SOFTPLUS),
    Function {
        name: "elu",
        operands: &["x"],
        hypers: &[Hyper {
            name: "alpha",
            what: "alpha",
            default: Default::Float(1.0),
        }],
        formula: |x, h| {
            let x = x[0].clone();
            let below = mul(c(h[0].float()), sub(un(&EXP, x.clone()), c(1.0)));
            Ok(where_(Cmp::Gt, x.clone(), c(0.0), x, below))
        },
    },
    prim_fn!("exp", EXP),
    prim_fn!("ln", LN),
    prim_fn!("sqrt", SQRT),
    prim_fn!("rsqrt", RSQRT),
    prim_fn!("abs", ABS),
    prim_fn!("sin", SIN),
    prim_fn!("cos", COS),
    prim_fn!("erf", ERF),
    Function {
        name: "square",
        operands: &["x"],
        hypers: &[],
        formula: |x, _| Ok(pow(x[0].clone(), 2.0)),
    },
    Function {
        name: "pow",
        operands: &["x"],
        hypers: &[Hyper {
            name: "p",
            what: "the exponent of pow",
            default: Default::Required,
        }],
        formula: |x, h| Ok(pow(x[0].clone(), h[0].float())),
    },
    Function {
        name: "clamp",
        operands: &["x"],
        hypers: &[
            Hyper {
                name: "min",
                what: "min",
                default: Default::Optional,
            },
            Hyper {
                name: "max",
                what: "max",
                default: Default::Optional,
            },
        ],
        formula: clamp,
    },
    bin_fn!("min", Bin::Min),
    bin_fn!("max", Bin::Max),
];

/// The function called `name`, if it is elementwise.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// PyTorch's gelu: 0.5·x·(1 + erf(x/√2)), or with `approximate = "tanh"`
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
fn gelu(x: E, tanh: bool) -> E {
    let inner = if tanh {
        let k = (2.0 / PI).sqrt();
        let cubic = add(x.clone(), mul(c(0.044715), pow(x.clone(), 3.0)));
        un(&TANH, mul(c(k), cubic))
    } else {
        un(&ERF, mul(c(FRAC_1_SQRT_2), x.clone()))
    };
    mul(mul(c(0.5), x), add(c(1.0), inner))
}

/// torch.clamp: min(max(x, lo), hi) (so hi wins when lo > hi; NaN stays NaN). The
/// gradient passes strictly inside the bounds: at a bound the output is the constant, as
/// PyTorch's (since 2.x) clamp backward gives 0 there.
fn clamp(x: &[E], h: &[Value]) -> Result<E, String> {
    let mut y = x[0].clone();
    if let Value::Float(lo) = h[0] {
        y = where_(Cmp::Le, y.clone(), c(lo), c(lo), y);
    }
    if let Value::Float(hi) = h[1] {
        y = where_(Cmp::Ge, y.clone(), c(hi), c(hi), y);
    }
    if h.iter().all(|v| *v == Value::Absent) {
        return Err("`clamp` needs `min`, `max` or both: clamp(x, min, max)".into());
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name is one entry, and each primitive's derivative matches a central
    /// difference of its own value (the table's `eval` and `derivative` agree).
    #[test]
    fn entries_are_unique_and_derivatives_match_values() {
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a function is listed twice");
        for prim in [
            &EXP, &LN, &SQRT, &RSQRT, &ABS, &TANH, &SIGMOID, &RELU, &SOFTPLUS, &SIN, &COS,
        ] {
            let f = prim.eval.expect("foldable");
            for x in [0.3, 0.7, 1.9, 2.5] {
                let h = 1e-6;
                let fd = (f(x + h) - f(x - h)) / (2.0 * h);
                let d = eval(&(prim.derivative)(c(x)));
                assert!((d - fd).abs() < 1e-6, "{}'({x}) = {d}, fd {fd}", prim.name);
            }
        }
    }

    /// The value of a formula over constants.
    fn eval(e: &E) -> f64 {
        match e {
            E::Const(v) => *v,
            E::Neg(a) => -eval(a),
            E::Un(f, a) => (f.eval.expect("foldable"))(eval(a)),
            E::Pow(a, p) => eval(a).powf(*p),
            E::Bin(op, a, b) => {
                let (a, b) = (eval(a), eval(b));
                match op {
                    Bin::Add => a + b,
                    Bin::Sub => a - b,
                    Bin::Mul => a * b,
                    Bin::Div => a / b,
                    Bin::Min => a.min(b),
                    Bin::Max => a.max(b),
                }
            }
            E::Where(cmp, p) => {
                let [l, r, t, f] = &**p;
                let (l, r) = (eval(l), eval(r));
                let holds = match cmp {
                    Cmp::Gt => l > r,
                    Cmp::Lt => l < r,
                    Cmp::Ge => l >= r,
                    Cmp::Le => l <= r,
                    Cmp::Eq => l == r,
                };
                eval(if holds { t } else { f })
            }
            E::Var(_) | E::Out | E::Grad => panic!("not a constant formula: {e:?}"),
        }
    }
}
