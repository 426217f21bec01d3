//! `conv2d(x, out, kernel = k, stride = 1, padding = 0, bias = true)` on `[C, H, W]`, as
//! `nn.Conv2d(C, out, k, stride, padding)`: weight `[out, C, k, k]`, bias `[out]`.
//!
//! forward:  y[b] = W·im2col(x[b]) + bias          (one GEMM per sample)
//! params:   ∇W = Σ_b d_y[b]·im2col(x[b])ᵀ,  ∇bias = Σ_{b,pixels} d_y
//! residual: d_x[b] = col2im(Wᵀ·d_y[b])

use super::pool::{arg_or_hyper, image_dims};
use super::{
    bool_lit, index_lit, int_lit, layer_params, node_arg, AuxSpec, Built, Call, Cx, Op, ParamInit,
};
use crate::graph::{Builder, NodeId, ParamId};
use crate::lowering::LetCx;
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
}

const USAGE: &str = "conv2d(x, out_channels, kernel = k, stride = 1, padding = 0, bias = true)";

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
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
    let conv = Conv {
        x: [x],
        c,
        h,
        w,
        out,
        k,
        stride,
        pad,
        params,
    };
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
        quote!(&::bp::kernels::Conv2dGeom { c: #c, h: #h, w: #w, out: #o, k: #k, stride: #s, pad: #p })
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
    fn aux(&self) -> Vec<AuxSpec> {
        let n = self.cols_len();
        vec![
            AuxSpec {
                fixed: n,
                per_sample: 0,
                ..AuxSpec::saved("cols", 0)
            },
            AuxSpec::scratch("bcols", 0, n),
            AuxSpec::scratch("dcols", 0, n),
        ]
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, y, batch, g) = (cx.value(self.x[0]), cx.value(out), &cx.batch, self.geom());
        let w = &cx.g.params[self.params[0]].ident;
        let bias = match self.params.get(1) {
            Some(&p) => {
                let b = &cx.g.params[p].ident;
                quote!(Some(#b.as_slice()))
            }
            None => quote!(None),
        };
        let cols = cx.aux(out, "cols");
        quote!(::bp::kernels::conv2d(#g, #batch, #x, #w, #bias, #y, #cols);)
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, dy, batch, g, acc) = (
            cx.value(self.x[0]),
            cx.residual(out),
            &cx.batch,
            self.geom(),
            &cx.accumulate,
        );
        let w = &cx.g.params[self.params[0]];
        let (wv, dw) = (&w.ident, &w.grad_ident);
        let db = match self.params.get(1) {
            Some(&p) => {
                let d = &cx.g.params[p].grad_ident;
                quote!(Some(#d.as_mut_slice()))
            }
            None => quote!(None),
        };
        let (pre, dx, acc_x) = match cx.contribute(self.x[0]) {
            Some(c) => {
                let d = c.ident;
                (c.prelude, quote!(Some(#d.as_mut_slice())), c.acc)
            }
            None => (TokenStream::new(), quote!(None), quote!(false)),
        };
        let (cols, dcols) = (cx.aux(out, "bcols"), cx.aux(out, "dcols"));
        quote!(#pre ::bp::kernels::conv2d_backward(#g, #batch, #x, #wv, #dy, #dw, #db, #acc, #dx, #acc_x, #cols, #dcols);)
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        let w = &cx.g.params[self.params[0]].torch_name;
        let bias = match self.params.get(1) {
            Some(&p) => format!(" + {}", cx.g.params[p].torch_name),
            None => String::new(),
        };
        format!(
            "{} = {w} ⋆ {}{bias}   ({k}×{k}, stride {}, padding {})",
            cx.name(out),
            cx.name(self.x[0]),
            self.stride,
            self.pad,
            k = self.k
        )
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        let (dy, x) = (cx.d_name(out), cx.name(self.x[0]));
        let w = &cx.g.params[self.params[0]];
        let mut lines = vec![format!("{} = Σ_b {dy}[b]·im2col({x}[b])ᵀ", w.grad_ident)];
        if let Some(&p) = self.params.get(1) {
            lines.push(format!(
                "{} = Σ_(b, pixels) {dy}",
                cx.g.params[p].grad_ident
            ));
        }
        if cx.wants(self.x[0]) {
            lines.push(format!(
                "{} col2im({}ᵀ·{dy})",
                cx.doc_assign(self.x[0]),
                w.torch_name
            ));
        }
        lines
    }

    fn structure(&self) -> String {
        format!(
            "conv2d(out={}, k={}, s={}, p={}, bias={})",
            self.out,
            self.k,
            self.stride,
            self.pad,
            self.params.len() > 1
        )
    }
}
