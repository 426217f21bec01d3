//! `rnn(x, hidden = H)` (tanh), `lstm(x, hidden = H)`, `gru(x, hidden = H)` on a sequence
//! `[T, F] → [T, H]`, one layer each, zero initial state, with PyTorch's equations, gate
//! order (LSTM i, f, g, o; GRU r, z, n) and parameter names (`weight_ih_l0`, `weight_hh_l0`,
//! `bias_ih_l0`, `bias_hh_l0`).
//!
//! forward:  for t in 0..T: h_t = cell(x_t, h_{t−1})        (the step body is emitted once)
//! backward: for t in T−1..=0: the step's chain rule, carrying ∂J/∂h (and ∂J/∂c) back to
//!           step t − 1: backpropagation through time runs the same loop backwards

use super::args::{int_lit, layer_params, node_arg, Call};
use super::grads::optional_input;
use crate::graph::{
    AuxId, AuxSpec, Builder, Built, CodeGen, LetScope, NodeId, Op, ParamId, ParamInit, Step,
};
use proc_macro2::{Ident, Literal, TokenStream};
use quote::{quote, ToTokens};

#[derive(Clone, Copy, PartialEq)]
enum Cell {
    Rnn,
    Lstm,
    Gru,
}

impl Cell {
    /// Gates per step in the weights.
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
    /// Values kept per step and hidden unit for backward (GRU also keeps W_hn·h + b_hn).
    fn saved(self) -> usize {
        match self {
            Cell::Gru => 4,
            c => c.gates(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Cell::Rnn => "rnn",
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
        }
    }
}

/// The workspaces: the gates of every step (saved), backward's carried `dh` and the
/// step's gate gradients, and for an LSTM its cell states and carried `dc`.
struct Aux {
    gates: AuxId,
    dh: AuxId,
    dgates: AuxId,
    cell: Option<[AuxId; 2]>,
}

struct Recurrent {
    x: [NodeId; 1],
    cell: Cell,
    t_len: usize,
    inp: usize,
    hidden: usize,
    params: Vec<ParamId>,
    aux: Aux,
}

pub fn build(b: &mut Builder, l: &mut LetScope, call: &Call) -> Option<Built> {
    let name = call.func.to_string();
    let cell = match name.as_str() {
        "lstm" => Cell::Lstm,
        "gru" => Cell::Gru,
        _ => Cell::Rnn,
    };
    let usage = format!("{name}(x, hidden = H)");
    if !call.check(b.cx, 1, 1, &["hidden"], &usage) {
        return None;
    }
    let x = node_arg(b, l, call.args[0], &name);
    let Some(h) = call.hyper("hidden") else {
        b.cx.error(
            call.func.span(),
            format!("the hidden size is missing: {usage}"),
        );
        return None;
    };
    let hidden = int_lit(b.cx, h, "the hidden size")?;
    let shape = b.node(x?).shape.clone()?;
    let &[t_len, inp] = shape.as_slice() else {
        b.cx.error_at(
            call.args[0],
            format!(
                "`{name}` takes a sequence [T, F], but `{}` is {shape:?} (rank {})",
                call.args[0].to_token_stream(),
                shape.len()
            ),
        );
        return None;
    };
    // PyTorch initializes every parameter of a recurrent layer U(−1/√H, 1/√H).
    let bound = 1.0 / (hidden as f64).sqrt();
    let init = ParamInit::Uniform(-bound, bound);
    let gh = cell.gates() * hidden;
    let specs = vec![
        ("weight_ih_l0", vec![gh, inp], init.clone()),
        ("weight_hh_l0", vec![gh, hidden], init.clone()),
        ("bias_ih_l0", vec![gh], init.clone()),
        ("bias_hh_l0", vec![gh], init),
    ];
    let params = layer_params(b, l, call, specs)?;
    let x = x?;
    let (t, h, saved) = (t_len, hidden, cell.saved());
    let aux = Aux {
        gates: b.workspace(AuxSpec::saved("gates", t * saved * h)),
        dh: b.workspace(AuxSpec::scratch("dh", h, 0)),
        dgates: b.workspace(AuxSpec::scratch("dgates", t * saved * h, 0)),
        cell: (cell == Cell::Lstm).then(|| {
            let c = b.workspace(AuxSpec::saved("cell", t * h));
            [c, b.workspace(AuxSpec::scratch("dc", h, 0))]
        }),
    };
    let op = Recurrent {
        x: [x],
        cell,
        t_len,
        inp,
        hidden,
        params,
        aux,
    };
    Some((Box::new(op), vec![t_len, hidden]))
}

impl Recurrent {
    fn forward_math(&self, cg: &CodeGen, out: NodeId) -> String {
        let eq = match self.cell {
            Cell::Rnn => "h_t = tanh(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh)",
            Cell::Lstm => "i,f,g,o = σ,σ,tanh,σ(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh); c_t = f⊙c_{t−1} + i⊙g; h_t = o⊙tanh(c_t)",
            Cell::Gru => "r,z = σ(W_i·x_t + b_i + W_h·h_{t−1} + b_h); n = tanh(W_in·x_t + b_in + r⊙(W_hn·h_{t−1} + b_hn)); h_t = (1 − z)⊙n + z⊙h_{t−1}",
        };
        format!(
            "{} = [h_0 … h_{}] of {}: for t in 0..{}: {eq}",
            cg.name(out),
            self.t_len - 1,
            cg.name(self.x[0]),
            self.t_len
        )
    }

    fn geom(&self) -> TokenStream {
        let [t, i, h] = [self.t_len, self.inp, self.hidden].map(Literal::usize_unsuffixed);
        quote!(&::bp::__private::kernels::RnnGeom { t_len: #t, inp: #i, hidden: #h })
    }
    /// `RnnKind::Lstm` (or `Rnn`, `Gru`).
    fn kind(&self) -> TokenStream {
        let kind = match self.cell {
            Cell::Rnn => quote!(Rnn),
            Cell::Lstm => quote!(Lstm),
            Cell::Gru => quote!(Gru),
        };
        quote!(::bp::__private::kernels::RnnKind::#kind)
    }

    /// The `RnnParams` of this layer.
    fn params_value(&self, cg: &CodeGen) -> TokenStream {
        let [w_ih, w_hh, b_ih, b_hh] = [0, 1, 2, 3].map(|i| self.p(cg, i).0);
        quote!(::bp::__private::kernels::RnnParams { w_ih: #w_ih, w_hh: #w_hh, b_ih: #b_ih, b_hh: #b_hh })
    }

    fn p(&self, cg: &CodeGen, i: usize) -> (Ident, Ident) {
        let p = &cg.g.params[self.params[i]];
        (p.ident.clone(), p.grad_ident.clone())
    }
}

impl Op for Recurrent {
    fn name(&self) -> &'static str {
        self.cell.name()
    }
    fn operands(&self) -> &[NodeId] {
        &self.x
    }
    fn params(&self) -> &[ParamId] {
        &self.params
    }
    fn forward(&self, cg: &CodeGen, out: NodeId) -> Step {
        let (x, y, batch, g) = (cg.value(self.x[0]), cg.value(out), &cg.batch, self.geom());
        let (kind, params) = (self.kind(), self.params_value(cg));
        let gates = cg.aux(self.aux.gates);
        let cell = match self.aux.cell {
            Some([c, _]) => {
                let c = cg.aux(c);
                quote!(#c)
            }
            None => quote!(&mut []),
        };
        let code = quote! {
            ::bp::__private::kernels::rnn_forward(#g, #kind, #batch, #x, #params, #gates, #cell, #y);
        };
        Step::new(self.forward_math(cg, out), code)
    }

    fn backward(&self, cg: &CodeGen, out: NodeId) -> Vec<Step> {
        let (x, y, dy, batch, g, acc) = (
            cg.value(self.x[0]),
            cg.value(out),
            cg.residual(out),
            &cg.batch,
            self.geom(),
            &cg.accumulate,
        );
        let (kind, params) = (self.kind(), self.params_value(cg));
        let [dw_ih, dw_hh, db_ih, db_hh] = [0, 1, 2, 3].map(|i| self.p(cg, i).1);
        let (gates, dh, dgates) = (
            cg.aux(self.aux.gates),
            cg.aux(self.aux.dh),
            cg.aux(self.aux.dgates),
        );
        let dxg = optional_input(cg, self.x[0]);
        let mut math = vec![format!(
            "for t in {}..=0: ∂J/∂h_t = {}[t] + (carried from t + 1); through the step's gates to d_gates_t; ∇W_hh += d_gates_tᵀ·h_{{t−1}}, carry d_gates_t·W_hh to t − 1",
            self.t_len - 1,
            cg.d_name(out)
        )];
        math.push("then over all steps at once: ∇W_ih = d_gatesᵀ·x, ∇b = Σ d_gates".into());
        if let Some(lhs) = &dxg.math {
            math.push(format!("{lhs} d_gates·W_ih"));
        }
        let (pre, dx, acc_x) = (dxg.prelude, dxg.slice, dxg.acc);
        let (cell, dc) = match self.aux.cell {
            Some([c, dc]) => {
                let (c, dc) = (cg.aux(c), cg.aux(dc));
                (quote!(#c), quote!(#dc))
            }
            None => (quote!(&[]), quote!(&mut [])),
        };
        let grads = quote! {
            ::bp::__private::kernels::RnnGrads { dw_ih: #dw_ih, dw_hh: #dw_hh, db_ih: #db_ih, db_hh: #db_hh, acc: #acc }
        };
        let code = quote! {
            #pre
            ::bp::__private::kernels::rnn_backward(#g, #kind, #batch, #x, #y, #params, #gates, #cell, #dy, #dh, #dc, #dgates, #grads, #dx, #acc_x);
        };
        vec![Step::lines(math, code)]
    }

    fn structure(&self) -> String {
        format!("{}(hidden={})", self.name(), self.hidden)
    }
}
