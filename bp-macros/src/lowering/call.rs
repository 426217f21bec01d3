//! A call of an elementwise function, lowered from its entry in
//! [`formula::functions`](crate::formula::functions): the arguments checked against the
//! entry's operands and hyperparameters, the operands lowered, the formula built.

use super::expr::{bounded, call_name, combine, lower_tree, Low};
use crate::formula::functions::{self, Default, Function, Value};
use crate::formula::size_at_most;
use crate::graph::{Builder, LetScope, NodeId};
use crate::ops::args::{float_lit, Call};
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit};

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
