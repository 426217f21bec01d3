//! Formulas in math notation, for the `///` derivation of the generated code.

use super::{size_at_most, Bin, Cmp, E};

/// The formula in math notation for the `///` docs, operands named by `name`.
///
/// A formula of more than [`DOC_TERMS`] terms is not written out: unshared, a derivative
/// through a deep chain grows quadratically with its depth, while the emitted code binds
/// every repeated subexpression once.
pub fn doc(e: &E, name: &dyn Fn(usize) -> String, out: &str, grad: &str) -> String {
    if !at_most(e, DOC_TERMS) {
        return format!("(a formula of more than {DOC_TERMS} terms: see the code)");
    }
    doc_prec(e, name, out, grad).0
}

/// The most terms a formula in the docs has.
pub const DOC_TERMS: usize = 400;

/// Whether `e` has at most `limit` nodes (stops counting past the limit).
fn at_most(e: &E, limit: usize) -> bool {
    size_at_most(e, limit) <= limit
}

fn doc_prec(e: &E, name: &dyn Fn(usize) -> String, out: &str, grad: &str) -> (String, u8) {
    let sub = |a: &E, min: u8| {
        let (s, p) = doc_prec(a, name, out, grad);
        if p < min {
            format!("({s})")
        } else {
            s
        }
    };
    match e {
        E::Var(k) => (name(*k), 4),
        E::Out => (out.to_string(), 4),
        E::Grad => (grad.to_string(), 4),
        E::Const(v) if *v < 0.0 => (format!("−{}", -v), 3),
        E::Const(v) => (format!("{v}"), 4),
        E::Neg(a) => (format!("−{}", sub(a, 3)), 3),
        E::Bin(op, a, b) => match op {
            Bin::Add => (format!("{} + {}", sub(a, 1), sub(b, 2)), 1),
            Bin::Sub => (format!("{} − {}", sub(a, 1), sub(b, 2)), 1),
            Bin::Mul => (format!("{}·{}", sub(a, 2), sub(b, 3)), 2),
            Bin::Div => (format!("{} / {}", sub(a, 2), sub(b, 3)), 2),
            Bin::Min => (format!("min({}, {})", sub(a, 0), sub(b, 0)), 4),
            Bin::Max => (format!("max({}, {})", sub(a, 0), sub(b, 0)), 4),
        },
        E::Un(f, a) => (format!("{}({})", f.math, sub(a, 0)), 4),
        E::Pow(a, p) => (format!("{}^{p}", sub(a, 4)), 4),
        E::Where(cmp, p) => {
            let [l, r, t, f] = &**p;
            let op = match cmp {
                Cmp::Gt => ">",
                Cmp::Lt => "<",
                Cmp::Ge => "≥",
                Cmp::Le => "≤",
                Cmp::Eq => "=",
            };
            let (l, r, t, f) = (sub(l, 1), sub(r, 1), sub(t, 1), sub(f, 1));
            (format!("({t} if {l} {op} {r} else {f})"), 4)
        }
    }
}

/// The formula as canonical text for the structure hash: prefix form, operands by
/// position (`x0`), functions by their language names, numbers as Rust prints them
/// exactly. It names nothing internal, so it changes only when the computation does.
pub fn canonical(e: &E) -> String {
    let mut out = String::new();
    write_canonical(e, &mut out);
    out
}

fn write_canonical(e: &E, out: &mut String) {
    use std::fmt::Write;
    let call = |name: &str, kids: &[&E], out: &mut String| {
        let _ = write!(out, "{name}(");
        for (i, k) in kids.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_canonical(k, out);
        }
        out.push(')');
    };
    match e {
        E::Var(k) => {
            let _ = write!(out, "x{k}");
        }
        E::Out => out.push_str("out"),
        E::Grad => out.push_str("grad"),
        E::Const(v) => {
            let _ = write!(out, "{v:?}");
        }
        E::Neg(a) => call("neg", &[a], out),
        E::Bin(op, a, b) => {
            let name = match op {
                Bin::Add => "add",
                Bin::Sub => "sub",
                Bin::Mul => "mul",
                Bin::Div => "div",
                Bin::Min => "min",
                Bin::Max => "max",
            };
            call(name, &[a, b], out)
        }
        E::Un(f, a) => call(f.name, &[a], out),
        E::Pow(a, p) => {
            call("pow", &[a], out);
            let _ = write!(out, "^{p:?}");
        }
        E::Where(cmp, p) => {
            let name = match cmp {
                Cmp::Gt => "where_gt",
                Cmp::Lt => "where_lt",
                Cmp::Ge => "where_ge",
                Cmp::Le => "where_le",
                Cmp::Eq => "where_eq",
            };
            let [l, r, t, f] = &**p;
            call(name, &[l, r, t, f], out)
        }
    }
}
