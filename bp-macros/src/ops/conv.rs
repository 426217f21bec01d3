//! `conv2d(x, out, kernel = k, stride = 1, padding = 0, bias = true)` on `[C, H, W]`, as
//! `nn.Conv2d(C, out, k, stride, padding)`: weight `[out, C, k, k]`, bias `[out]`.
//!
//! forward:  y[b] = W·im2col(x[b]) + bias          (one GEMM per sample)
//! params:   ∇W = Σ_b d_y[b]·im2col(x[b])ᵀ,  ∇bias = Σ_{b,pixels} d_y
//! residual: d_x[b] = col2im(Wᵀ·d_y[b])

use super::args::{
    arg_or_hyper, bool_lit, image_dims, index_lit, int_lit, layer_params, node_arg, Call,
};
use super::grads::{bias_grad, bias_math, bias_value, optional_input};
use crate::graph::{
    AuxId, AuxSpec, Builder, Built, CodeGen, LetScope, NodeId, Op, ParamId, ParamInit, Place, Step,
};
use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};

struct Conv {
    x: [NodeId; 1],
    c: usize,
    h: usize,
    w: usize,
    out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    params: Vec<ParamId>,
    /// im2col of one sample (forward), and backward's im2col and its gradient.
    cols: Vec<AuxId>,
}

const USAGE: &str = "conv2d(x, out_channels, kernel = k, stride = 1, padding = 0, bias = true)";

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    if !call.check(b.cx, 2, 3, &["kernel", "stride", "padding", "bias"], USAGE) {
        return None;
    }
    let x = node_arg(b, l, call.args[0], "conv2d");
    let out = int_lit(b.cx, call.args[1], "the number of output channels");
    let Some(k_expr) = arg_or_hyper(b, call, 2, "kernel")? else {
        b.cx.error(
            call.func.span(),
            format!("`conv2d` needs its kernel size: {USAGE}"),
        );
        return None;
    };
    let k = int_lit(b.cx, k_expr, "the kernel size");
    let stride = call
        .hyper("stride")
        .map_or(Some(1), |e| int_lit(b.cx, e, "the stride"));
    let pad = call
        .hyper("padding")
        .map_or(Some(0), |e| index_lit(b.cx, e, "the padding"));
    let bias = call
        .hyper("bias")
        .map_or(Some(true), |e| bool_lit(b.cx, e, "bias"));
    let (x, out, k, stride, pad, bias) = (x?, out?, k?, stride?, pad?, bias?);
    let shape = b.node(x).shape.clone()?;
    let (c, h, w) = image_dims(b, call, &shape, "conv2d")?;
    if k > h + 2 * pad || k > w + 2 * pad {
        b.cx.error_at(
            k_expr,
            format!(
                "kernel {k}×{k} is larger than the input {h}×{w} of `{}` (padding {pad})",
                call.args[0].to_token_stream()
            ),
        );
        return None;
    }
    let bound = 1.0 / ((c * k * k) as f64).sqrt();
    let init = ParamInit::Uniform(-bound, bound);
    let mut specs = vec![("weight", vec![out, c, k, k], init.clone())];
    if bias {
        specs.push(("bias", vec![out], init));
    }
    let params = layer_params(b, l, call, specs)?;
    let mut conv = Conv {
        x: [x],
        c,
        h,
        w,
        out,
        k,
        stride,
        pad,
        params,
        cols: Vec::new(),
    };
    // One piece of each scratch per thread the kernels split the batch over; `dwparts`
    // holds the weight gradients of the parts after the first.
    let n = conv.cols_len();
    let wl = out * c * k * k;
    conv.cols = vec![
        b.workspace(AuxSpec::per_part("cols", Place::Forward, n)),
        b.workspace(AuxSpec::per_part("bcols", Place::Backward, n)),
        b.workspace(AuxSpec::per_part("dcols", Place::Backward, n)),
        b.workspace(AuxSpec::per_part("dwparts", Place::Backward, wl)),
    ];
    let (ho, wo) = conv.out_hw();
    Some((Box::new(conv), vec![out, ho, wo]))
}

impl Conv {
    fn out_hw(&self) -> (usize, usize) {
        // Each term is at most 2^32 (the literals are capped), so no sum overflows.
        (
            (self.h + 2 * self.pad - self.k) / self.stride + 1,
            (self.w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }
    fn cols_len(&self) -> usize {
        let (ho, wo) = self.out_hw();
        crate::syntax::numel(&[self.c, self.k, self.k, ho, wo])
    }
    fn geom(&self) -> TokenStream {
        let [c, h, w, o, k, s, p] = [
            self.c,
            self.h,
            self.w,
            self.out,
            self.k,
            self.stride,
            self.pad,
        ]
        .map(Literal::usize_unsuffixed);
        quote!(&::bp::__private::kernels::Conv2dGeom { c: #c, h: #h, w: #w, out: #o, k: #k, stride: #s, pad: #p })
    }
}

impl Op for Conv {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, batch, g) = (cg.value(self.x[0]), cg.value(out), &cg.batch, self.geom());
        let w = &cg.g.params[self.params[0]];
        let bias = bias_value(cg, self.params.get(1));
        let cols = cg.aux(self.cols[0]);
        let math = format!(
            "{} = {} ⋆ {}{}   ({k}×{k}, stride {}, padding {})",
            cg.name(out),
            w.torch_name,
            cg.name(self.x[0]),
            bias_math(cg, self.params.get(1)),
            self.stride,
            self.pad,
            k = self.k
        );
        let w = &w.ident;
        let code = quote!(::bp::__private::kernels::conv2d(#g, #batch, #x, #w, #bias, #y, #cols););
        Step::new(math, code)
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let (x, dy, batch, g, acc) = (
            cg.value(self.x[0]),
            cg.residual(out),
            &cg.batch,
            self.geom(),
            &cg.accumulate,
        );
        let w = &cg.g.params[self.params[0]];
        let (wv, dw) = (&w.ident, &w.grad_ident);
        let db = bias_grad(cg, self.params.get(1));
        let dx = optional_input(cg, self.x[0]);
        let (d_y, xn) = (cg.d_name(out), cg.name(self.x[0]));
        let mut math = vec![format!("{dw} = Σ_b {d_y}[b]·im2col({xn}[b])ᵀ")];
        if let Some(&p) = self.params.get(1) {
            let d = &cg.g.params[p].grad_ident;
            math.push(format!("{d} = Σ_(b, pixels) {d_y}"));
        }
        if let Some(lhs) = dx.math {
            math.push(format!("{lhs} col2im({}ᵀ·{d_y})", w.torch_name));
        }
        let (cols, dcols, dwp) = (
            cg.aux(self.cols[1]),
            cg.aux(self.cols[2]),
            cg.aux(self.cols[3]),
        );
        let (pre, dxs, acc_x) = (dx.prelude, dx.slice, dx.acc);
        let code = quote!(#pre ::bp::__private::kernels::conv2d_backward(#g, #batch, #x, #wv, #dy, #dw, #db, #acc, #dxs, #acc_x, #cols, #dcols, #dwp););
        vec![Step::lines(math, code)]
    }

    fn structure(&self) -> String {
        format!(
            "conv2d(out_channels={}, kernel={}, stride={}, padding={}, bias={})",
            self.out,
            self.k,
            self.stride,
            self.pad,
            self.params.len() > 1
        )
    }
}
