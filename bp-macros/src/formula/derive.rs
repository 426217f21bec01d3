//! Derivatives of formulas: ∂e/∂Var(k), by the chain rule over the tree, with each
//! function's own derivative taken from its entry in [`functions`](super::functions).

use super::{add, c, div, mul, neg, pow, sub, where_, Bin, Cmp, E};

/// ∂e/∂Var(k), unsimplified. At ties and kinks the rules follow PyTorch: relu'(0) = 0,
/// |x|'(0) = 0, min/max split the residual evenly on a tie.
pub fn derive(e: &E, k: usize) -> E {
    nonzero(e, k).unwrap_or(c(0.0))
}

/// ∂e/∂Var(k), or `None` where it is identically zero: subtrees that do not read operand
/// `k` are never differentiated into trees of zeros (for a deep chain over another
/// operand those trees were quadratic in its depth).
fn nonzero(e: &E, k: usize) -> Option<E> {
    match e {
        E::Var(j) => (*j == k).then(|| c(1.0)),
        E::Out | E::Grad | E::Const(_) => None,
        E::Neg(a) => nonzero(a, k).map(neg),
        E::Bin(op, a, b) => derive_bin(*op, a, b, k),
        E::Un(f, a) => nonzero(a, k).map(|d| mul((f.derivative)((**a).clone()), d)),
        E::Pow(a, p) => nonzero(a, k).map(|d| mul(mul(c(*p), pow((**a).clone(), p - 1.0)), d)),
        E::Where(cmp, p) => {
            let [l, r, t, f] = &**p;
            let (dt, df) = (nonzero(t, k), nonzero(f, k));
            if dt.is_none() && df.is_none() {
                return None;
            }
            let zero = || c(0.0);
            Some(where_(
                *cmp,
                l.clone(),
                r.clone(),
                dt.unwrap_or_else(zero),
                df.unwrap_or_else(zero),
            ))
        }
    }
}

/// The sum of the terms present.
fn sum_of(a: Option<E>, b: Option<E>) -> Option<E> {
    match (a, b) {
        (Some(a), Some(b)) => Some(add(a, b)),
        (a, b) => a.or(b),
    }
}

fn derive_bin(op: Bin, a: &E, b: &E, k: usize) -> Option<E> {
    let (da, db) = (nonzero(a, k), nonzero(b, k));
    if da.is_none() && db.is_none() {
        return None;
    }
    let (a, b) = (a.clone(), b.clone());
    Some(match op {
        Bin::Add => sum_of(da, db)?,
        Bin::Sub => match (da, db) {
            (Some(da), Some(db)) => sub(da, db),
            (Some(da), None) => da,
            (None, db) => neg(db?),
        },
        Bin::Mul => sum_of(da.map(|d| mul(d, b.clone())), db.map(|d| mul(a, d)))?,
        Bin::Div => {
            let first = da.map(|d| div(d, b.clone()));
            let second = db.map(|d| div(mul(a, d), mul(b.clone(), b)));
            match (first, second) {
                (Some(f), Some(s)) => sub(f, s),
                (Some(f), None) => f,
                (None, s) => neg(s?),
            }
        }
        Bin::Min | Bin::Max => {
            let (da, db) = (da.unwrap_or(c(0.0)), db.unwrap_or(c(0.0)));
            let first = if op == Bin::Min { Cmp::Lt } else { Cmp::Gt };
            let tie = mul(c(0.5), add(da.clone(), db.clone()));
            let rest = where_(Cmp::Eq, a.clone(), b.clone(), tie, db);
            where_(first, a, b, da, rest)
        }
    })
}
