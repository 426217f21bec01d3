//! `max_pool2d(x, kernel, stride = kernel)` and `avg_pool2d(x, kernel, stride = kernel)` on
//! `[C, H, W]`; output sizes are floored, as PyTorch's.
//!
//! max:  y = max over each window;  d_x at the window's first maximum += d_y (as PyTorch)
//! avg:  y = mean over each window; d_x at every element of the window += d_y / k²

use super::args::{arg_or_hyper, image_dims, int_lit, node_arg, Call};
use crate::graph::{
    AuxId, AuxSpec, AuxTy, Builder, Built, CodeGen, LetScope, NodeId, Op, Place, Step,
};
use proc_macro2::{Literal, TokenStream};
use quote::{quote, ToTokens};

struct Pool {
    x: [NodeId; 1],
    max: bool,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    /// Max pooling's argmax indices.
    argmax: Option<AuxId>,
}

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    let name = call.func.to_string();
    let usage = format!("{name}(x, kernel, stride = kernel)");
    if !call.check(b.cx, 1, 3, &["kernel", "stride"], &usage) {
        return None;
    }
    let x = node_arg(b, l, call.args[0], &name);
    let Some(k) = arg_or_hyper(b, call, 1, "kernel")? else {
        b.cx.error(
            call.func.span(),
            format!("`{name}` needs its kernel size: {usage}"),
        );
        return None;
    };
    let k = int_lit(b.cx, k, "the kernel size")?;
    let stride = match arg_or_hyper(b, call, 2, "stride")? {
        Some(e) => int_lit(b.cx, e, "the stride")?,
        None => k,
    };
    let shape = b.node(x?).shape.clone()?;
    let (c, h, w) = image_dims(b, call, &shape, &name)?;
    if k > h || k > w {
        b.cx.error_at(
            call.args.get(1).copied().or(call.hyper("kernel"))?,
            format!(
                "kernel {k}×{k} is larger than the input {h}×{w} of `{}`",
                call.args[0].to_token_stream()
            ),
        );
        return None;
    }
    let (ho, wo) = ((h - k) / stride + 1, (w - k) / stride + 1);
    let op = Pool {
        x: [x?],
        max: name == "max_pool2d",
        c,
        h,
        w,
        k,
        stride,
        argmax: None,
    };
    let argmax = op.max.then(|| {
        b.workspace(AuxSpec {
            name: "argmax",
            ty: AuxTy::Index,
            place: Place::Forward,
            per_sample: op.out_len(),
            fixed: 0,
            per_part: 0,
        })
    });
    Some((Box::new(Pool { argmax, ..op }), vec![c, ho, wo]))
}

impl Pool {
    fn geom(&self) -> TokenStream {
        let [c, h, w, k, s] =
            [self.c, self.h, self.w, self.k, self.stride].map(Literal::usize_unsuffixed);
        quote!(&::bp::__private::kernels::Pool2dGeom { c: #c, h: #h, w: #w, k: #k, stride: #s })
    }
    fn out_len(&self) -> usize {
        self.c * ((self.h - self.k) / self.stride + 1) * ((self.w - self.k) / self.stride + 1)
    }
}

impl Op for Pool {
    fn name(&self) -> &'static str {
        if self.max {
            "max_pool2d"
        } else {
            "avg_pool2d"
        }
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, batch, g) = (cg.value(self.x[0]), cg.value(out), &cg.batch, self.geom());
        let what = if self.max { "max" } else { "mean" };
        let math = format!(
            "{} = {what} of {} over {k}×{k} windows, stride {}",
            cg.name(out),
            cg.name(self.x[0]),
            self.stride,
            k = self.k
        );
        let code = match self.argmax {
            Some(idx) => {
                let idx = cg.aux(idx);
                quote!(::bp::__private::kernels::max_pool2d(#g, #batch, #x, #y, #idx);)
            }
            None => quote!(::bp::__private::kernels::avg_pool2d(#g, #batch, #x, #y);),
        };
        Step::new(math, code)
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let Some(c) = cg.contribute(self.x[0]) else {
            return vec![];
        };
        let (dy, batch, g) = (cg.residual(out), &cg.batch, self.geom());
        let to = match self.argmax {
            Some(_) => "to each window's first maximum".to_string(),
            None => format!("/ {} to every element of each window", self.k * self.k),
        };
        let math = format!("{} {} routed {to}", c.math, cg.d_name(out));
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        let code = match self.argmax {
            Some(idx) => {
                let idx = cg.aux(idx);
                quote!(#pre ::bp::__private::kernels::max_pool2d_backward(#g, #batch, #idx, #dy, #dx, #acc);)
            }
            None => {
                quote!(#pre ::bp::__private::kernels::avg_pool2d_backward(#g, #batch, #dy, #dx, #acc);)
            }
        };
        vec![Step::new(math, code)]
    }

    fn structure(&self) -> String {
        format!("{}(kernel={}, stride={})", self.name(), self.k, self.stride)
    }
}
