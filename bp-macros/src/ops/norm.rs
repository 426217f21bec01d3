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

use super::args::{float_lit, layer_params, node_arg, Call};
use super::grads::optional_input;
use crate::formula::literal;
use crate::graph::{
    AuxId, AuxSpec, BufferId, Builder, Built, CodeGen, LetScope, NodeId, Op, ParamId, ParamInit,
    Step,
};
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
    /// x̂ and 1/√(σ² + ε), saved for backward.
    xhat: AuxId,
    inv_std: AuxId,
    /// Batch norm: the batch's mean and variance per channel.
    /// Batch norm's `mean`, `var` (forward) and `means` (backward scratch, `2·c`).
    stats: Option<[AuxId; 3]>,
}

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
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
    let (buffers, xhat, inv_std, stats) = state(b, l, batch_norm, c, numel, outer);
    let op = Norm {
        x: [x],
        outer,
        inner,
        eps,
        momentum,
        params,
        buffers,
        xhat,
        inv_std,
        stats,
    };
    Some((Box::new(op), shape))
}

/// Batch norm's buffers (running statistics), and the workspaces: x̂, 1/√(σ² + ε) and for
/// batch norm the batch's mean and variance.
fn state(
    b: &mut Builder,
    l: &LetScope,
    batch_norm: bool,
    channels: usize,
    numel: usize,
    outer: usize,
) -> (Vec<BufferId>, AuxId, AuxId, Option<[AuxId; 3]>) {
    let buffers = if batch_norm {
        vec![
            b.add_buffer(format!("{}.running_mean", l.name), vec![channels], 0.0),
            b.add_buffer(format!("{}.running_var", l.name), vec![channels], 1.0),
            b.add_buffer(format!("{}.num_batches_tracked", l.name), vec![], 0.0),
        ]
    } else {
        vec![]
    };
    let xhat = b.workspace(AuxSpec::saved("xhat", numel));
    if !batch_norm {
        let inv_std = b.workspace(AuxSpec::saved("inv_std", outer));
        return (buffers, xhat, inv_std, None);
    }
    let mean = b.workspace(AuxSpec::saved_fixed("mean", outer));
    let var = b.workspace(AuxSpec::saved_fixed("var", outer));
    let inv_std = b.workspace(AuxSpec::saved_fixed("inv_std", outer));
    let means = b.workspace(AuxSpec::scratch("means", 0, 2 * outer));
    (buffers, xhat, inv_std, Some([mean, var, means]))
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
    fn forward_math(&self, cg: &CodeGen, out: NodeId) -> String {
        let (x, y) = (cg.name(self.x[0]), cg.name(out));
        let (w, b) = (
            &cg.g.params[self.params[0]].torch_name,
            &cg.g.params[self.params[1]].torch_name,
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
    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, batch, mode) = (cg.value(self.x[0]), cg.value(out), &cg.batch, &cg.mode);
        let (w, b) = (
            &cg.g.params[self.params[0]].ident,
            &cg.g.params[self.params[1]].ident,
        );
        let (xhat, inv_std) = (cg.aux(self.xhat), cg.aux(self.inv_std));
        let (outer, inner, eps) = self.dims();
        let math = self.forward_math(cg, out);
        let Some([mean, var, _]) = self.stats.map(|s| s.map(|a| cg.aux(a))) else {
            let rows = cg.rows(self.x[0], 1);
            let code = quote!(::bp::__private::kernels::layer_norm(#rows, #inner, #eps, #x, #w, #b, #y, #xhat, #inv_std););
            return Step::new(math, code);
        };
        let (rm, rv) = (cg.buffer(self.buffers[0]), cg.buffer(self.buffers[1]));
        let code = quote! {
            if #mode.is_training() {
                ::bp::__private::kernels::batch_norm_train(#batch, #outer, #inner, #eps, #x, #w, #b, #y, #xhat, #mean, #var, #inv_std);
            } else {
                ::bp::__private::kernels::batch_norm_eval(#batch, #outer, #inner, #eps, #x, #w, #b, #rm, #rv, #y, #xhat, #inv_std);
            }
        };
        Step::new(math, code)
    }

    /// PyTorch's rule: batch norm in training needs more than one value per channel.
    fn training_check(&self, cg: &CodeGen, out: NodeId) -> TokenStream {
        if self.momentum.is_none() {
            return TokenStream::new();
        }
        let shape = cg.shape(self.x[0]);
        let per_channel = Literal::usize_unsuffixed(self.inner);
        let dims = shape.iter().map(|&d| Literal::usize_unsuffixed(d));
        let (name, batch) = (&cg.g.nodes[out].name, &cg.batch);
        quote!(::bp::__private::check_batch_norm(#name, #batch, #per_channel, &[#(#dims),*])?;)
    }

    fn update(&self, cg: &CodeGen, _out: NodeId) -> TokenStream {
        let (Some(momentum), Some([mean, var, _])) = (self.momentum, self.stats) else {
            return TokenStream::new();
        };
        let (mean, var, batch) = (cg.aux(mean), cg.aux(var), &cg.batch);
        let [rm, rv, nbt] = [0, 1, 2].map(|i| cg.buffer(self.buffers[i]));
        let (outer, inner, _) = self.dims();
        let m = literal(momentum);
        quote!(::bp::__private::kernels::batch_norm_update_running(#outer, #batch * #inner, #m, #mean, #var, #rm, #rv, #nbt);)
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let (dy, batch, mode, acc) = (cg.residual(out), &cg.batch, &cg.mode, &cg.accumulate);
        let (w, dw, db) = (
            &cg.g.params[self.params[0]].ident,
            &cg.g.params[self.params[0]].grad_ident,
            &cg.g.params[self.params[1]].grad_ident,
        );
        let (xhat, inv_std) = (cg.aux(self.xhat), cg.aux(self.inv_std));
        let (outer, inner, _) = self.dims();
        let dx = optional_input(cg, self.x[0]);
        let d_y = cg.d_name(out);
        let mut math = vec![format!("{dw} = Σ {d_y}·x̂"), format!("{db} = Σ {d_y}")];
        if let Some(lhs) = &dx.math {
            let wn = &cg.g.params[self.params[0]].torch_name;
            math.push(format!(
                "{lhs} {wn}/(N·√(σ² + ε))·(N·{d_y} − Σ{d_y} − x̂·Σ({d_y}·x̂))"
            ));
        }
        let (pre, dxs, acc_x) = (dx.prelude, dx.slice, dx.acc);
        let code = if self.momentum.is_none() {
            let rows = cg.rows(self.x[0], 1);
            quote!(#pre ::bp::__private::kernels::layer_norm_backward(#rows, #inner, #dy, #xhat, #w, #inv_std, #dw, #db, #acc, #dxs, #acc_x);)
        } else {
            let means = self.stats.map(|[_, _, m]| cg.aux(m));
            quote!(#pre ::bp::__private::kernels::batch_norm_backward(#batch, #outer, #inner, #mode, #dy, #xhat, #w, #inv_std, #dw, #db, #acc, #dxs, #acc_x, #means);)
        };
        vec![Step::lines(math, code)]
    }

    fn structure(&self) -> String {
        format!(
            "{}(eps={:?}, momentum={:?})",
            self.name(),
            self.eps,
            self.momentum
        )
    }
}
