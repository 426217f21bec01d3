//! `batch_norm(x, momentum = 0.1, eps = 1e-5)` (per feature for `[F]`, per channel for
//! `[C, …]`, as `nn.BatchNorm1d/2d`) and `layer_norm(x, eps = 1e-5)` over the last dim (as
//! `nn.LayerNorm(n)`).
//!
//! forward:  x̂ = (x − μ)/√(σ² + ε), y = γ·x̂ + β; batch norm in training uses the batch's
//!           μ and biased σ² per channel and updates the running statistics
//!           (momentum, unbiased σ²); in evaluation it uses the running statistics
//! params:   ∇γ = Σ d_y·x̂, ∇β = Σ d_y
//! residual: d_x = γ/(N·√(σ² + ε))·(N·d_y − Σd_y − x̂·Σ(d_y·x̂)) (statistics of the batch),
//!           d_x = d_y·γ/√(σ² + ε) (batch norm in evaluation)

use super::{float_lit, layer_params, node_arg, AuxSpec, Built, Call, Cx, Op, ParamInit};
use crate::graph::{BufferId, Builder, NodeId, ParamId};
use crate::lowering::LetCx;
use crate::symbolic::literal;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

struct Norm {
    x: [NodeId; 1],
    /// Batch norm: channels and the elements per channel and sample. Layer norm: rows per
    /// sample and the normalized size.
    outer: usize,
    inner: usize,
    eps: f64,
    /// `Some(momentum)` for batch norm.
    momentum: Option<f64>,
    params: Vec<ParamId>,
    buffers: Vec<BufferId>,
}

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
    let batch_norm = *call.func == "batch_norm";
    let (hypers, usage): (&[&str], _) = if batch_norm {
        (
            &["momentum", "eps"],
            "batch_norm(x, momentum = 0.1, eps = 1e-5)",
        )
    } else {
        (&["eps"], "layer_norm(x, eps = 1e-5)")
    };
    if !call.check(b.cx, 1, 1, hypers, usage) {
        return None;
    }
    let x = node_arg(
        b,
        l,
        call.args[0],
        if batch_norm {
            "batch_norm"
        } else {
            "layer_norm"
        },
    )?;
    let eps = match call.hyper("eps") {
        Some(e) => positive(b, e, "eps")?,
        None => 1e-5,
    };
    let momentum = match call.hyper("momentum") {
        Some(e) => Some(positive(b, e, "momentum")?),
        None => batch_norm.then_some(0.1),
    };
    let shape = b.node(x).shape.clone()?;
    let Some((&first, &last)) = shape.first().zip(shape.last()) else {
        b.cx.error_at(
            call.args[0],
            format!(
                "`{}` needs an input with at least one dimension, found a scalar []",
                call.func
            ),
        );
        return None;
    };
    let numel: usize = crate::syntax::numel(&shape);
    let (outer, inner, c) = if batch_norm {
        (first, numel / first, first)
    } else {
        (numel / last, last, last)
    };
    let params = layer_params(
        b,
        l,
        call,
        vec![
            ("weight", vec![c], ParamInit::Const(1.0)),
            ("bias", vec![c], ParamInit::Const(0.0)),
        ],
    )?;
    let buffers = if batch_norm {
        vec![
            b.add_buffer(format!("{}.running_mean", l.name), vec![c], 0.0),
            b.add_buffer(format!("{}.running_var", l.name), vec![c], 1.0),
            b.add_buffer(format!("{}.num_batches_tracked", l.name), vec![], 0.0),
        ]
    } else {
        vec![]
    };
    Some((
        Box::new(Norm {
            x: [x],
            outer,
            inner,
            eps,
            momentum,
            params,
            buffers,
        }),
        shape,
    ))
}

fn positive(b: &Builder, e: &syn::Expr, what: &str) -> Option<f64> {
    let v = float_lit(b.cx, e, what)?;
    if !(v > 0.0 && v.is_finite()) {
        b.cx.error_at(e, format!("{what} must be a positive number, found {v}"));
        return None;
    }
    Some(v)
}

impl Norm {
    fn dims(&self) -> (Literal, Literal, TokenStream) {
        (
            Literal::usize_unsuffixed(self.outer),
            Literal::usize_unsuffixed(self.inner),
            literal(self.eps),
        )
    }
}

impl Op for Norm {
    fn name(&self) -> &'static str {
        if self.momentum.is_some() {
            "batch_norm"
        } else {
            "layer_norm"
        }
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn buffers(&self) -> &[BufferId] {
        &self.buffers
    }
    fn aux(&self) -> Vec<AuxSpec> {
        let per_sample = self.outer * self.inner;
        match self.momentum {
            Some(_) => vec![
                AuxSpec::saved("xhat", per_sample),
                AuxSpec {
                    fixed: self.outer,
                    per_sample: 0,
                    ..AuxSpec::saved("mean", 0)
                },
                AuxSpec {
                    fixed: self.outer,
                    per_sample: 0,
                    ..AuxSpec::saved("var", 0)
                },
                AuxSpec {
                    fixed: self.outer,
                    per_sample: 0,
                    ..AuxSpec::saved("inv_std", 0)
                },
            ],
            None => vec![
                AuxSpec::saved("xhat", per_sample),
                AuxSpec::saved("inv_std", self.outer),
            ],
        }
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, y, batch, training) = (cx.value(self.x[0]), cx.value(out), &cx.batch, &cx.training);
        let (w, b) = (
            &cx.g.params[self.params[0]].ident,
            &cx.g.params[self.params[1]].ident,
        );
        let (xhat, inv_std) = (cx.aux(out, "xhat"), cx.aux(out, "inv_std"));
        let (outer, inner, eps) = self.dims();
        if self.momentum.is_none() {
            let rows = cx.rows(self.x[0], 1);
            return quote!(::bp::kernels::layer_norm(#rows, #inner, #eps, #x, #w, #b, #y, #xhat, #inv_std););
        }
        let (mean, var) = (cx.aux(out, "mean"), cx.aux(out, "var"));
        let (rm, rv) = (cx.buffer(self.buffers[0]), cx.buffer(self.buffers[1]));
        quote! {
            if #training {
                ::bp::kernels::batch_norm_train(#batch, #outer, #inner, #eps, #x, #w, #b, #y, #xhat, #mean, #var, #inv_std);
            } else {
                ::bp::kernels::batch_norm_eval(#batch, #outer, #inner, #eps, #x, #w, #b, #rm, #rv, #y, #xhat, #inv_std);
            }
        }
    }

    fn update(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let Some(momentum) = self.momentum else {
            return TokenStream::new();
        };
        let (mean, var, batch) = (cx.aux(out, "mean"), cx.aux(out, "var"), &cx.batch);
        let [rm, rv, nbt] = [0, 1, 2].map(|i| cx.buffer(self.buffers[i]));
        let (outer, inner, _) = self.dims();
        let m = literal(momentum);
        quote!(::bp::kernels::batch_norm_update_running(#outer, #batch * #inner, #m, #mean, #var, #rm, #rv, #nbt);)
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (dy, batch, training, acc) =
            (cx.residual(out), &cx.batch, &cx.training, &cx.accumulate);
        let (w, dw, db) = (
            &cx.g.params[self.params[0]].ident,
            &cx.g.params[self.params[0]].grad_ident,
            &cx.g.params[self.params[1]].grad_ident,
        );
        let (xhat, inv_std) = (cx.aux(out, "xhat"), cx.aux(out, "inv_std"));
        let (outer, inner, _) = self.dims();
        let (pre, dx, acc_x) = match cx.contribute(self.x[0]) {
            Some(c) => {
                let d = c.ident;
                (c.prelude, quote!(Some(#d.as_mut_slice())), c.acc)
            }
            None => (TokenStream::new(), quote!(None), quote!(false)),
        };
        if self.momentum.is_none() {
            let rows = cx.rows(self.x[0], 1);
            return quote!(#pre ::bp::kernels::layer_norm_backward(#rows, #inner, #dy, #xhat, #w, #inv_std, #dw, #db, #acc, #dx, #acc_x););
        }
        quote!(#pre ::bp::kernels::batch_norm_backward(#batch, #outer, #inner, #training, #dy, #xhat, #w, #inv_std, #dw, #db, #acc, #dx, #acc_x);)
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        let (x, y) = (cx.name(self.x[0]), cx.name(out));
        let (w, b) = (
            &cx.g.params[self.params[0]].torch_name,
            &cx.g.params[self.params[1]].torch_name,
        );
        let stats = if self.momentum.is_some() {
            "per channel over the batch (running statistics in evaluation)"
        } else {
            "over the last dim"
        };
        format!(
            "{y} = {w}·({x} − μ)/√(σ² + {:e}) + {b}   (μ, σ² {stats})",
            self.eps
        )
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        let dy = cx.d_name(out);
        let (dw, db) = (
            &cx.g.params[self.params[0]].grad_ident,
            &cx.g.params[self.params[1]].grad_ident,
        );
        let mut lines = vec![format!("{dw} = Σ {dy}·x̂"), format!("{db} = Σ {dy}")];
        if cx.wants(self.x[0]) {
            let w = &cx.g.params[self.params[0]].torch_name;
            lines.push(format!(
                "{} {w}/(N·√(σ² + ε))·(N·{dy} − Σ{dy} − x̂·Σ({dy}·x̂))",
                cx.doc_assign(self.x[0])
            ));
        }
        lines
    }

    fn structure(&self) -> String {
        format!(
            "{}(eps={}, momentum={:?})",
            self.name(),
            self.eps,
            self.momentum
        )
    }
}
