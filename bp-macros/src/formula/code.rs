//! Emission of formulas as Rust expressions, with subexpressions used more than once
//! bound once (`let tN = …;`).

use super::prims::{Arg, Prim};
use super::{c, where_, Bin, Cmp, E};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use std::collections::HashMap;

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
    /// The prefix of the temporaries' names (`t` for `t0`, `t1`, …).
    pub temp: &'a str,
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
    Un(&'static str, usize),
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
            E::Un(f, _) => (Key::Un(f.name, kids[0]), E::Un(f, placeholder())),
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
            E::Un(f, _) => f.prec,
            E::Var(_) | E::Out | E::Grad | E::Const(_) | E::Pow(..) => 4,
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
        let name = format_ident!(
            "{}{}",
            self.leaves.temp,
            self.bound.len(),
            span = Span::mixed_site()
        );
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

    /// A method receiver: a bare literal gets its type (`(0.5 as f32)`; a named constant
    /// has it already).
    fn receiver(&mut self, id: usize, out: &mut TokenStream) {
        if let E::Const(v) = self.dag.nodes[id] {
            let ty = &self.leaves.ty;
            let (num, named) = (self.number(v.abs()), named_constant(v.abs()).is_some());
            out.extend(match (v < 0.0, named) {
                (false, true) => num,
                (true, true) => quote!((-#num)),
                (false, false) => quote!((#num as #ty)),
                (true, false) => quote!((-#num as #ty)),
            });
            return;
        }
        self.child(id, 4, out);
    }

    /// A number in the network's type: a constant of `core::f32::consts` (or `f64`) by
    /// its name, any other at the precision of the type (clippy's `approx_constant` and
    /// `excessive_precision` lint the generated code as the user's own).
    fn number(&self, v: f64) -> TokenStream {
        let ty = &self.leaves.ty;
        if let Some(name) = named_constant(v) {
            let name = proc_macro2::Ident::new(name, Span::call_site());
            return quote!(::core::#ty::consts::#name);
        }
        if ty.to_string() == "f32" {
            let lit = proc_macro2::Literal::f32_unsuffixed(v as f32);
            return quote!(#lit);
        }
        literal(v)
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
                let num = self.number(-v);
                out.extend(quote!(-#num));
            }
            E::Const(v) => out.extend(self.number(*v)),
            E::Neg(_) => {
                out.extend(quote!(-));
                self.child(kids[0], 3, out);
            }
            E::Bin(op, _, _) => self.emit_bin(*op, kids[0], kids[1], out),
            E::Un(f, _) => self.emit_fun(f, kids[0], out),
            E::Pow(_, p) => {
                self.receiver(kids[0], out);
                if p.fract() == 0.0 && p.abs() < 1e6 {
                    let p = proc_macro2::Literal::i32_unsuffixed(*p as i32);
                    out.extend(quote!(.powi(#p)));
                } else {
                    let num = if *p < 0.0 {
                        let num = self.number(-p);
                        quote!(-#num)
                    } else {
                        self.number(*p)
                    };
                    out.extend(quote!(.powf(#num)));
                }
            }
            E::Where(cmp, _) => {
                out.extend(quote!(if));
                self.child(kids[0], 1, out);
                out.extend(match cmp {
                    Cmp::Gt => quote!(>),
                    Cmp::Lt => quote!(<),
                    Cmp::Ge => quote!(>=),
                    Cmp::Le => quote!(<=),
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

    /// A primitive's code, its argument written as its entry says.
    fn emit_fun(&mut self, f: &Prim, a: usize, out: &mut TokenStream) {
        let x = match f.arg {
            Arg::Once => {
                let mut x = TokenStream::new();
                self.receiver(a, &mut x);
                x
            }
            Arg::Repeated => self.operand(a),
        };
        out.extend((f.code)(x, &self.leaves.ty));
    }
}

/// The name in `core::f64::consts` of `v`, if it is one of those constants exactly.
fn named_constant(v: f64) -> Option<&'static str> {
    use std::f64::consts as c;
    let named = [
        ("PI", c::PI),
        ("TAU", c::TAU),
        ("E", c::E),
        ("SQRT_2", c::SQRT_2),
        ("FRAC_1_SQRT_2", c::FRAC_1_SQRT_2),
        ("FRAC_2_SQRT_PI", c::FRAC_2_SQRT_PI),
        ("FRAC_1_PI", c::FRAC_1_PI),
        ("FRAC_2_PI", c::FRAC_2_PI),
        ("FRAC_PI_2", c::FRAC_PI_2),
        ("FRAC_PI_3", c::FRAC_PI_3),
        ("FRAC_PI_4", c::FRAC_PI_4),
        ("FRAC_PI_6", c::FRAC_PI_6),
        ("FRAC_PI_8", c::FRAC_PI_8),
        ("LN_2", c::LN_2),
        ("LN_10", c::LN_10),
        ("LOG2_E", c::LOG2_E),
        ("LOG10_E", c::LOG10_E),
        ("LOG2_10", c::LOG2_10),
        ("LOG10_2", c::LOG10_2),
    ];
    named.iter().find(|(_, c)| *c == v).map(|(n, _)| *n)
}

/// An unsuffixed float literal (`1.0`, `0.044715`).
pub fn literal(v: f64) -> TokenStream {
    let lit = proc_macro2::Literal::f64_unsuffixed(v);
    quote!(#lit)
}
