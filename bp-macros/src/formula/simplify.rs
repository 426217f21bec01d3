//! Simplification: constant folding, `·1`, `+0`, `·0`, `/1`, `^1` dropped, and a factor
//! pushed into a `Where` with a zero branch.

use super::{add, bin, c, mul, neg, pow, sub, un, where_, Bin, Prim, E};

/// Simplifies bottom-up: folds constants, drops `·1`, `+0`, `·0`, `/1`, `^1`, and pushes
/// a factor into a `Where` with a zero branch (so `d · relu'(x)` is `if x > 0 { d } else { 0 }`).
pub fn simplify(e: &E) -> E {
    match e {
        E::Var(_) | E::Out | E::Grad | E::Const(_) => e.clone(),
        E::Neg(a) => match simplify(a) {
            E::Const(v) => c(-v),
            E::Neg(inner) => *inner,
            a => neg(a),
        },
        E::Un(f, a) => {
            let a = simplify(a);
            match (&a, fold_fun(f, &a)) {
                (_, Some(v)) => c(v),
                _ => un(f, a),
            }
        }
        E::Pow(a, p) => match (simplify(a), *p) {
            (_, 0.0) => c(1.0),
            (a, 1.0) => a,
            (E::Const(v), p) if v.powf(p).is_finite() => c(v.powf(p)),
            (a, p) => pow(a, p),
        },
        E::Bin(op, a, b) => simplify_bin(*op, simplify(a), simplify(b)),
        E::Where(cmp, p) => {
            let [l, r, t, f] = &**p;
            let (t, f) = (simplify(t), simplify(f));
            if t == f {
                return t;
            }
            where_(*cmp, simplify(l), simplify(r), t, f)
        }
    }
}

fn fold_fun(f: &Prim, a: &E) -> Option<f64> {
    let E::Const(v) = *a else { return None };
    let r = (f.eval?)(v);
    r.is_finite().then_some(r)
}

fn simplify_bin(op: Bin, a: E, b: E) -> E {
    if let (E::Const(x), E::Const(y)) = (&a, &b) {
        let v = match op {
            Bin::Add => x + y,
            Bin::Sub => x - y,
            Bin::Mul => x * y,
            Bin::Div => x / y,
            Bin::Min => x.min(*y),
            Bin::Max => x.max(*y),
        };
        if v.is_finite() {
            return c(v);
        }
    }
    match op {
        Bin::Add if a.is_const(0.0) => b,
        Bin::Add | Bin::Sub if b.is_const(0.0) => a,
        Bin::Add => match b {
            E::Neg(nb) => sub(a, *nb),
            b => add(a, b),
        },
        Bin::Sub if a.is_const(0.0) => neg_simplified(b),
        Bin::Sub => match b {
            E::Neg(nb) => add(a, *nb),
            b => sub(a, b),
        },
        Bin::Mul if a.is_const(0.0) || b.is_const(0.0) => c(0.0),
        Bin::Mul if a.is_const(1.0) => b,
        Bin::Mul if b.is_const(1.0) => a,
        Bin::Mul if a.is_const(-1.0) => neg_simplified(b),
        Bin::Mul if b.is_const(-1.0) => neg_simplified(a),
        Bin::Mul => simplify_mul(a, b),
        Bin::Div if b.is_const(1.0) => a,
        Bin::Div if a.is_const(0.0) => c(0.0),
        _ => bin(op, a, b),
    }
}

fn simplify_mul(a: E, b: E) -> E {
    // d · where(c, t, 0) → where(c, d·t, 0): the residual passes or stops, no multiply.
    let zero_branch =
        |e: &E| matches!(e, E::Where(_, p) if p[2].is_const(0.0) || p[3].is_const(0.0));
    let (w, other) = if zero_branch(&b) {
        (b, a)
    } else if zero_branch(&a) {
        (a, b)
    } else {
        // Constants first reads like math: 0.5·x.
        return match (a, b) {
            (a, b @ E::Const(_)) => bin(Bin::Mul, b, a),
            (E::Neg(a), b) => neg(simplify_mul(*a, b)),
            (a, E::Neg(b)) => neg(simplify_mul(a, *b)),
            (a, b) => bin(Bin::Mul, a, b),
        };
    };
    let E::Where(cmp, p) = w else {
        return mul(other, w);
    };
    let [l, r, t, f] = *p;
    // The operands are simplified already: only the new products are, and a zero branch
    // stays zero without a copy of `other`.
    let times = |other: E, branch: E| simplify_bin(Bin::Mul, other, branch);
    let (t, f) = match (t.is_const(0.0), f.is_const(0.0)) {
        (true, true) => (t, f),
        (true, false) => (t, times(other, f)),
        (false, true) => (times(other, t), f),
        (false, false) => (times(other.clone(), t), times(other, f)),
    };
    where_(cmp, l, r, t, f)
}

/// −a for an `a` that is simplified already (what `simplify(&neg(a))` gives, without
/// simplifying `a` again).
fn neg_simplified(a: E) -> E {
    match a {
        E::Const(v) => c(-v),
        E::Neg(inner) => *inner,
        a => neg(a),
    }
}
