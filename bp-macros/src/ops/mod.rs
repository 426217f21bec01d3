//! The operations. Each file answers the three questions of the derivation for one
//! family: the shape it passes forward (its `build`), the gradient of its parameters and
//! the residual it passes back (its `backward`), next to its `forward`.

pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod linear;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
pub mod structure;

use crate::ctxt::{did_you_mean, Ctxt};
use crate::graph::{AuxTy, BufferId, Builder, Graph, Kind, NodeId, ParamId, Place};
use crate::lowering::{lower_operand, LetCx};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, ToTokens};
use std::cell::RefCell;
use syn::{Expr, ExprLit, Lit};

/// One operation node.
pub trait Op {
    /// The operation's name as the user writes it.
    fn name(&self) -> &'static str;
    /// The nodes it reads, in argument order.
    fn operands(&self) -> &[NodeId];
    /// The parameters it owns.
    fn params(&self) -> &[ParamId] {
        &[]
    }
    /// The buffers it owns (saved, never trained).
    fn buffers(&self) -> &[BufferId] {
        &[]
    }
    /// The workspaces it keeps (sized by the emitter before forward or backward).
    fn aux(&self) -> Vec<AuxSpec> {
        Vec::new()
    }
    /// Statements run in training mode before the forward pass (dropout draws its mask).
    fn prepare(&self, _cx: &Cx, _out: NodeId) -> TokenStream {
        TokenStream::new()
    }
    /// Statements run in training mode after the forward pass (batch norm's running
    /// statistics).
    fn update(&self, _cx: &Cx, _out: NodeId) -> TokenStream {
        TokenStream::new()
    }
    /// Statements computing node `out`'s value (its buffer is already sized).
    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream;
    /// Statements computing the gradients of its parameters and its contributions to the
    /// residuals of its operands, from `out`'s residual.
    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream;
    /// The forward step in math, for the docs.
    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String;
    /// The backward steps in math, for the docs.
    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String>;
    /// Hyperparameters, for the structure hash.
    fn structure(&self) -> String;
}

/// A workspace an operation declares.
pub struct AuxSpec {
    pub name: &'static str,
    pub ty: AuxTy,
    pub place: Place,
    pub per_sample: usize,
    pub fixed: usize,
}

impl AuxSpec {
    /// A float workspace filled by forward, `per_sample` elements per sample.
    pub fn saved(name: &'static str, per_sample: usize) -> AuxSpec {
        AuxSpec {
            name,
            ty: AuxTy::Float,
            place: Place::Forward,
            per_sample,
            fixed: 0,
        }
    }
    /// A float scratch of backward, `per_sample` per sample plus `fixed`.
    pub fn scratch(name: &'static str, per_sample: usize, fixed: usize) -> AuxSpec {
        AuxSpec {
            name,
            ty: AuxTy::Float,
            place: Place::Backward,
            per_sample,
            fixed,
        }
    }
}

/// How a parameter starts.
#[derive(Clone, Debug)]
pub enum ParamInit {
    Const(f64),
    Normal(f64),
    Uniform(f64, f64),
}

/// Reads a `param`'s initializer.
pub fn param_init(e: &Expr, cx: &Ctxt) -> ParamInit {
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
pub fn float_lit(cx: &Ctxt, e: &Expr, what: &str) -> Option<f64> {
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
pub fn int_lit(cx: &Ctxt, e: &Expr, what: &str) -> Option<usize> {
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
pub fn index_lit(cx: &Ctxt, e: &Expr, what: &str) -> Option<usize> {
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
pub fn bool_lit(cx: &Ctxt, e: &Expr, what: &str) -> Option<bool> {
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
    pub fn parse(cx: &Ctxt, func: &'e Ident, call: &'e syn::ExprCall) -> Option<Call<'e>> {
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
    pub fn check(&self, cx: &Ctxt, min: usize, max: usize, allowed: &[&str], usage: &str) -> bool {
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

/// Every operation name, for "did you mean".
pub const KNOWN: &[&str] = &[
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "batch_norm",
    "layer_norm",
    "dropout",
    "rnn",
    "lstm",
    "gru",
    "last",
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "leaky_relu",
    "gelu",
    "silu",
    "softplus",
    "elu",
    "exp",
    "ln",
    "sqrt",
    "abs",
    "pow",
    "min",
    "max",
    "sum",
    "mean",
    "softmax",
    "log_softmax",
    "concat",
    "flatten",
];

/// What an operation's `build` returns: the op and its per-sample output shape.
pub type Built = (Box<dyn Op>, Vec<usize>);

/// Builds the node of a non-elementwise operation.
pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call, name: Option<&Ident>) -> Option<NodeId> {
    let func = call.func.to_string();
    let built = match func.as_str() {
        "linear" => linear::build(b, l, call),
        "sum" | "mean" => reduce::build(b, l, call),
        "softmax" | "log_softmax" => softmax::build(b, l, call),
        "concat" => structure::build_concat(b, l, call),
        "flatten" => structure::build_flatten(b, l, call),
        "last" => structure::build_last(b, l, call),
        "dropout" => dropout::build(b, l, call),
        "batch_norm" | "layer_norm" => norm::build(b, l, call),
        "max_pool2d" | "avg_pool2d" => pool::build(b, l, call),
        "conv2d" => conv::build(b, l, call),
        "rnn" | "lstm" | "gru" => recurrent::build(b, l, call),
        _ => {
            b.cx.error(
                call.func.span(),
                format!(
                    "unknown operation `{func}`{}",
                    did_you_mean(&func, KNOWN.iter().copied())
                ),
            );
            None
        }
    };
    let (op, shape) = built?;
    Some(match name {
        Some(name) => b.define(name, Kind::Op(op), Some(shape)),
        None => {
            let anon = format!("{}_{func}", l.name);
            let ident = Ident::new(&anon, call.func.span());
            b.push(anon, ident, false, Kind::Op(op), Some(shape))
        }
    })
}

/// Lowers an argument that must be a batched node (an input or a node computed from one).
pub fn node_arg(b: &mut Builder, l: &mut LetCx, e: &Expr, op: &str) -> Option<NodeId> {
    let id = lower_operand(b, l, e)?;
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
    l: &mut LetCx,
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

/// What the operations need to know while emitting code.
pub struct Cx<'a> {
    pub g: &'a Graph,
    /// `f32` or `f64`.
    pub ty: TokenStream,
    /// The batch size, a local of the generated function.
    pub batch: Ident,
    /// Whether the network is in training mode, a local of the generated function.
    pub training: Ident,
    /// The dropout random stream, a local of `prepare_pass`.
    pub rng: Ident,
    /// The runtime flag of `backward_accumulate`.
    pub accumulate: Ident,
    /// Residual identifiers per node (`None`: the node gets no residual).
    pub residuals: &'a [Option<Ident>],
    /// Nodes whose residual already holds a contribution in the backward being emitted.
    written: RefCell<Vec<bool>>,
    /// The backward pass's `Option` learning rate of the fused SGD step (`backward_sgd`).
    pub sgd: Ident,
    /// The learning rate once unwrapped from `sgd`.
    pub lr: Ident,
    /// Parameters whose op folds the SGD step into its own backward ([`Cx::fuse_sgd`]).
    fused: RefCell<Vec<ParamId>>,
}

/// How a contribution is written into a residual.
pub struct Contribution {
    /// The residual (or, for a free param, gradient) buffer.
    pub ident: Ident,
    /// Statements to run before the first write (sizing the buffer).
    pub prelude: TokenStream,
    /// `false` to overwrite, `true` to add, or the runtime `accumulate` flag.
    pub acc: TokenStream,
    /// Whether this contribution overwrites for sure.
    pub first: bool,
    /// Whether overwrite-or-add is decided at run time (a free param's first gradient).
    pub runtime: bool,
}

impl<'a> Cx<'a> {
    pub fn new(g: &'a Graph, residuals: &'a [Option<Ident>], written: Vec<bool>) -> Cx<'a> {
        Cx {
            g,
            ty: match g.dtype {
                crate::syntax::Dtype::F32 => quote!(f32),
                crate::syntax::Dtype::F64 => quote!(f64),
            },
            batch: Ident::new("batch", Span::mixed_site()),
            training: Ident::new("training", Span::mixed_site()),
            rng: Ident::new("rng", Span::mixed_site()),
            accumulate: Ident::new("accumulate", Span::mixed_site()),
            residuals,
            written: RefCell::new(written),
            sgd: Ident::new("sgd", Span::mixed_site()),
            lr: Ident::new("lr", Span::mixed_site()),
            fused: RefCell::new(Vec::new()),
        }
    }

    /// For an op that applies the fused SGD step to its parameter `p` itself (inside a
    /// product, under `if let Some(lr) = sgd`): records that, so the emitter adds no
    /// separate update, and returns `params.p.as_mut_slice()` — the parameter, mutable.
    /// The op must emit this after its last read of `p`.
    pub fn fuse_sgd(&self, p: ParamId) -> TokenStream {
        self.fused.borrow_mut().push(p);
        let params = Ident::new("params", Span::mixed_site());
        let field = &self.g.params[p].ident;
        quote!(#params.#field.as_mut_slice())
    }

    /// Whether an op took the SGD step of parameter `p` over ([`Cx::fuse_sgd`]).
    pub fn is_fused(&self, p: ParamId) -> bool {
        self.fused.borrow().contains(&p)
    }

    /// The value of a node (a free param's value for a param node).
    pub fn value(&self, id: NodeId) -> &Ident {
        match self.g.nodes[id].kind {
            Kind::Param(p) => &self.g.params[p].ident,
            _ => &self.g.nodes[id].ident,
        }
    }

    /// The identifier of workspace `name` of node `id`.
    pub fn aux(&self, id: NodeId, name: &str) -> &Ident {
        self.g
            .aux
            .iter()
            .find(|a| a.node == id && a.name == name)
            .map_or(&self.g.nodes[id].ident, |a| &a.ident)
    }

    /// The identifier of a buffer.
    pub fn buffer(&self, b: BufferId) -> &Ident {
        &self.g.buffers[b].ident
    }

    /// The display name of a node in the docs.
    pub fn name(&self, id: NodeId) -> String {
        match self.g.nodes[id].kind {
            Kind::Param(p) => self.g.params[p].torch_name.clone(),
            _ => self.g.nodes[id].ident.to_string(),
        }
    }

    /// The display name of a node's residual in the docs.
    pub fn d_name(&self, id: NodeId) -> String {
        match self.g.nodes[id].kind {
            Kind::Param(p) => self.g.params[p].grad_ident.to_string(),
            _ => self.residuals[id]
                .as_ref()
                .map_or_else(|| "0".into(), |r| r.to_string()),
        }
    }

    pub fn shape(&self, id: NodeId) -> &[usize] {
        self.g.shape(id)
    }

    /// Number of per-sample elements.
    pub fn numel(&self, id: NodeId) -> usize {
        crate::syntax::numel(self.shape(id))
    }

    pub fn is_param(&self, id: NodeId) -> bool {
        self.g.nodes[id].is_param()
    }

    /// The residual of `out` (the node whose backward is emitted).
    pub fn residual(&self, out: NodeId) -> &Ident {
        self.residuals[out]
            .as_ref()
            .unwrap_or(&self.g.nodes[out].ident)
    }

    /// Whether node `id` receives contributions.
    pub fn wants(&self, id: NodeId) -> bool {
        match self.g.nodes[id].kind {
            Kind::Param(_) => true,
            _ => self.residuals[id].is_some(),
        }
    }

    /// Tokens `batch * r` for the rows of a node when its last `keep` dims are the row.
    pub fn rows(&self, id: NodeId, keep: usize) -> TokenStream {
        let shape = self.shape(id);
        let outer: usize = crate::syntax::numel(&shape[..shape.len().saturating_sub(keep)]);
        let batch = &self.batch;
        if outer == 1 {
            quote!(#batch)
        } else {
            let outer = proc_macro2::Literal::usize_unsuffixed(outer);
            quote!(#batch * #outer)
        }
    }

    /// The full shape `&[batch, d1, …]` of a node's buffers.
    pub fn dims(&self, id: NodeId) -> TokenStream {
        let batch = &self.batch;
        let dims = self
            .shape(id)
            .iter()
            .map(|&d| proc_macro2::Literal::usize_unsuffixed(d));
        quote!(&[#batch #(, #dims)*])
    }

    /// `d_x =` for the first contribution to node `id`'s residual, `d_x +=` after, for the
    /// docs (it counts as a contribution, as `contribute` does).
    pub fn doc_assign(&self, id: NodeId) -> String {
        let d = self.d_name(id);
        match self.contribute(id) {
            Some(c) if c.first || c.runtime => format!("{d} ="),
            _ => format!("{d} +="),
        }
    }

    /// The next contribution to node `id`'s residual: the first one overwrites (after
    /// sizing the buffer), later ones add. For a free param the first one follows the
    /// runtime `accumulate` flag.
    pub fn contribute(&self, id: NodeId) -> Option<Contribution> {
        if !self.wants(id) {
            return None;
        }
        let first = !std::mem::replace(&mut self.written.borrow_mut()[id], true);
        if let Kind::Param(p) = self.g.nodes[id].kind {
            let acc = &self.accumulate;
            return Some(Contribution {
                ident: self.g.params[p].grad_ident.clone(),
                prelude: TokenStream::new(),
                acc: if first { quote!(#acc) } else { quote!(true) },
                first: false,
                runtime: first,
            });
        }
        let ident = self.residuals[id].clone()?;
        let dims = self.dims(id);
        Some(Contribution {
            prelude: if first {
                quote!(#ident.resize(#dims);)
            } else {
                TokenStream::new()
            },
            ident,
            acc: if first { quote!(false) } else { quote!(true) },
            first,
            runtime: false,
        })
    }
}
