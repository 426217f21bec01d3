//! The elementwise part of an expression: names, literals, `+ - * /` and calls of the
//! function table (`formula::functions`) become one formula over the nodes it reads; a
//! call of another operation is built through the registry of `ops` and read as an
//! operand. Formulas stay within bounds (a larger part becomes a node of its own).

use crate::formula::functions::{self, Default, Function, Value};
use crate::formula::{self as s, size_at_most, Bin, E};
use crate::graph::{Builder, Kind, LetScope, NodeId};
use crate::ops::args::{float_lit, Call};
use crate::ops::{self, elementwise::Fused};
use proc_macro2::{Ident, Span};
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit, UnOp};

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
pub fn bounded<'e>(
    b: &mut Builder,
    l: &mut LetScope,
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
pub fn text(e: &Expr) -> String {
    e.to_token_stream().to_string()
}

/// Strips parentheses and the invisible groups `macro_rules!` wraps around `$e:expr`.
pub fn strip_parens(mut e: &Expr) -> &Expr {
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
pub fn structural_call<'e>(b: &Builder, e: &'e Expr) -> Option<Option<Call<'e>>> {
    let Expr::Call(call) = e else { return None };
    let name = call_name(call)?;
    if crate::formula::functions::lookup(&name.to_string()).is_some() {
        return None;
    }
    Some(Call::parse(b.cx, name, call))
}

pub fn call_name(call: &syn::ExprCall) -> Option<&Ident> {
    match &*call.func {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
        _ => None,
    }
}

trait SpanForErrors {
    fn span_for_errors(&self) -> Span;
}

impl SpanForErrors for Expr {
    fn span_for_errors(&self) -> Span {
        syn::spanned::Spanned::span(self)
    }
}

pub fn fused_node_named(
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
    let fused = Fused::new(operands, low.e);
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
    l: &mut LetScope,
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
pub fn var_of<'e>(
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

/// Lowers `f(x, …, hyper = v)` for an elementwise function `f`.
pub fn lower_call<'e>(
    b: &mut Builder,
    l: &mut LetScope,
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
    let f = functions::lookup(&name.to_string())?;
    let parsed = Call::parse(b.cx, name, call)?;
    let values = hyper_values(b, f, &parsed)?;
    let mut lowered = Vec::with_capacity(f.operands.len());
    for &arg in &parsed.args[..f.operands.len()] {
        let low = lower_tree(b, l, operands, arg).and_then(|x| bounded(b, l, operands, x));
        lowered.push(low);
    }
    let mut lowered = lowered
        .into_iter()
        .collect::<Option<Vec<Low>>>()?
        .into_iter();
    let first = lowered.next()?;
    // The operands broadcast as in arithmetic: equal shapes, or one a scalar.
    let mut joined = Low { src, ..first };
    let mut exprs = vec![joined.e.clone()];
    for (k, next) in lowered.enumerate() {
        exprs.push(next.e.clone());
        joined = combine(b, joined, next, parsed.args[k + 1], |x, _| x, src)?;
    }
    let e = match (f.formula)(&exprs, &values) {
        Ok(e) => e,
        Err(message) => {
            b.cx.error_at(call, message);
            return None;
        }
    };
    Some(Low {
        size: size_at_most(&e, usize::MAX),
        depth: joined.depth + 1,
        e,
        ..joined
    })
}

/// The value of each hyperparameter: given by position after the operands, by name, or
/// its default.
fn hyper_values(b: &Builder, f: &Function, call: &Call) -> Option<Vec<Value>> {
    let n = f.operands.len();
    let names: Vec<&str> = f.hypers.iter().map(|h| h.name).collect();
    let by_name = |name: &str| call.hyper(name).is_some();
    let required = f
        .hypers
        .iter()
        .filter(|h| matches!(h.default, Default::Required) && !by_name(h.name));
    let min = n + required.count();
    if !call.check(b.cx, min, n + f.hypers.len(), &names, &f.usage()) {
        return None;
    }
    let mut values = Vec::with_capacity(f.hypers.len());
    for (i, h) in f.hypers.iter().enumerate() {
        let given = match (call.args.get(n + i), call.hyper(h.name)) {
            (Some(_), Some(e)) => {
                let message = format!("`{}` is given twice, by position and by name", h.name);
                b.cx.error_at(e, message);
                return None;
            }
            (a, named) => a.copied().or(named),
        };
        values.push(match (given, h.default) {
            (None, Default::Float(v)) => Value::Float(v),
            (None, Default::Choice(choices)) => Value::Choice(choices[0]),
            (None, _) => Value::Absent,
            (Some(e), Default::Choice(choices)) => Value::Choice(choice(b, e, h.name, choices)?),
            (Some(e), _) => Value::Float(float_lit(b.cx, e, h.what)?),
        });
    }
    Some(values)
}

/// A string hyperparameter that must be one of `choices`.
fn choice(b: &Builder, e: &Expr, name: &str, choices: &[&'static str]) -> Option<&'static str> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = e
    {
        if let Some(&c) = choices.iter().find(|&&c| c == s.value()) {
            return Some(c);
        }
    }
    let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
    b.cx.error_at(
        e,
        format!(
            "`{name}` is `{}`; it must be one of {}",
            e.to_token_stream(),
            quoted.join(", ")
        ),
    );
    None
}
