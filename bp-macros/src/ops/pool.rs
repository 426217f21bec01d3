//! `max_pool2d(x, kernel, stride = kernel)` and `avg_pool2d(x, kernel, stride = kernel)` on
//! `[C, H, W]`; output sizes are floored, as PyTorch's.
//!
//! max:  y = max over each window;  d_x at the window's first maximum += d_y (as PyTorch)
//! avg:  y = mean over each window; d_x at every element of the window += d_y / k²

use super::{int_lit, node_arg, AuxSpec, Built, Call, Cx, Op};
use crate::graph::{AuxTy, Builder, NodeId, Place};
use crate::lowering::LetCx;
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

pub fn build(b: &mut Builder, l: &mut LetCx, call: &Call) -> Option<Built> {
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
    };
    Some((Box::new(op), vec![c, ho, wo]))
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

impl Pool {
    fn geom(&self) -> TokenStream {
        let [c, h, w, k, s] =
            [self.c, self.h, self.w, self.k, self.stride].map(Literal::usize_unsuffixed);
        quote!(&::bp::kernels::Pool2dGeom { c: #c, h: #h, w: #w, k: #k, stride: #s })
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
    fn aux(&self) -> Vec<AuxSpec> {
        if !self.max {
            return vec![];
        }
        vec![AuxSpec {
            name: "argmax",
            ty: AuxTy::Index,
            place: Place::Forward,
            per_sample: self.out_len(),
            fixed: 0,
        }]
    }

    fn forward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let (x, y, batch, g) = (cx.value(self.x[0]), cx.value(out), &cx.batch, self.geom());
        if self.max {
            let idx = cx.aux(out, "argmax");
            quote!(::bp::kernels::max_pool2d(#g, #batch, #x, #y, #idx);)
        } else {
            quote!(::bp::kernels::avg_pool2d(#g, #batch, #x, #y);)
        }
    }

    fn backward(&self, cx: &Cx, out: NodeId) -> TokenStream {
        let Some(c) = cx.contribute(self.x[0]) else {
            return TokenStream::new();
        };
        let (dy, batch, g) = (cx.residual(out), &cx.batch, self.geom());
        let (pre, dx, acc) = (c.prelude, c.ident, c.acc);
        if self.max {
            let idx = cx.aux(out, "argmax");
            quote!(#pre ::bp::kernels::max_pool2d_backward(#g, #batch, #idx, #dy, #dx, #acc);)
        } else {
            quote!(#pre ::bp::kernels::avg_pool2d_backward(#g, #batch, #dy, #dx, #acc);)
        }
    }

    fn doc_forward(&self, cx: &Cx, out: NodeId) -> String {
        let what = if self.max { "max" } else { "mean" };
        format!(
            "{} = {what} of {} over {k}×{k} windows, stride {}",
            cx.name(out),
            cx.name(self.x[0]),
            self.stride,
            k = self.k
        )
    }

    fn doc_backward(&self, cx: &Cx, out: NodeId) -> Vec<String> {
        if !cx.wants(self.x[0]) {
            return vec![];
        }
        let to = if self.max {
            "to each window's first maximum".to_string()
        } else {
            format!("/ {} to every element of each window", self.k * self.k)
        };
        vec![format!(
            "{} {} routed {to}",
            cx.doc_assign(self.x[0]),
            cx.d_name(out)
        )]
    }

    fn structure(&self) -> String {
        format!("{}(k={}, s={})", self.name(), self.k, self.stride)
    }
}
