//! Elementwise formulas as expression trees: symbolic derivatives, simplification, and
//! emission as Rust with common subexpressions bound once.
//!
//! A `let` whose expression is elementwise (`x * sigmoid(x)`, `relu(a + b)`) becomes one
//! [`E`] over its operands `Var(k)`. Its backward is `Grad · ∂E/∂Var(k)` for each operand,
//! derived here, simplified (no `* 1.0`, no `+ 0.0`), and where the derivative contains the
//! forward formula itself, that is replaced by the stored value `Out` (σ' = out·(1 − out)).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::HashMap;

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

/// Unary functions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Fun {
    Exp,
    Ln,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
}

/// Comparisons in `Where`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Cmp {
    Gt,
    Lt,
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
    Un(Fun, Box<E>),
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
pub fn un(f: Fun, a: E) -> E {
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
        E::Un(f, a) => un(*f, remap_vars(a, to)),
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
        E::Un(f, a) => nonzero(a, k).map(|d| mul(derive_fun(*f, a), d)),
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

/// f'(a) for a unary function.
fn derive_fun(f: Fun, a: &E) -> E {
    let a = a.clone();
    match f {
        Fun::Exp => un(Fun::Exp, a),
        Fun::Ln => div(c(1.0), a),
        Fun::Sqrt => div(c(0.5), un(Fun::Sqrt, a)),
        Fun::Abs => where_(
            Cmp::Gt,
            a.clone(),
            c(0.0),
            c(1.0),
            where_(Cmp::Lt, a, c(0.0), c(-1.0), c(0.0)),
        ),
        Fun::Tanh => {
            let t = un(Fun::Tanh, a);
            sub(c(1.0), mul(t.clone(), t))
        }
        Fun::Sigmoid => {
            let s = un(Fun::Sigmoid, a);
            mul(s.clone(), sub(c(1.0), s))
        }
        Fun::Relu => where_(Cmp::Gt, a, c(0.0), c(1.0), c(0.0)),
        // PyTorch's softplus (beta 1, threshold 20) is the identity above 20.
        Fun::Softplus => where_(
            Cmp::Gt,
            a.clone(),
            c(SOFTPLUS_THRESHOLD),
            c(1.0),
            un(Fun::Sigmoid, a),
        ),
    }
}

/// Above this, PyTorch's softplus returns its input.
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

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
            f.hash(&mut h);
            un(*f, kid(a, &mut h))
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
            match (&a, fold_fun(*f, &a)) {
                (_, Some(v)) => c(v),
                _ => un(*f, a),
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

fn fold_fun(f: Fun, a: &E) -> Option<f64> {
    let E::Const(v) = *a else { return None };
    let r = match f {
        Fun::Exp => v.exp(),
        Fun::Ln => v.ln(),
        Fun::Sqrt => v.sqrt(),
        Fun::Abs => v.abs(),
        Fun::Tanh => v.tanh(),
        Fun::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        Fun::Relu => v.max(0.0),
        Fun::Softplus if v > SOFTPLUS_THRESHOLD => v,
        Fun::Softplus => v.exp().ln_1p(),
    };
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

/// How an emitted expression names its leaves.
pub struct Leaves<'a> {
    /// The element value of operand `k`.
    pub var: &'a dyn Fn(usize) -> TokenStream,
    /// The element of the node's stored output.
    pub out: TokenStream,
    /// The element of the incoming residual.
    pub grad: TokenStream,
    /// The scalar type (`f32` or `f64`), for literals that receive a method call.
    pub ty: TokenStream,
}

/// Emits several expressions that are evaluated together (one element of a loop body):
/// returns the `let` statements binding subexpressions used more than once, and each
/// expression.
pub fn emit_all(exprs: &[E], leaves: &Leaves) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut dag = Dag::default();
    let roots: Vec<usize> = exprs.iter().map(|e| dag.intern(e)).collect();
    for &r in &roots {
        dag.uses[r] += 1;
    }
    let mut em = Emitter {
        dag: &dag,
        leaves,
        bound: HashMap::new(),
        lets: Vec::new(),
    };
    let out = roots
        .iter()
        .map(|&r| {
            let mut ts = TokenStream::new();
            em.emit(r, &mut ts);
            ts
        })
        .collect();
    (em.lets, out)
}

/// Hash-consed expressions: equal subtrees are one node, with a count of their users.
#[derive(Default)]
struct Dag {
    /// Each node with its children replaced by placeholders: emission reads only the
    /// variant and its scalars here, and the children through `kids`.
    nodes: Vec<E>,
    /// The ids of each node's children, in the order of `E`'s fields.
    kids: Vec<Vec<usize>>,
    ids: HashMap<Key, usize>,
    uses: Vec<usize>,
}

/// A node's identity: its variant, its scalars and its children's ids. Equal subtrees get
/// equal keys bottom-up, so interning costs O(1) per node and the whole tree is linear.
#[derive(PartialEq, Eq, Hash)]
enum Key {
    Var(usize),
    Out,
    Grad,
    Const(u64),
    Neg(usize),
    Bin(Bin, usize, usize),
    Un(Fun, usize),
    Pow(usize, u64),
    Where(Cmp, [usize; 4]),
}

impl Dag {
    fn intern(&mut self, e: &E) -> usize {
        let children: Vec<&E> = match e {
            E::Var(_) | E::Out | E::Grad | E::Const(_) => vec![],
            E::Neg(a) | E::Un(_, a) | E::Pow(a, _) => vec![a],
            E::Bin(_, a, b) => vec![a, b],
            E::Where(_, p) => p.iter().collect(),
        };
        let kids: Vec<usize> = children.into_iter().map(|ch| self.intern(ch)).collect();
        let placeholder = || Box::new(c(0.0));
        let (key, shallow) = match e {
            E::Var(k) => (Key::Var(*k), e.clone()),
            E::Out => (Key::Out, E::Out),
            E::Grad => (Key::Grad, E::Grad),
            E::Const(v) => (Key::Const(v.to_bits()), e.clone()),
            E::Neg(_) => (Key::Neg(kids[0]), E::Neg(placeholder())),
            E::Un(f, _) => (Key::Un(*f, kids[0]), E::Un(*f, placeholder())),
            E::Pow(_, p) => (Key::Pow(kids[0], p.to_bits()), E::Pow(placeholder(), *p)),
            E::Bin(op, _, _) => (
                Key::Bin(*op, kids[0], kids[1]),
                E::Bin(*op, placeholder(), placeholder()),
            ),
            E::Where(cmp, _) => (
                Key::Where(*cmp, [kids[0], kids[1], kids[2], kids[3]]),
                where_(*cmp, c(0.0), c(0.0), c(0.0), c(0.0)),
            ),
        };
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        for &k in &kids {
            self.uses[k] += 1;
        }
        self.nodes.push(shallow);
        self.kids.push(kids);
        self.uses.push(0);
        self.ids.insert(key, self.nodes.len() - 1);
        self.nodes.len() - 1
    }
}

struct Emitter<'a> {
    dag: &'a Dag,
    leaves: &'a Leaves<'a>,
    bound: HashMap<usize, proc_macro2::Ident>,
    lets: Vec<TokenStream>,
}

/// Precedence of an emitted expression: 0 `if`, 1 `+ -`, 2 `* /`, 3 unary, 4 atom.
type Prec = u8;

/// Emission appends to one output stream (a parenthesized child is its own group), so
/// the tokens of a deep expression are written once: returning a stream per node and
/// splicing it into its parent would copy them at every level, quadratic in the depth.
impl Emitter<'_> {
    /// Whether node `id` is written as a `let` the first time it is used: it is used more
    /// than once and is more than a leaf.
    fn shared(&self, id: usize) -> bool {
        let trivial = matches!(
            self.dag.nodes[id],
            E::Var(_) | E::Out | E::Grad | E::Const(_)
        );
        !trivial && self.dag.uses[id] >= 2
    }

    /// The precedence of node `id` as it will be written.
    fn prec(&self, id: usize) -> Prec {
        if self.bound.contains_key(&id) || self.shared(id) {
            return 4;
        }
        match &self.dag.nodes[id] {
            E::Const(v) if *v < 0.0 => 3,
            E::Var(_) | E::Out | E::Grad | E::Const(_) | E::Un(..) | E::Pow(..) => 4,
            E::Neg(_) => 3,
            E::Bin(Bin::Add | Bin::Sub, ..) => 1,
            E::Bin(Bin::Mul | Bin::Div, ..) => 2,
            E::Bin(Bin::Min | Bin::Max, ..) | E::Where(..) => 0,
        }
    }

    /// Writes node `id` (or the name bound to it) to `out`.
    fn emit(&mut self, id: usize, out: &mut TokenStream) {
        if !self.bound.contains_key(&id) && self.shared(id) {
            self.bind(id);
        }
        if let Some(name) = self.bound.get(&id) {
            out.extend(quote!(#name));
            return;
        }
        let dag = self.dag;
        self.emit_node(&dag.nodes[id], &dag.kids[id], out);
    }

    /// Writes `let tN = <node id>;` and binds the node to `tN`.
    fn bind(&mut self, id: usize) {
        let dag = self.dag;
        let mut ts = TokenStream::new();
        self.emit_node(&dag.nodes[id], &dag.kids[id], &mut ts);
        let name = format_ident!("t{}", self.bound.len(), span = Span::mixed_site());
        self.lets.push(quote!(let #name = #ts;));
        self.bound.insert(id, name);
    }

    /// Writes child `id`, in parentheses when it binds less tightly than `min`.
    fn child(&mut self, id: usize, min: Prec, out: &mut TokenStream) {
        if self.prec(id) < min {
            let mut inner = TokenStream::new();
            self.emit(id, &mut inner);
            let group = proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, inner);
            out.extend([proc_macro2::TokenTree::Group(group)]);
        } else {
            self.emit(id, out);
        }
    }

    /// A method receiver: a bare literal gets its type suffix.
    fn receiver(&mut self, id: usize, out: &mut TokenStream) {
        if let E::Const(v) = &self.dag.nodes[id] {
            let ty = &self.leaves.ty;
            let lit = literal(v.abs());
            out.extend(if *v < 0.0 {
                quote!((-#lit as #ty))
            } else {
                quote!((#lit as #ty))
            });
            return;
        }
        self.child(id, 4, out);
    }

    /// An operand written several times in its parent's code (`if x < 0.0 { 0.0 } else
    /// { x }`): a leaf or a name, never a subexpression copied (nested `max` would
    /// otherwise grow as 3^depth).
    fn operand(&mut self, id: usize) -> TokenStream {
        let leaf = matches!(
            self.dag.nodes[id],
            E::Var(_) | E::Out | E::Grad | E::Const(_)
        );
        if !leaf && !self.bound.contains_key(&id) {
            self.bind(id);
        }
        let mut ts = TokenStream::new();
        self.receiver(id, &mut ts);
        ts
    }

    fn emit_node(&mut self, e: &E, kids: &[usize], out: &mut TokenStream) {
        match e {
            E::Var(k) => out.extend((self.leaves.var)(*k)),
            E::Out => out.extend(self.leaves.out.clone()),
            E::Grad => out.extend(self.leaves.grad.clone()),
            E::Const(v) if *v < 0.0 => {
                let lit = literal(-v);
                out.extend(quote!(-#lit));
            }
            E::Const(v) => out.extend(literal(*v)),
            E::Neg(_) => {
                out.extend(quote!(-));
                self.child(kids[0], 3, out);
            }
            E::Bin(op, _, _) => self.emit_bin(*op, kids[0], kids[1], out),
            E::Un(f, _) => self.emit_fun(*f, kids[0], out),
            E::Pow(_, p) => {
                self.receiver(kids[0], out);
                if p.fract() == 0.0 && p.abs() < 1e6 {
                    let p = proc_macro2::Literal::i32_unsuffixed(*p as i32);
                    out.extend(quote!(.powi(#p)));
                } else {
                    let lit = literal(*p);
                    out.extend(quote!(.powf(#lit)));
                }
            }
            E::Where(cmp, _) => {
                out.extend(quote!(if));
                self.child(kids[0], 1, out);
                out.extend(match cmp {
                    Cmp::Gt => quote!(>),
                    Cmp::Lt => quote!(<),
                    Cmp::Eq => quote!(==),
                });
                self.child(kids[1], 1, out);
                let (mut t, mut f) = (TokenStream::new(), TokenStream::new());
                self.child(kids[2], 0, &mut t);
                self.child(kids[3], 0, &mut f);
                out.extend(quote!({ #t } else { #f }));
            }
        }
    }

    fn emit_bin(&mut self, op: Bin, a: usize, b: usize, out: &mut TokenStream) {
        match op {
            Bin::Add | Bin::Sub => {
                self.child(a, 1, out);
                out.extend(if op == Bin::Add { quote!(+) } else { quote!(-) });
                self.child(b, 2, out);
            }
            Bin::Mul | Bin::Div => {
                self.child(a, 2, out);
                out.extend(if op == Bin::Mul { quote!(*) } else { quote!(/) });
                self.child(b, 3, out);
            }
            // torch.minimum/maximum propagate a NaN from either side; f32::min/max do not.
            Bin::Min | Bin::Max => {
                let (x, y) = (self.operand(a), self.operand(b));
                let cmp = if op == Bin::Min { quote!(<) } else { quote!(>) };
                out.extend(quote!(if #x #cmp #y || #x.is_nan() { #x } else { #y }));
            }
        }
    }

    fn emit_fun(&mut self, f: Fun, a: usize, out: &mut TokenStream) {
        let ts = match f {
            Fun::Exp | Fun::Ln | Fun::Sqrt | Fun::Abs | Fun::Tanh => {
                self.receiver(a, out);
                out.extend(match f {
                    Fun::Exp => quote!(.exp()),
                    Fun::Ln => quote!(.ln()),
                    Fun::Sqrt => quote!(.sqrt()),
                    Fun::Abs => quote!(.abs()),
                    _ => quote!(.tanh()),
                });
                return;
            }
            Fun::Sigmoid => {
                let mut x = TokenStream::new();
                self.receiver(a, &mut x);
                quote!((1.0 / (1.0 + (-#x).exp())))
            }
            // relu(NaN) = NaN, as in PyTorch (f32::max would give 0).
            Fun::Relu => {
                let x = self.operand(a);
                quote!((if #x < 0.0 { 0.0 } else { #x }))
            }
            Fun::Softplus => {
                let x = self.operand(a);
                let t = literal(SOFTPLUS_THRESHOLD);
                quote!((if #x > #t { #x } else { #x.exp().ln_1p() }))
            }
        };
        out.extend(ts);
    }
}

/// An unsuffixed float literal (`1.0`, `0.044715`).
pub fn literal(v: f64) -> TokenStream {
    let lit = proc_macro2::Literal::f64_unsuffixed(v);
    quote!(#lit)
}

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
        E::Un(f, a) => {
            let n = match f {
                Fun::Exp => "exp",
                Fun::Ln => "ln",
                Fun::Sqrt => "sqrt",
                Fun::Abs => "abs",
                Fun::Tanh => "tanh",
                Fun::Sigmoid => "σ",
                Fun::Relu => "relu",
                Fun::Softplus => "softplus",
            };
            (format!("{n}({})", sub(a, 0)), 4)
        }
        E::Pow(a, p) => (format!("{}^{p}", sub(a, 4)), 4),
        E::Where(cmp, p) => {
            let [l, r, t, f] = &**p;
            let op = match cmp {
                Cmp::Gt => ">",
                Cmp::Lt => "<",
                Cmp::Eq => "=",
            };
            let (l, r, t, f) = (sub(l, 1), sub(r, 1), sub(t, 1), sub(f, 1));
            (format!("({t} if {l} {op} {r} else {f})"), 4)
        }
    }
}
