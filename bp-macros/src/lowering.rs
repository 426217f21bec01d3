//! Lowering of one `let`: its expression becomes nodes. Elementwise parts (arithmetic,
//! activations, literals) are collected into one symbolic tree, fused into a single
//! loop; every other operation (linear, softmax, …) becomes its own node, and its
//! arguments are lowered first.

use crate::graph::{Builder, Kind, NodeId};
use crate::ops::{self, elementwise::Fused, Call};
use crate::symbolic::{self as s, Bin, Fun, E};
use proc_macro2::{Ident, Span};
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit, UnOp};

/// State of the `let` being lowered.
pub struct LetCx<'e> {
    /// The `let`'s name: it names the layer's parameters (`fc1.weight`).
    pub name: &'e Ident,
    /// The span of the layer that took the parameter names, if one did.
    pub layer: Option<Span>,
    /// Nodes this `let` reads, so a failed `let` still counts them as used.
    pub reads: Vec<NodeId>,
    anon: usize,
}

/// A lowered elementwise expression.
pub struct Low<'e> {
    pub e: E,
    pub shape: Vec<usize>,
    /// Whether it depends on a batched node (an input or a node computed from one).
    pub batched: bool,
    /// The source expression, printed only for an error message (printing it at every
    /// level of a long sum would make lowering quadratic in its length).
    pub src: &'e Expr,
    /// The formula's terms, counted as a tree (saturating).
    pub size: usize,
    /// How deeply elementwise functions nest in it (`relu(exp(x))` is 2).
    pub depth: usize,
}

/// A fused node's formula stays within these bounds: a larger subexpression over an
/// input becomes an anonymous node of its own. Differentiating a formula can copy a
/// subtree into both branches of a kink (`abs`, `max`, `elu`…), so its derivative grows
/// exponentially with the nesting depth; bounded formulas keep every stage linear in the
/// description, at the price of a loop boundary inside very deep or long expressions.
const FORMULA_TERMS: usize = 64;
const FORMULA_DEPTH: usize = 4;

/// A subexpression over parameters and literals only cannot be a node (nodes are
/// per sample); beyond these bounds it is an error.
const PARAM_FORMULA_TERMS: usize = 4096;
const PARAM_FORMULA_DEPTH: usize = 12;

/// `low`, or a `Var` of a new anonymous node computing it when it is over the bounds.
fn bounded<'e>(
    b: &mut Builder,
    l: &mut LetCx,
    operands: &mut Vec<NodeId>,
    low: Low<'e>,
) -> Option<Low<'e>> {
    let small = low.size <= FORMULA_TERMS && low.depth < FORMULA_DEPTH;
    if small || matches!(low.e, E::Var(_) | E::Const(_)) {
        return Some(low);
    }
    if !low.batched {
        if low.size <= PARAM_FORMULA_TERMS && low.depth <= PARAM_FORMULA_DEPTH {
            return Some(low);
        }
        b.cx.error_at(
            low.src,
            format!(
                "this formula over parameters and literals only is too large to differentiate \
                 ({} terms, functions nested {} deep; the limits are {PARAM_FORMULA_TERMS} and \
                 {PARAM_FORMULA_DEPTH}): compute it from an input, or simplify it",
                low.size, low.depth
            ),
        );
        return None;
    }
    l.anon += 1;
    let name = format!("{}_{}", l.name, l.anon);
    let ident = Ident::new(&name, low.src.span_for_errors());
    let src = low.src;
    let id = fused_node_named(b, operands, low, name, ident)?;
    var_of(b, operands, id, src)
}

/// The source text of `e`, for error messages.
fn text(e: &Expr) -> String {
    e.to_token_stream().to_string()
}

/// Lowers `let name = expr;`.
pub fn lower_let(b: &mut Builder, name: &Ident, expr: &Expr) {
    let mut l = LetCx {
        name,
        layer: None,
        reads: Vec::new(),
        anon: 0,
    };
    let root = strip_parens(expr);
    let done = if let Some(call) = structural_call(b, root) {
        call.and_then(|call| ops::build(b, &mut l, &call, Some(name)))
    } else {
        let mut operands = Vec::new();
        lower_tree(b, &mut l, &mut operands, root)
            .and_then(|low| fused_node(b, &operands, low, name))
    };
    if done.is_none() {
        b.define(name, Kind::Error(l.reads.clone()), None);
    }
}

/// Strips parentheses and the invisible groups `macro_rules!` wraps around `$e:expr`.
fn strip_parens(mut e: &Expr) -> &Expr {
    loop {
        match e {
            Expr::Paren(p) => e = &p.expr,
            Expr::Group(g) => e = &g.expr,
            _ => return e,
        }
    }
}

/// `Some(call)` when `e` calls a non-elementwise operation (its node is built
/// separately); `Some(None)` when the call is malformed (already reported).
fn structural_call<'e>(b: &Builder, e: &'e Expr) -> Option<Option<Call<'e>>> {
    let Expr::Call(call) = e else { return None };
    let name = call_name(call)?;
    if elementwise_fn(&name.to_string()).is_some() {
        return None;
    }
    Some(Call::parse(b.cx, name, call))
}

fn call_name(call: &syn::ExprCall) -> Option<&Ident> {
    match &*call.func {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
        _ => None,
    }
}

/// Lowers an expression to a node: a plain name is that node; an elementwise
/// expression becomes an anonymous fused node; a call builds its operation.
pub fn lower_operand(b: &mut Builder, l: &mut LetCx, e: &Expr) -> Option<NodeId> {
    let e = strip_parens(e);
    if let Some(call) = structural_call(b, e) {
        let call = call?;
        return ops::build(b, l, &call, None);
    }
    let mut operands = Vec::new();
    let low = lower_tree(b, l, &mut operands, e)?;
    if let E::Var(k) = low.e {
        return Some(operands[k]);
    }
    l.anon += 1;
    let name = format!("{}_{}", l.name, l.anon);
    let ident = Ident::new(&name, e.span_for_errors());
    let id = fused_node_named(b, &operands, low, name, ident)?;
    Some(id)
}

trait SpanForErrors {
    fn span_for_errors(&self) -> Span;
}
impl SpanForErrors for Expr {
    fn span_for_errors(&self) -> Span {
        syn::spanned::Spanned::span(self)
    }
}

/// Makes the `let`'s own fused node from its lowered tree.
fn fused_node(b: &mut Builder, operands: &[NodeId], low: Low, name: &Ident) -> Option<NodeId> {
    if !low.batched {
        b.cx.error(
            name.span(),
            format!(
                "`{name}` depends on no input, only on params and literals; nodes are computed per sample from an input"
            ),
        );
        return None;
    }
    let fused = Fused::new(b, operands, low.e);
    Some(b.define(name, Kind::Op(Box::new(fused)), Some(low.shape)))
}

fn fused_node_named(
    b: &mut Builder,
    operands: &[NodeId],
    low: Low,
    name: String,
    ident: Ident,
) -> Option<NodeId> {
    if !low.batched {
        b.cx.error(
            ident.span(),
            format!(
                "`{}` depends on no input, only on params and literals",
                text(low.src)
            ),
        );
        return None;
    }
    let fused = Fused::new(b, operands, low.e);
    Some(b.push(
        name,
        ident,
        false,
        Kind::Op(Box::new(fused)),
        Some(low.shape),
    ))
}

/// Lowers an elementwise expression; `operands` collects the nodes it reads.
pub fn lower_tree<'e>(
    b: &mut Builder,
    l: &mut LetCx,
    operands: &mut Vec<NodeId>,
    e: &'e Expr,
) -> Option<Low<'e>> {
    match e {
        Expr::Paren(p) => lower_tree(b, l, operands, &p.expr),
        Expr::Group(g) => lower_tree(b, l, operands, &g.expr),
        Expr::Lit(ExprLit { lit, .. }) => {
            let v = literal_value(lit).or_else(|| {
                b.cx.error_at(lit, "expected a number");
                None
            })?;
            if !v.is_finite() {
                b.cx.error_at(
                    lit,
                    format!("the literal `{}` is {v}: it must be finite", text(e)),
                );
                return None;
            }
            Some(Low {
                e: E::Const(v),
                shape: vec![],
                batched: false,
                src: e,
                size: 1,
                depth: 0,
            })
        }
        Expr::Path(p) if p.path.get_ident().is_some() => {
            let ident = p.path.get_ident()?;
            let id = b.resolve(ident)?;
            l.reads.push(id);
            var_of(b, operands, id, e)
        }
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            let a = lower_tree(b, l, operands, &u.expr)?;
            let a = bounded(b, l, operands, a)?;
            Some(Low {
                e: s::neg(a.e),
                src: e,
                size: a.size.saturating_add(1),
                ..a
            })
        }
        Expr::Binary(bin) => {
            let op = match bin.op {
                syn::BinOp::Add(_) => Bin::Add,
                syn::BinOp::Sub(_) => Bin::Sub,
                syn::BinOp::Mul(_) => Bin::Mul,
                syn::BinOp::Div(_) => Bin::Div,
                _ => {
                    b.cx.error_at(&bin.op, "unsupported operator; networks use `+ - * /`");
                    return None;
                }
            };
            let lhs =
                lower_tree(b, l, operands, &bin.left).and_then(|x| bounded(b, l, operands, x));
            let rhs =
                lower_tree(b, l, operands, &bin.right).and_then(|x| bounded(b, l, operands, x));
            combine(b, lhs?, rhs?, &bin.right, |x, y| s::bin(op, x, y), e)
        }
        Expr::Call(call) => {
            if let Some(parsed) = structural_call(b, e) {
                let id = ops::build(b, l, &parsed?, None)?;
                return var_of(b, operands, id, e);
            }
            lower_call(b, l, operands, call, e)
        }
        _ => {
            b.cx.error_at(
                e,
                "unsupported expression; a node is built from names, numbers, `+ - * /` and operations like `relu(x)`",
            );
            None
        }
    }
}

/// The operand `Var` for node `id`.
fn var_of<'e>(
    b: &Builder,
    operands: &mut Vec<NodeId>,
    id: NodeId,
    src: &'e Expr,
) -> Option<Low<'e>> {
    let node = b.node(id);
    let shape = node.shape.clone()?;
    let batched = !node.is_param();
    let k = operands.iter().position(|&o| o == id).unwrap_or_else(|| {
        operands.push(id);
        operands.len() - 1
    });
    Some(Low {
        e: E::Var(k),
        shape,
        batched,
        src,
        size: 1,
        depth: 0,
    })
}

fn literal_value(lit: &Lit) -> Option<f64> {
    match lit {
        Lit::Float(f) => f.base10_parse().ok(),
        Lit::Int(i) => i.base10_parse::<i64>().ok().map(|v| v as f64),
        _ => None,
    }
}

/// The broadcasting rule: equal per-sample shapes, or one side a scalar.
pub fn combine<'e>(
    b: &Builder,
    lhs: Low,
    rhs: Low,
    at: &dyn ToTokens,
    f: impl FnOnce(E, E) -> E,
    src: &'e Expr,
) -> Option<Low<'e>> {
    let shape = if lhs.shape == rhs.shape || rhs.shape.is_empty() {
        lhs.shape.clone()
    } else if lhs.shape.is_empty() {
        rhs.shape.clone()
    } else {
        b.cx.error_at(
            at,
            format!(
                "shape mismatch: `{}` is {:?} but `{}` is {:?}; elementwise operands need equal shapes or one scalar",
                text(lhs.src),
                lhs.shape,
                text(rhs.src),
                rhs.shape
            ),
        );
        return None;
    };
    Some(Low {
        e: f(lhs.e, rhs.e),
        shape,
        batched: lhs.batched || rhs.batched,
        src,
        size: lhs.size.saturating_add(rhs.size).saturating_add(1),
        depth: lhs.depth.max(rhs.depth),
    })
}

/// The elementwise functions: (positional arguments, hyperparameters with defaults).
pub fn elementwise_fn(name: &str) -> Option<(usize, &'static [(&'static str, f64)])> {
    Some(match name {
        "relu" | "sigmoid" | "tanh" | "gelu" | "silu" | "softplus" | "exp" | "ln" | "sqrt"
        | "abs" => (1, &[]),
        "leaky_relu" => (1, &[("slope", 0.01)]),
        "elu" => (1, &[("alpha", 1.0)]),
        "pow" | "min" | "max" => (2, &[]),
        _ => return None,
    })
}

fn lower_call<'e>(
    b: &mut Builder,
    l: &mut LetCx,
    operands: &mut Vec<NodeId>,
    call: &'e syn::ExprCall,
    src: &'e Expr,
) -> Option<Low<'e>> {
    let Some(name) = call_name(call) else {
        b.cx.error_at(
            &call.func,
            "expected an operation name like `relu` or `linear`",
        );
        return None;
    };
    let key = name.to_string();
    let (arity, hyper) = elementwise_fn(&key)?;
    let parsed = Call::parse(b.cx, name, call)?;
    let mut hv: Vec<f64> = hyper.iter().map(|h| h.1).collect();
    let names: Vec<&str> = hyper.iter().map(|h| h.0).collect();
    // A hyperparameter may also be given positionally: leaky_relu(x, 0.2).
    let positional = parsed.args.len().min(arity + hyper.len());
    if !parsed.check(
        b.cx,
        arity,
        arity + hyper.len(),
        &names,
        &usage(&key, arity, hyper),
    ) {
        return None;
    }
    for (i, arg) in parsed
        .args
        .iter()
        .enumerate()
        .skip(arity)
        .take(positional.saturating_sub(arity))
    {
        hv[i - arity] = ops::float_lit(b.cx, arg, names[i - arity])?;
    }
    for (i, h) in names.iter().enumerate() {
        if let Some(e) = parsed.hyper(h) {
            hv[i] = ops::float_lit(b.cx, e, h)?;
        }
    }
    let arg = |b: &mut Builder, l: &mut LetCx, operands: &mut Vec<NodeId>, i: usize| {
        let x = lower_tree(b, l, operands, parsed.args[i])?;
        bounded(b, l, operands, x)
    };
    if key == "pow" {
        let x = arg(b, l, operands, 0)?;
        let p = ops::float_lit(b.cx, parsed.args[1], "the exponent of pow")?;
        return Some(Low {
            e: s::pow(x.e, p),
            src,
            size: x.size.saturating_add(1),
            depth: x.depth + 1,
            ..x
        });
    }
    if arity == 2 {
        let x = arg(b, l, operands, 0);
        let y = arg(b, l, operands, 1);
        let op = if key == "min" { Bin::Min } else { Bin::Max };
        let low = combine(b, x?, y?, parsed.args[1], |x, y| s::bin(op, x, y), src)?;
        return Some(Low {
            depth: low.depth + 1,
            ..low
        });
    }
    let x = arg(b, l, operands, 0)?;
    let e = activation(&key, x.e, &hv);
    Some(Low {
        size: s::size_at_most(&e, usize::MAX),
        depth: x.depth + 1,
        e,
        src,
        ..x
    })
}

fn usage(name: &str, arity: usize, hyper: &[(&str, f64)]) -> String {
    let mut args: Vec<String> = ["x", "y"][..arity].iter().map(|s| s.to_string()).collect();
    if name == "pow" {
        args[1] = "p".into();
    }
    args.extend(hyper.iter().map(|(h, d)| format!("{h} = {d:?}")));
    format!("{name}({})", args.join(", "))
}

/// An activation as a formula over primitives, so its derivative is derived like any
/// user formula.
fn activation(name: &str, x: E, hyper: &[f64]) -> E {
    use s::{add, c, mul, sub, un, where_};
    let gt0 = |t: E, f: E| where_(s::Cmp::Gt, x.clone(), c(0.0), t, f);
    match name {
        "relu" => un(Fun::Relu, x),
        "sigmoid" => un(Fun::Sigmoid, x),
        "tanh" => un(Fun::Tanh, x),
        "exp" => un(Fun::Exp, x),
        "ln" => un(Fun::Ln, x),
        "sqrt" => un(Fun::Sqrt, x),
        "abs" => un(Fun::Abs, x),
        "softplus" => un(Fun::Softplus, x),
        "silu" => mul(x.clone(), un(Fun::Sigmoid, x)),
        "leaky_relu" => gt0(x.clone(), mul(c(hyper[0]), x.clone())),
        "elu" => gt0(
            x.clone(),
            mul(c(hyper[0]), sub(un(Fun::Exp, x.clone()), c(1.0))),
        ),
        // PyTorch's gelu(approximate='tanh'): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
        _ => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let inner = mul(
                c(k),
                add(x.clone(), mul(c(0.044715), s::pow(x.clone(), 3.0))),
            );
            mul(mul(c(0.5), x), add(c(1.0), un(Fun::Tanh, inner)))
        }
    }
}
