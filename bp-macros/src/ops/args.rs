//! The operations. Each file answers the three questions of the derivation for one
//! family: the shape it passes forward (its `build`), the gradient of its parameters and
//! the residual it passes back (its `backward`), next to its `forward`.

use crate::diagnostics::{did_you_mean, Diagnostics};
use crate::graph::{Builder, LetScope, NodeId, ParamId, ParamInit};
use proc_macro2::Ident;
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit};

/// Reads a `param`'s initializer.
pub fn param_init(e: &Expr, cx: &Diagnostics) -> ParamInit {
    const USAGE: &str = "expected a float, `zeros`, `ones`, `normal(std)` or `uniform(lo, hi)`";
    match e {
        Expr::Path(p) if p.path.is_ident("zeros") => ParamInit::Const(0.0),
        Expr::Path(p) if p.path.is_ident("ones") => ParamInit::Const(1.0),
        Expr::Call(call) => {
            let name = match &*call.func {
                Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
                _ => None,
            };
            let args: Vec<Option<f64>> = call
                .args
                .iter()
                .map(|a| float_lit(cx, a, "an initializer argument"))
                .collect();
            match (name.as_deref(), args.as_slice()) {
                (Some("normal"), [Some(std)]) if *std >= 0.0 => ParamInit::Normal(*std),
                (Some("uniform"), [Some(lo), Some(hi)]) if lo <= hi => ParamInit::Uniform(*lo, *hi),
                (Some("normal"), [Some(_)]) => {
                    cx.error_at(call, "normal(std) needs std ≥ 0");
                    ParamInit::Const(0.0)
                }
                (Some("uniform"), [Some(_), Some(_)]) => {
                    cx.error_at(call, "uniform(lo, hi) needs lo ≤ hi");
                    ParamInit::Const(0.0)
                }
                _ => {
                    if args.iter().all(Option::is_some) {
                        cx.error_at(e, USAGE);
                    }
                    ParamInit::Const(0.0)
                }
            }
        }
        _ => match signed_number(e) {
            Some(v) if !v.is_finite() => {
                cx.error_at(e, format!("the initial value is {v}: it must be finite"));
                ParamInit::Const(0.0)
            }
            Some(v) => ParamInit::Const(v),
            None => {
                cx.error_at(e, USAGE);
                ParamInit::Const(0.0)
            }
        },
    }
}

/// A number literal, possibly negated.
fn signed_number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<i64>().ok().map(|v| v as f64),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => signed_number(&u.expr).map(|v| -v),
        Expr::Paren(p) => signed_number(&p.expr),
        _ => None,
    }
}

/// A float hyperparameter (an integer literal is accepted).
pub fn float_lit(cx: &Diagnostics, e: &Expr, what: &str) -> Option<f64> {
    let v = signed_number(e);
    match v {
        None => cx.error_at(e, format!("{what} must be a number literal")),
        Some(v) if !v.is_finite() => {
            cx.error_at(e, format!("{what} is {v}: a number literal must be finite"));
            return None;
        }
        Some(_) => {}
    }
    v
}

/// A positive integer hyperparameter.
pub fn int_lit(cx: &Diagnostics, e: &Expr, what: &str) -> Option<usize> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Int(i), ..
    }) = e
    {
        if let Ok(v) = i.base10_parse::<usize>() {
            if v > 0 && v <= crate::syntax::MAX_ELEMENTS {
                return Some(v);
            }
        }
    }
    cx.error_at(
        e,
        format!(
            "{what} is `{}`; it must be a positive integer literal of at most 2^32",
            quote::ToTokens::to_token_stream(e)
        ),
    );
    None
}

/// A non-negative integer hyperparameter (a dimension index).
pub fn index_lit(cx: &Diagnostics, e: &Expr, what: &str) -> Option<usize> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Int(i), ..
    }) = e
    {
        if let Ok(v) = i.base10_parse::<usize>() {
            if v <= crate::syntax::MAX_ELEMENTS {
                return Some(v);
            }
        }
    }
    cx.error_at(
        e,
        format!(
            "{what} is `{}`; it must be a non-negative integer literal of at most 2^32",
            quote::ToTokens::to_token_stream(e)
        ),
    );
    None
}

/// A boolean hyperparameter.
pub fn bool_lit(cx: &Diagnostics, e: &Expr, what: &str) -> Option<bool> {
    if let Expr::Lit(ExprLit {
        lit: Lit::Bool(b), ..
    }) = e
    {
        return Some(b.value);
    }
    cx.error_at(e, format!("{what} must be `true` or `false`"));
    None
}

/// A call as written: positional arguments and `name = value` hyperparameters.
pub struct Call<'e> {
    pub func: &'e Ident,
    pub args: Vec<&'e Expr>,
    pub hypers: Vec<(&'e Ident, &'e Expr)>,
}

impl<'e> Call<'e> {
    /// Splits the arguments; reports positional-after-named and duplicates.
    pub fn parse(cx: &Diagnostics, func: &'e Ident, call: &'e syn::ExprCall) -> Option<Call<'e>> {
        let mut out = Call {
            func,
            args: Vec::new(),
            hypers: Vec::new(),
        };
        let mut ok = true;
        for arg in &call.args {
            if let Expr::Assign(a) = arg {
                let name = match &*a.left {
                    Expr::Path(p) => p.path.get_ident(),
                    _ => None,
                };
                let Some(name) = name else {
                    cx.error_at(&a.left, "expected a hyperparameter name");
                    ok = false;
                    continue;
                };
                if out.hypers.iter().any(|(n, _)| *n == name) {
                    cx.error(name.span(), format!("duplicate hyperparameter `{name}`"));
                    ok = false;
                }
                out.hypers.push((name, &a.right));
            } else if !out.hypers.is_empty() {
                cx.error_at(arg, "positional argument after a named hyperparameter");
                ok = false;
            } else {
                out.args.push(arg);
            }
        }
        ok.then_some(out)
    }

    /// Checks the number of positional arguments and the hyperparameter names.
    pub fn check(
        &self,
        cx: &Diagnostics,
        min: usize,
        max: usize,
        allowed: &[&str],
        usage: &str,
    ) -> bool {
        let mut ok = true;
        let n = self.args.len();
        if n < min || n > max {
            let expected = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            cx.error(
                self.func.span(),
                format!(
                    "`{}` takes {expected} argument(s) but {n} were given; usage: {usage}",
                    self.func
                ),
            );
            ok = false;
        }
        for (name, _) in &self.hypers {
            let key = name.to_string();
            if !allowed.contains(&key.as_str()) {
                let known = if allowed.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("expected one of: {}", allowed.join(", "))
                };
                cx.error(
                    name.span(),
                    format!(
                        "unknown hyperparameter `{key}` for `{}`; {known}{}",
                        self.func,
                        did_you_mean(&key, allowed.iter().copied())
                    ),
                );
                ok = false;
            }
        }
        ok
    }

    /// A hyperparameter's value, if given.
    pub fn hyper(&self, name: &str) -> Option<&'e Expr> {
        self.hypers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| *e)
    }
}

/// Lowers an argument that must be a batched node (an input or a node computed from one).
pub fn node_arg(b: &mut Builder, l: &mut LetScope, e: &Expr, op: &str) -> Option<NodeId> {
    let id = l.operand(b, e)?;
    l.reads.push(id);
    if b.node(id).is_param() {
        b.cx.error_at(
            e,
            format!(
                "`{}` is a param (no batch dimension); `{op}` needs a node computed from an input",
                e.to_token_stream()
            ),
        );
        return None;
    }
    b.node(id).shape.as_ref()?;
    Some(id)
}

/// Registers the parameters of a layer under the `let`'s name; one layer per `let`.
pub fn layer_params(
    b: &mut Builder,
    l: &mut LetScope,
    call: &Call,
    params: Vec<(&str, Vec<usize>, ParamInit)>,
) -> Option<Vec<ParamId>> {
    if l.layer.is_some() {
        b.cx.error(
            call.func.span(),
            format!(
                "two layers with parameters in one expression: bind this `{}` with its own `let` so its parameters get a name",
                call.func
            ),
        );
        return None;
    }
    l.layer = Some(call.func.span());
    Some(
        params
            .into_iter()
            .map(|(suffix, shape, init)| {
                let name = format!("{}.{suffix}", l.name);
                b.add_param(name, shape, init, call.func.span())
            })
            .collect(),
    )
}

/// A hyperparameter given by position `pos` or by `name`.
pub fn arg_or_hyper<'e>(
    b: &Builder,
    call: &Call<'e>,
    pos: usize,
    name: &str,
) -> Option<Option<&'e syn::Expr>> {
    match (call.args.get(pos), call.hyper(name)) {
        (Some(_), Some(e)) => {
            b.cx.error_at(
                e,
                format!("`{name}` is given twice, by position and by name"),
            );
            None
        }
        (a, h) => Some(a.copied().or(h)),
    }
}

/// `[C, H, W]` or an error naming the shape found.
pub fn image_dims(
    b: &Builder,
    call: &Call,
    shape: &[usize],
    op: &str,
) -> Option<(usize, usize, usize)> {
    match *shape {
        [c, h, w] => Some((c, h, w)),
        _ => {
            b.cx.error_at(
                call.args[0],
                format!(
                    "`{op}` takes an image [C, H, W], but `{}` is {shape:?} (rank {})",
                    call.args[0].to_token_stream(),
                    shape.len()
                ),
            );
            None
        }
    }
}
