//! The generated API: `new`, `try_new`, `forward`, `forward_loaded`, `backward`,
//! `backward_accumulate`, `backward_sgd`, `predict`, `predict_into`, with the checks
//! around the passes (`checks`).

use super::checks::{finite_checks, input_checks, reservations, training_checks};
use super::docs::{self, Derivation};
use super::signature::Signature;
use super::{d_arg, hyg, lit, Expansion};
use crate::formula::literal;
use crate::graph::ParamInit;
use proc_macro2::{Ident, TokenStream};
use quote::quote;

/// The API's signature for this network.
pub fn signature(c: &Expansion) -> Signature {
    let ty = &c.ty;
    Signature {
        t: quote!(::bp::__private::Tensor<#ty>),
        ty: ty.clone(),
        m: c.m.clone(),
        inputs: c
            .inputs()
            .iter()
            .map(|&i| c.g.nodes[i].ident.clone())
            .collect(),
        d_args: c.g.outputs.iter().map(|&o| d_arg(c, o)).collect(),
    }
}

/// Every inherent method but the passes.
pub fn methods(c: &Expansion, d: &Derivation) -> TokenStream {
    let sig = signature(c);
    let constructors = constructors(c);
    let reserves = reserves(c);
    let forward = forward_api(c, d, &sig);
    let backward = backward_api(c, d, &sig);
    let predict = predict_api(c, &sig);
    quote! {
        #constructors
        #reserves
        #forward
        #backward
        #predict
    }
}

/// `new`, `try_new` and the finite-check switch.
fn constructors(c: &Expansion) -> TokenStream {
    let m = &c.m;
    let (seed, params) = (hyg("seed"), hyg("params"));
    let inits = (0..c.g.params.len()).map(|p| {
        let f = &c.g.params[p].ident;
        init_param(c, p, quote!(&mut #params.#f), &seed)
    });
    // Every tensor the network owns, allocated fallibly and named for the error.
    let alloc = |f: &Ident, what: String, shape: &[usize], v: f64| {
        let dims = shape.iter().map(|&d| lit(d));
        let v = literal(v);
        quote!(#f: ::bp::__private::alloc_tensor(#what, &[#(#dims),*], #v)?)
    };
    let pz = c.g.params.iter().map(|p| {
        let what = format!("parameter `{}`", p.torch_name);
        alloc(&p.ident, what, &p.shape, 0.0)
    });
    let gz = c.g.params.iter().map(|p| {
        let what = format!("the gradient of `{}`", p.torch_name);
        alloc(&p.grad_ident, what, &p.shape, 0.0)
    });
    let bz = c.g.buffers.iter().map(|b| {
        let what = format!("buffer `{}`", b.torch_name);
        alloc(&b.ident, what, &b.shape, b.init)
    });
    let new_doc = docs::new_doc(c);
    quote! {
        #[doc = #new_doc]
        ///
        /// # Panics
        /// If memory for the parameters cannot be allocated; [`try_new`](Self::try_new)
        /// returns that as an error instead.
        pub fn new(#seed: u64) -> Self {
            match Self::try_new(#seed) {
                ::core::result::Result::Ok(net) => net,
                ::core::result::Result::Err(e) => ::core::panic!("{}", e),
            }
        }

        /// [`new`](Self::new), with a failure to allocate the parameters, their gradients
        /// or the buffers returned as [`bp::Error::Alloc`](::bp::Error::Alloc) naming the
        /// tensor, instead of aborting the process.
        pub fn try_new(#seed: u64) -> ::core::result::Result<Self, ::bp::__private::Error> {
            let mut #params = #m::Params { #(#pz,)* };
            #(#inits)*
            ::core::result::Result::Ok(Self {
                #params,
                grads: #m::Grads { #(#gz,)* },
                values: ::core::default::Default::default(),
                residuals: ::core::default::Default::default(),
                buffers: #m::Buffers { #(#bz,)* },
                rng: ::bp::__private::rng::Rng::for_name(#seed, "dropout"),
                batch: 0,
                mode: ::bp::__private::Mode::Training,
                forward_mode: ::bp::__private::Mode::Training,
                forward_done: false,
                backward_done: false,
                grads_spent: true,
                check_finite: false,
            })
        }

        /// Turns the finite-value check on or off (off by default). When on, `forward`,
        /// `predict` and `backward` check every node's value, residual and gradient
        /// after the pass and return [`bp::Error::NonFinite`](::bp::Error::NonFinite)
        /// naming the first NaN or infinity in the order the pass computes them: its
        /// tensor, the pass and the element. Off, it costs one branch per pass.
        pub fn set_check_finite(&mut self, on: bool) {
            self.check_finite = on;
        }

        /// Whether the finite-value check is on.
        pub fn check_finite(&self) -> bool {
            self.check_finite
        }
    }
}

/// `reserve_values` and `reserve_residuals`, called before the passes.
fn reserves(c: &Expansion) -> TokenStream {
    let (m, batch) = (&c.m, c.locals.batch.clone());
    let (reserve_values, reserve_residuals) = reservations(c);
    quote! {
        /// Room in every forward buffer for a batch of `batch`.
        fn reserve_values(values: &mut #m::Values, #batch: usize) -> ::core::result::Result<(), ::bp::__private::Error> {
            #(#reserve_values)*
            ::core::result::Result::Ok(())
        }

        /// Room in every residual and backward workspace for a batch of `batch`.
        fn reserve_residuals(residuals: &mut #m::Residuals, #batch: usize) -> ::core::result::Result<(), ::bp::__private::Error> {
            #(#reserve_residuals)*
            ::core::result::Result::Ok(())
        }
    }
}

/// `forward`, `inputs_mut`, `forward_loaded` and the `run_forward` they share.
fn forward_api(c: &Expansion, d: &Derivation, sig: &Signature) -> TokenStream {
    let (batch, mode) = (c.locals.batch.clone(), c.locals.mode.clone());
    let in_names = &sig.inputs;
    let (inputs, inputs_mut_ty, out_ty) =
        (sig.input_params(), sig.inputs_mut_ty(), sig.out_ty(None));
    let outs: Vec<&Ident> = c.g.outputs.iter().map(|&o| &c.g.nodes[o].ident).collect();
    let out_ref = if outs.len() == 1 {
        quote!(&self.values.#(#outs)*)
    } else {
        quote!((#(&self.values.#outs,)*))
    };
    let check = input_checks(c);
    let prepare = c.has_prepare().then(
        || quote!(if #mode.is_training() { Self::prepare_pass(&mut self.rng, &mut self.values, #batch); }),
    );
    let update = c.has_update().then(
        || quote!(if #mode.is_training() { Self::update_pass(&mut self.buffers, &self.values, #batch); }),
    );
    let bn_checks = training_checks(c);
    let fwd_finite = finite_checks(c).forward;
    let fdoc = docs::forward_api_doc(c, d);
    quote! {
        #[doc = #fdoc]
        pub fn forward(&mut self, #inputs) -> ::core::result::Result<#out_ty, ::bp::__private::Error> {
            #check
            Self::reserve_values(&mut self.values, #batch)?;
            #(self.values.#in_names.assign(#in_names);)*
            self.run_forward(#batch)
        }

        /// The network's own input buffers (in declaration order), to load a batch into
        /// in place — say straight from a data set — and then run
        /// [`forward_loaded`](Self::forward_loaded), which copies nothing. [`forward`](Self::forward)
        /// instead copies its arguments into these buffers (a dense layer's weight gradient
        /// needs its input after forward has returned).
        pub fn inputs_mut(&mut self) -> #inputs_mut_ty {
            (#(&mut self.values.#in_names,)*)
        }

        /// [`forward`](Self::forward) on the batch already in the input buffers (see
        /// [`inputs_mut`](Self::inputs_mut)), with the same shape checks and no copy.
        pub fn forward_loaded(&mut self) -> ::core::result::Result<#out_ty, ::bp::__private::Error> {
            #(let #in_names = &self.values.#in_names;)*
            #check
            Self::reserve_values(&mut self.values, #batch)?;
            self.run_forward(#batch)
        }

        fn run_forward(&mut self, #batch: usize) -> ::core::result::Result<#out_ty, ::bp::__private::Error> {
            ::bp::__private::Network::check_state(self)?;
            let #mode = self.mode;
            #bn_checks
            #prepare
            Self::forward_pass(&self.params, &self.buffers, &mut self.values, #batch, #mode);
            if self.check_finite {
                let finite = (|| -> ::core::result::Result<(), ::bp::__private::Error> {
                    #fwd_finite
                    ::core::result::Result::Ok(())
                })();
                if let ::core::result::Result::Err(e) = finite {
                    self.forward_done = false;
                    return ::core::result::Result::Err(e);
                }
            }
            #update
            self.forward_mode = #mode;
            self.batch = #batch;
            self.forward_done = true;
            self.backward_done = false;
            Ok(#out_ref)
        }
    }
}

/// `backward`, `backward_accumulate`, `backward_sgd` and the `backward_with` they share.
fn backward_api(c: &Expansion, d: &Derivation, sig: &Signature) -> TokenStream {
    let (ty, d_args, d_params) = (&sig.ty, &sig.d_args, sig.d_params());
    let t = &sig.t;
    let out_checks = c.g.outputs.iter().zip(d_args).map(|(&o, d)| {
        let name = c.g.nodes[o].name.as_str();
        let dims = c.g.shape(o).iter().map(|&x| lit(x));
        let seed_it = c.residuals[o]
            .as_ref()
            .map(|r| quote!(self.residuals.#r.assign(#d);));
        quote!(::bp::__private::check_output_grad(#name, #d, self.batch, &[#(#dims),*])?; #seed_it)
    });
    let accumulate = c.locals.accumulate.clone();
    let finite = finite_checks(c);
    let (bwd_finite, grad_finite, param_finite) = (finite.residuals, finite.grads, finite.params);
    let bdoc = docs::backward_api_doc(c, d);
    quote! {
        #[doc = #bdoc]
        pub fn backward(&mut self, #d_params) -> ::core::result::Result<(), ::bp::__private::Error> {
            self.backward_with(#(#d_args,)* ::bp::__private::Accumulate::Overwrite, None)
        }

        /// Like [`backward`](Self::backward), but adds the parameter gradients to the
        /// ones already held instead of overwriting them: gradient accumulation over
        /// micro-batches. Residuals of nodes are those of this call.
        pub fn backward_accumulate(&mut self, #d_params) -> ::core::result::Result<(), ::bp::__private::Error> {
            self.backward_with(#(#d_args,)* ::bp::__private::Accumulate::Add, None)
        }

        /// [`backward`](Self::backward) fused with a plain SGD step `θ ← θ − lr·∇θ`
        /// (`Sgd::new(lr)`: no momentum, no weight decay). Each dense layer's weight is
        /// updated inside its weight-gradient product (`W ← W − lr·d_yᵀ·x`: the gradient
        /// is never written nor read back), every other parameter right after its
        /// gradient is made. The parameters end as after `backward` and `Sgd::step`, up
        /// to rounding; the gradients are not kept (`grad` returns `None` until the next
        /// `backward`). It takes the step itself: do not call an optimizer's `step`
        /// after it. `Sgd`'s `Optimizer::backward_step` calls this. An `lr` that is
        /// negative or not finite is an error, and nothing is changed.
        pub fn backward_sgd(&mut self, #(#d_args: &#t,)* lr: f64) -> ::core::result::Result<(), ::bp::__private::Error> {
            ::bp::__private::optim::check_lr(lr)?;
            self.backward_with(#(#d_args,)* ::bp::__private::Accumulate::Overwrite, Some(<#ty as ::bp::__private::Float>::from_f64(lr)))
        }

        fn backward_with(&mut self, #(#d_args: &#t,)* #accumulate: ::bp::__private::Accumulate, sgd: ::core::option::Option<#ty>) -> ::core::result::Result<(), ::bp::__private::Error> {
            if !self.forward_done {
                return Err(::bp::__private::Error::invalid("backward called before forward: run forward on a batch first"));
            }
            ::bp::__private::Network::check_state(self)?;
            Self::reserve_residuals(&mut self.residuals, self.batch)?;
            #(#out_checks)*
            Self::backward_pass(&mut self.params, &self.values, &mut self.residuals, &mut self.grads, self.batch, #accumulate, sgd, self.forward_mode);
            self.backward_done = true;
            self.grads_spent = sgd.is_some();
            if self.check_finite {
                #bwd_finite
                if sgd.is_none() {
                    #grad_finite
                } else {
                    #param_finite
                }
            }
            Ok(())
        }
    }
}

/// `predict`, `predict_into` and `workspace`.
fn predict_api(c: &Expansion, sig: &Signature) -> TokenStream {
    let (m, batch, ws) = (&c.m, c.locals.batch.clone(), hyg("ws"));
    let in_names = &sig.inputs;
    let (inputs, out_owned_ty, out_ty_w) = (
        sig.input_params(),
        sig.out_owned_ty(),
        sig.out_ty(Some(quote!('w))),
    );
    let outs: Vec<&Ident> = c.g.outputs.iter().map(|&o| &c.g.nodes[o].ident).collect();
    let (ws_ref, owned) = if outs.len() == 1 {
        (quote!(&#ws.#(#outs)*), quote!(#(#outs)*))
    } else {
        (quote!((#(&#ws.#outs,)*)), quote!((#(#outs,)*)))
    };
    let check = input_checks(c);
    let predict_finite = finite_checks(c).predict;
    let pdoc = docs::predict_doc(c);
    quote! {
        #[doc = #pdoc]
        pub fn predict(&self, #inputs) -> ::core::result::Result<#out_owned_ty, ::bp::__private::Error> {
            let mut #ws = self.workspace();
            self.predict_into(&mut #ws, #(#in_names),*)?;
            let #m::Values { #(#outs,)* .. } = #ws;
            Ok(#owned)
        }

        /// Inference into a workspace the caller keeps (from [`workspace`](Self::workspace)):
        /// no allocation once the workspace has seen the largest batch. Needs only `&self`.
        pub fn predict_into<'w>(&self, #ws: &'w mut #m::Values, #inputs) -> ::core::result::Result<#out_ty_w, ::bp::__private::Error> {
            #check
            ::bp::__private::Network::check_state(self)?;
            Self::reserve_values(#ws, #batch)?;
            #(#ws.#in_names.assign(#in_names);)*
            Self::forward_pass(&self.params, &self.buffers, #ws, #batch, ::bp::__private::Mode::Evaluation);
            if self.check_finite {
                #predict_finite
            }
            Ok(#ws_ref)
        }

        /// An empty workspace for [`predict_into`](Self::predict_into).
        pub fn workspace(&self) -> #m::Values {
            ::core::default::Default::default()
        }
    }
}

/// Statements initializing one parameter tensor.
fn init_param(c: &Expansion, p: usize, target: TokenStream, seed: &Ident) -> TokenStream {
    let param = &c.g.params[p];
    let name = &param.torch_name;
    let rng = quote!(&mut ::bp::__private::rng::Rng::for_name(#seed, #name));
    match param.init {
        ParamInit::Const(v) => {
            let v = signed(v);
            quote!(::bp::__private::init::constant(#target, #v);)
        }
        ParamInit::Normal(std) => {
            let std = literal(std);
            quote!(::bp::__private::init::normal(#target, #std, #rng);)
        }
        ParamInit::Uniform(lo, hi) => {
            let (lo, hi) = (signed(lo), signed(hi));
            quote!(::bp::__private::init::uniform(#target, #lo, #hi, #rng);)
        }
    }
}

fn signed(v: f64) -> TokenStream {
    let lit = literal(v.abs());
    if v < 0.0 {
        quote!(-#lit)
    } else {
        lit
    }
}
