//! Elementwise formulas as expression trees: symbolic derivatives, simplification, and
//! emission as Rust with common subexpressions bound once.
//!
//! A `let` whose expression is elementwise (`x * sigmoid(x)`, `relu(a + b)`) becomes one
//! [`E`] over its operands `Var(k)`. Its backward is `Grad · ∂E/∂Var(k)` for each operand,
//! derived here, simplified (no `* 1.0`, no `+ 0.0`), and where the derivative contains the
//! forward formula itself, that is replaced by the stored value `Out` (σ' = out·(1 − out)).

mod code;
mod derive;
mod doc;
pub mod functions;
pub mod prims;
mod simplify;

pub use code::{emit_all, literal, Leaves};
pub use derive::derive;
pub use doc::{canonical, doc};
pub use prims::Prim;
pub use simplify::simplify;

/// Binary operations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
}

/// Comparisons in `Where`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Cmp {
    Gt,
    Lt,
    Ge,
    Le,
    Eq,
}

/// An elementwise expression.
#[derive(Clone, PartialEq, Debug)]
pub enum E {
    /// Operand `k` of the node, at the current element.
    Var(usize),
    /// The node's own forward value at the current element (backward only).
    Out,
    /// The incoming residual at the current element (backward only).
    Grad,
    Const(f64),
    Neg(Box<E>),
    Bin(Bin, Box<E>, Box<E>),
    /// A primitive function ([`functions`]) of one argument.
    Un(&'static Prim, Box<E>),
    /// `a^p` with a literal exponent.
    Pow(Box<E>, f64),
    /// `if l CMP r { t } else { f }`.
    Where(Cmp, Box<[E; 4]>),
}

pub fn c(v: f64) -> E {
    E::Const(v)
}
pub fn bin(op: Bin, a: E, b: E) -> E {
    E::Bin(op, Box::new(a), Box::new(b))
}
pub fn un(f: &'static Prim, a: E) -> E {
    E::Un(f, Box::new(a))
}
pub fn add(a: E, b: E) -> E {
    bin(Bin::Add, a, b)
}
pub fn sub(a: E, b: E) -> E {
    bin(Bin::Sub, a, b)
}
pub fn mul(a: E, b: E) -> E {
    bin(Bin::Mul, a, b)
}
pub fn div(a: E, b: E) -> E {
    bin(Bin::Div, a, b)
}
pub fn neg(a: E) -> E {
    E::Neg(Box::new(a))
}
pub fn pow(a: E, p: f64) -> E {
    E::Pow(Box::new(a), p)
}
pub fn where_(cmp: Cmp, l: E, r: E, t: E, f: E) -> E {
    E::Where(cmp, Box::new([l, r, t, f]))
}

impl E {
    /// The operands this expression reads.
    pub fn uses_var(&self, k: usize) -> bool {
        match self {
            E::Var(j) => *j == k,
            E::Out | E::Grad | E::Const(_) => false,
            E::Neg(a) | E::Un(_, a) | E::Pow(a, _) => a.uses_var(k),
            E::Bin(_, a, b) => a.uses_var(k) || b.uses_var(k),
            E::Where(_, p) => p.iter().any(|e| e.uses_var(k)),
        }
    }

    /// Whether the expression reads the node's output or the incoming residual.
    pub fn uses(&self, leaf: &E) -> bool {
        if self == leaf {
            return true;
        }
        match self {
            E::Var(_) | E::Out | E::Grad | E::Const(_) => false,
            E::Neg(a) | E::Un(_, a) | E::Pow(a, _) => a.uses(leaf),
            E::Bin(_, a, b) => a.uses(leaf) || b.uses(leaf),
            E::Where(_, p) => p.iter().any(|e| e.uses(leaf)),
        }
    }

    fn is_const(&self, v: f64) -> bool {
        matches!(self, E::Const(x) if *x == v)
    }
}

/// The operands `e` reads, ascending.
pub fn vars_used(e: &E) -> Vec<usize> {
    let mut used = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            E::Var(k) => used.push(*k),
            E::Out | E::Grad | E::Const(_) => {}
            E::Neg(a) | E::Un(_, a) | E::Pow(a, _) => stack.push(a),
            E::Bin(_, a, b) => stack.extend([&**a, &**b]),
            E::Where(_, p) => stack.extend(p.iter()),
        }
    }
    used.sort_unstable();
    used.dedup();
    used
}

/// `e` with every `Var(k)` renumbered to `Var(to(k))`.
pub fn remap_vars(e: &E, to: &dyn Fn(usize) -> usize) -> E {
    match e {
        E::Var(k) => E::Var(to(*k)),
        E::Out | E::Grad | E::Const(_) => e.clone(),
        E::Neg(a) => neg(remap_vars(a, to)),
        E::Un(f, a) => un(f, remap_vars(a, to)),
        E::Pow(a, p) => pow(remap_vars(a, to), *p),
        E::Bin(op, a, b) => bin(*op, remap_vars(a, to), remap_vars(b, to)),
        E::Where(cmp, p) => {
            let [l, r, t, f] = &**p;
            where_(
                *cmp,
                remap_vars(l, to),
                remap_vars(r, to),
                remap_vars(t, to),
                remap_vars(f, to),
            )
        }
    }
}

/// Replaces every occurrence of `pattern` by `by`.
///
/// Each subtree's size and structural hash are computed bottom-up, and a subtree is
/// compared with `pattern` only when both agree: linear in the size of `e` (comparing
/// every subtree would be quadratic in a long sum).
pub fn substitute(e: &E, pattern: &E, by: &E) -> E {
    let want = subst(pattern, pattern, None, by).1;
    subst(e, pattern, Some(want), by).0
}

/// A subtree's size and structural hash.
type Fingerprint = (usize, u64);

/// `e` with `pattern` replaced (when `want` is its fingerprint), and `e`'s fingerprint.
fn subst(e: &E, pattern: &E, want: Option<Fingerprint>, by: &E) -> (E, Fingerprint) {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::mem::discriminant(e).hash(&mut h);
    let mut size = 1;
    let mut kid = |k: &E, h: &mut std::collections::hash_map::DefaultHasher| {
        let (new, (n, kh)) = subst(k, pattern, want, by);
        size += n;
        kh.hash(h);
        new
    };
    let new = match e {
        E::Var(k) => {
            k.hash(&mut h);
            e.clone()
        }
        E::Out | E::Grad => e.clone(),
        E::Const(v) => {
            v.to_bits().hash(&mut h);
            e.clone()
        }
        E::Neg(a) => neg(kid(a, &mut h)),
        E::Un(f, a) => {
            f.name.hash(&mut h);
            un(f, kid(a, &mut h))
        }
        E::Pow(a, p) => {
            p.to_bits().hash(&mut h);
            pow(kid(a, &mut h), *p)
        }
        E::Bin(op, a, b) => {
            op.hash(&mut h);
            let a = kid(a, &mut h);
            bin(*op, a, kid(b, &mut h))
        }
        E::Where(cmp, p) => {
            cmp.hash(&mut h);
            let [l, r, t, f] = &**p;
            let l = kid(l, &mut h);
            let r = kid(r, &mut h);
            let t = kid(t, &mut h);
            where_(*cmp, l, r, t, kid(f, &mut h))
        }
    };
    let fp = (size, h.finish());
    if Some(fp) == want && e == pattern {
        return (by.clone(), fp);
    }
    (new, fp)
}

/// The number of nodes of `e` counted as a tree, or `limit + 1` when there are more.
pub fn size_at_most(e: &E, limit: usize) -> usize {
    let mut stack = vec![e];
    let mut n = 0usize;
    while let Some(e) = stack.pop() {
        n += 1;
        if n > limit {
            return n;
        }
        match e {
            E::Var(_) | E::Out | E::Grad | E::Const(_) => {}
            E::Neg(a) | E::Un(_, a) | E::Pow(a, _) => stack.push(a),
            E::Bin(_, a, b) => stack.extend([&**a, &**b]),
            E::Where(_, p) => stack.extend(p.iter()),
        }
    }
    n
}
