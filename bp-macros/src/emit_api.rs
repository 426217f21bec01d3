//! The generated API: `new`, `forward`, `backward`, `backward_accumulate`, `predict`,
//! `predict_into`, and the `bp::Network` implementation.

use crate::docs;
use crate::emit::{d_arg, hyg, init_param, lit, Ctx};
use crate::graph::Kind;
use proc_macro2::TokenStream;
use quote::quote;

pub fn methods(c: &Ctx) -> TokenStream {
    let m = &c.m;
    let ty = &c.ty;
    let t = quote!(::bp::Tensor<#ty>);
    let seed = hyg("seed");
    let params = hyg("params");
    let inits = (0..c.g.params.len()).map(|p| {
        let f = &c.g.params[p].ident;
        init_param(c, p, quote!(&mut #params.#f), &seed)
    });
    // Every tensor the network owns, allocated fallibly and named for the error.
    let alloc = |f: &proc_macro2::Ident, what: String, shape: &[usize], v: f64| {
        let dims = shape.iter().map(|&d| lit(d));
        let v = crate::symbolic::literal(v);
        quote!(#f: ::bp::alloc_tensor(#what, &[#(#dims),*], #v)?)
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

    let inputs = c.inputs();
    let in_names: Vec<_> = inputs.iter().map(|&i| &c.g.nodes[i].ident).collect();
    let check = input_checks(c);
    let in_tys: Vec<_> = in_names.iter().map(|_| &t).collect();
    let outs: Vec<_> = c.g.outputs.iter().map(|&o| &c.g.nodes[o].ident).collect();
    let one = outs.len() == 1;
    let reps: Vec<&TokenStream> = outs.iter().map(|_| &t).collect();
    let (out_ty, out_ty_w, out_owned_ty, out_ref) = if one {
        (
            quote!(&#t),
            quote!(&'w #t),
            quote!(#t),
            quote!(&self.values.#(#outs)*),
        )
    } else {
        (
            quote!((#(&#reps,)*)),
            quote!((#(&'w #reps,)*)),
            quote!((#(#reps,)*)),
            quote!((#(&self.values.#outs,)*)),
        )
    };
    let ws = hyg("ws");
    let ws_ref = if one {
        quote!(&#ws.#(#outs)*)
    } else {
        quote!((#(&#ws.#outs,)*))
    };
    let owned = if one {
        quote!(#(#outs)*)
    } else {
        quote!((#(#outs,)*))
    };
    let d_args: Vec<_> = c.g.outputs.iter().map(|&o| d_arg(c, o)).collect();
    let out_checks = c.g.outputs.iter().zip(&d_args).map(|(&o, d)| {
        let name = c.g.nodes[o].name.as_str();
        let dims = c.g.shape(o).iter().map(|&x| lit(x));
        let seed_it = c.residuals[o]
            .as_ref()
            .map(|r| quote!(self.residuals.#r.assign(#d);));
        quote!(::bp::check_output_grad(#name, #d, self.batch, &[#(#dims),*])?; #seed_it)
    });
    let accumulate = hyg("accumulate");
    let batch = hyg("batch");
    let training = hyg("training");
    let prepare = c.has_prepare().then(
        || quote!(if #training { Self::prepare_pass(&mut self.rng, &mut self.values, #batch); }),
    );
    // PyTorch's rule: batch norm in training needs more than one value per channel.
    let bn_checks = c.g.nodes.iter().filter_map(|node| {
        let op = node.op()?;
        if op.name() != "batch_norm" {
            return None;
        }
        let shape = c.g.shape(op.operands()[0]);
        let per_channel = lit(crate::syntax::numel(shape) / shape[0].max(1));
        let dims = shape.iter().map(|&d| lit(d));
        let name = node.name.as_str();
        Some(quote! {
            ::bp::check_batch_norm(#name, #batch, #per_channel, &[#(#dims),*])?;
        })
    });
    let bn_checks: Vec<TokenStream> = bn_checks.collect();
    let bn_checks = (!bn_checks.is_empty()).then(|| quote!(if #training { #(#bn_checks)* }));
    let update = c.has_update().then(
        || quote!(if #training { Self::update_pass(&mut self.buffers, &self.values, #batch); }),
    );
    let (fdoc, bdoc, pdoc) = (
        docs::forward_api_doc(c),
        docs::backward_api_doc(c),
        docs::predict_doc(c),
    );
    let new_doc = docs::new_doc(c);
    // Every buffer a pass sizes, reserved fallibly before the pass (a batch too large for
    // memory is an error naming the buffer, not an abort).
    let reserve = |field: TokenStream, what: String, per: usize, fixed: usize| {
        let (per, fixed) = (lit(per), lit(fixed));
        quote!(::bp::reserve_buffer(&mut #field, #what, #batch, #per, #fixed)?;)
    };
    let mut reserve_values: Vec<TokenStream> = c
        .valued()
        .map(|n| {
            let v = &n.ident;
            let per = crate::syntax::numel(n.shape.as_deref().unwrap_or(&[]));
            reserve(
                quote!(values.#v),
                format!("the value of `{}`", n.name),
                per,
                0,
            )
        })
        .collect();
    let mut reserve_residuals: Vec<TokenStream> = (0..c.g.nodes.len())
        .filter_map(|id| {
            let r = c.residuals[id].as_ref()?;
            let per = crate::syntax::numel(c.g.shape(id));
            let what = format!("the residual of `{}`", c.g.nodes[id].name);
            Some(reserve(quote!(residuals.#r), what, per, 0))
        })
        .collect();
    for a in &c.g.aux {
        let f = &a.ident;
        let what = format!("workspace `{}` of `{}`", a.name, c.g.nodes[a.node].name);
        match a.place {
            crate::graph::Place::Forward => {
                reserve_values.push(reserve(quote!(values.#f), what, a.per_sample, a.fixed))
            }
            crate::graph::Place::Backward => {
                reserve_residuals.push(reserve(quote!(residuals.#f), what, a.per_sample, a.fixed))
            }
        }
    }
    // The finite-value check: the tensors of each pass, in the order the pass completes
    // them (no call where a pass has none, so the element type is always inferred).
    let finite_call = |pass: &str, items: Vec<TokenStream>| {
        (!items.is_empty()).then(|| quote!(::bp::check_finite(#pass, &[#(#items),*])?;))
    };
    let values_in = |at: TokenStream| -> Vec<TokenStream> {
        c.valued()
            .map(|n| {
                let (what, v) = (format!("`{}`", n.name), &n.ident);
                quote!((#what, &#at.#v))
            })
            .collect()
    };
    let fwd_finite = finite_call("forward", values_in(quote!(self.values)));
    let predict_finite = finite_call("predict", values_in(quote!(#ws)));
    let bwd_finite = finite_call(
        "backward",
        (0..c.g.nodes.len())
            .rev()
            .filter_map(|id| {
                let r = c.residuals[id].as_ref()?;
                let what = format!("the residual of `{}`", c.g.nodes[id].name);
                Some(quote!((#what, &self.residuals.#r)))
            })
            .collect(),
    );
    let grad_finite = finite_call(
        "backward",
        c.g.params
            .iter()
            .map(|p| {
                let (what, g) = (format!("the gradient of `{}`", p.torch_name), &p.grad_ident);
                quote!((#what, &self.grads.#g))
            })
            .collect(),
    );
    let param_finite = finite_call(
        "backward (SGD step)",
        c.g.params
            .iter()
            .map(|p| {
                let (what, f) = (format!("parameter `{}`", p.torch_name), &p.ident);
                quote!((#what, &self.params.#f))
            })
            .collect(),
    );
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
        pub fn try_new(#seed: u64) -> ::core::result::Result<Self, ::bp::Error> {
            let mut #params = #m::Params { #(#pz,)* };
            #(#inits)*
            ::core::result::Result::Ok(Self {
                params: #params,
                grads: #m::Grads { #(#gz,)* },
                values: ::core::default::Default::default(),
                residuals: ::core::default::Default::default(),
                buffers: #m::Buffers { #(#bz,)* },
                rng: ::bp::rng::Rng::for_name(#seed, "dropout"),
                batch: 0,
                training: true,
                forward_training: true,
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

        /// Room in every forward buffer for a batch of `batch`.
        fn reserve_values(values: &mut #m::Values, #batch: usize) -> ::core::result::Result<(), ::bp::Error> {
            #(#reserve_values)*
            ::core::result::Result::Ok(())
        }

        /// Room in every residual and backward workspace for a batch of `batch`.
        fn reserve_residuals(residuals: &mut #m::Residuals, #batch: usize) -> ::core::result::Result<(), ::bp::Error> {
            #(#reserve_residuals)*
            ::core::result::Result::Ok(())
        }

        #[doc = #fdoc]
        pub fn forward(&mut self, #(#in_names: &#t),*) -> ::core::result::Result<#out_ty, ::bp::Error> {
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
        pub fn inputs_mut(&mut self) -> (#(&mut #in_tys,)*) {
            (#(&mut self.values.#in_names,)*)
        }

        /// [`forward`](Self::forward) on the batch already in the input buffers (see
        /// [`inputs_mut`](Self::inputs_mut)), with the same shape checks and no copy.
        pub fn forward_loaded(&mut self) -> ::core::result::Result<#out_ty, ::bp::Error> {
            let #batch = {
                #(let #in_names = &self.values.#in_names;)*
                #check
                #batch
            };
            Self::reserve_values(&mut self.values, #batch)?;
            self.run_forward(#batch)
        }

        fn run_forward(&mut self, #batch: usize) -> ::core::result::Result<#out_ty, ::bp::Error> {
            ::bp::Network::check_state(self)?;
            let #training = self.training;
            #bn_checks
            #prepare
            Self::forward_pass(&self.params, &self.buffers, &mut self.values, #batch, #training);
            if self.check_finite {
                let finite = (|| -> ::core::result::Result<(), ::bp::Error> {
                    #fwd_finite
                    ::core::result::Result::Ok(())
                })();
                if let ::core::result::Result::Err(e) = finite {
                    self.forward_done = false;
                    return ::core::result::Result::Err(e);
                }
            }
            #update
            self.forward_training = #training;
            self.batch = #batch;
            self.forward_done = true;
            self.backward_done = false;
            Ok(#out_ref)
        }

        #[doc = #bdoc]
        pub fn backward(&mut self, #(#d_args: &#t),*) -> ::core::result::Result<(), ::bp::Error> {
            self.backward_with(#(#d_args,)* false, None)
        }

        /// Like [`backward`](Self::backward), but adds the parameter gradients to the
        /// ones already held instead of overwriting them: gradient accumulation over
        /// micro-batches. Residuals of nodes are those of this call.
        pub fn backward_accumulate(&mut self, #(#d_args: &#t),*) -> ::core::result::Result<(), ::bp::Error> {
            self.backward_with(#(#d_args,)* true, None)
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
        pub fn backward_sgd(&mut self, #(#d_args: &#t,)* lr: f64) -> ::core::result::Result<(), ::bp::Error> {
            ::bp::optim::check_lr(lr)?;
            self.backward_with(#(#d_args,)* false, Some(<#ty as ::bp::Float>::from_f64(lr)))
        }

        fn backward_with(&mut self, #(#d_args: &#t,)* #accumulate: bool, sgd: ::core::option::Option<#ty>) -> ::core::result::Result<(), ::bp::Error> {
            if !self.forward_done {
                return Err(::bp::Error::invalid("backward called before forward: run forward on a batch first"));
            }
            ::bp::Network::check_state(self)?;
            Self::reserve_residuals(&mut self.residuals, self.batch)?;
            #(#out_checks)*
            Self::backward_pass(&mut self.params, &self.values, &mut self.residuals, &mut self.grads, self.batch, #accumulate, sgd, self.forward_training);
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

        #[doc = #pdoc]
        pub fn predict(&self, #(#in_names: &#t),*) -> ::core::result::Result<#out_owned_ty, ::bp::Error> {
            let mut #ws = self.workspace();
            self.predict_into(&mut #ws, #(#in_names),*)?;
            let #m::Values { #(#outs,)* .. } = #ws;
            Ok(#owned)
        }

        /// Inference into a workspace the caller keeps (from [`workspace`](Self::workspace)):
        /// no allocation once the workspace has seen the largest batch. Needs only `&self`.
        pub fn predict_into<'w>(&self, #ws: &'w mut #m::Values, #(#in_names: &#t),*) -> ::core::result::Result<#out_ty_w, ::bp::Error> {
            #check
            ::bp::Network::check_state(self)?;
            Self::reserve_values(#ws, #batch)?;
            #(#ws.#in_names.assign(#in_names);)*
            Self::forward_pass(&self.params, &self.buffers, #ws, #batch, false);
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

/// Checks every input's shape and that all inputs agree on the batch size.
fn input_checks(c: &Ctx) -> TokenStream {
    let batch = hyg("batch");
    let inputs = c.inputs();
    let mut ts = TokenStream::new();
    for (k, &i) in inputs.iter().enumerate() {
        let ident = &c.g.nodes[i].ident;
        let name = c.g.nodes[i].name.as_str();
        let dims = c.g.shape(i).iter().map(|&d| lit(d));
        if k == 0 {
            ts.extend(quote!(let #batch = ::bp::check_input(#name, #ident, &[#(#dims),*])?;));
        } else {
            let first = c.g.nodes[inputs[0]].name.as_str();
            ts.extend(quote!(::bp::check_batch(#first, #batch, #name, ::bp::check_input(#name, #ident, &[#(#dims),*])?)?;));
        }
    }
    ts
}

pub fn network_impl(c: &Ctx) -> TokenStream {
    let name = &c.def.name;
    let ty = &c.ty;
    let t = quote!(::bp::Tensor<#ty>);
    let port = |id: usize| {
        let n = c.g.nodes[id].name.as_str();
        let dims = c.g.shape(id).iter().map(|&d| lit(d));
        quote!((#n, &[#(#dims),*]))
    };
    let inputs = c.inputs();
    let in_ports = inputs.iter().map(|&i| port(i));
    let out_ports = c.g.outputs.iter().map(|&o| port(o));
    let hash = crate::docs::structure_hash(c);
    let n_in = inputs.len();
    let n_out = c.g.outputs.len();
    let xs = (0..n_in).map(|k| quote!(inputs[#k]));
    let ds: Vec<_> = (0..n_out).map(|k| quote!(d_outputs[#k])).collect();
    let out_arms = c.g.outputs.iter().enumerate().map(|(k, &o)| {
        let v = &c.g.nodes[o].ident;
        quote!(#k => Some(&self.values.#v),)
    });
    let in_arms = inputs.iter().enumerate().map(|(k, &i)| {
        let v = &c.g.nodes[i].ident;
        quote!(#k => Some(&mut self.values.#v),)
    });
    let pnames: Vec<&str> = c.g.params.iter().map(|p| p.torch_name.as_str()).collect();
    let pf: Vec<_> = c.g.params.iter().map(|p| &p.ident).collect();
    let gf: Vec<_> = c.g.params.iter().map(|p| &p.grad_ident).collect();
    let (res_names, res_fields): (Vec<&str>, Vec<_>) =
        c.g.nodes
            .iter()
            .enumerate()
            .filter(|(id, n)| n.user && matches!(n.kind, Kind::Op(_)) && c.residuals[*id].is_some())
            .map(|(id, n)| (n.name.as_str(), c.residuals[id].as_ref()))
            .unzip();
    let (ig_names, ig_fields): (Vec<&str>, Vec<_>) = inputs
        .iter()
        .filter(|&&i| c.residuals[i].is_some())
        .map(|&i| (c.g.nodes[i].name.as_str(), c.residuals[i].as_ref()))
        .unzip();
    let (val_names, val_fields): (Vec<&str>, Vec<_>) =
        c.g.nodes
            .iter()
            .filter(|n| n.user && !n.is_param())
            .map(|n| (n.name.as_str(), &n.ident))
            .unzip();
    let bnames: Vec<&str> = c.g.buffers.iter().map(|b| b.torch_name.as_str()).collect();
    let bf: Vec<_> = c.g.buffers.iter().map(|b| &b.ident).collect();
    let dims = |shape: &[usize]| {
        let d = shape.iter().map(|&x| lit(x));
        quote!(#(#d),*)
    };
    let pdims: Vec<_> = c.g.params.iter().map(|p| dims(&p.shape)).collect();
    let bdims: Vec<_> = c.g.buffers.iter().map(|b| dims(&b.shape)).collect();
    let f = hyg("f");
    quote! {
        impl ::bp::Network for #name {
            type Scalar = #ty;
            const INPUTS: &'static [::bp::Port] = &[#(#in_ports),*];
            const OUTPUTS: &'static [::bp::Port] = &[#(#out_ports),*];
            const STRUCTURE_HASH: u64 = #hash;

            fn forward_dyn(&mut self, inputs: &[&#t]) -> ::core::result::Result<(), ::bp::Error> {
                ::bp::check_count("forward_dyn", #n_in, inputs.len())?;
                self.forward(#(#xs),*)?;
                Ok(())
            }
            fn output(&self, i: usize) -> ::core::option::Option<&#t> {
                if !self.forward_done {
                    return None;
                }
                match i { #(#out_arms)* _ => None }
            }
            fn input_mut(&mut self, i: usize) -> ::core::option::Option<&mut #t> {
                match i { #(#in_arms)* _ => None }
            }
            fn forward_loaded_dyn(&mut self) -> ::core::result::Result<(), ::bp::Error> {
                self.forward_loaded()?;
                Ok(())
            }
            fn backward_dyn(&mut self, d_outputs: &[&#t]) -> ::core::result::Result<(), ::bp::Error> {
                ::bp::check_count("backward_dyn", #n_out, d_outputs.len())?;
                self.backward_with(#(#ds,)* false, None)
            }
            fn backward_dyn_accumulate(&mut self, d_outputs: &[&#t]) -> ::core::result::Result<(), ::bp::Error> {
                ::bp::check_count("backward_dyn_accumulate", #n_out, d_outputs.len())?;
                self.backward_with(#(#ds,)* true, None)
            }
            fn backward_sgd_dyn(&mut self, d_outputs: &[&#t], lr: f64) -> ::core::result::Result<(), ::bp::Error> {
                ::bp::check_count("backward_sgd_dyn", #n_out, d_outputs.len())?;
                self.backward_sgd(#(#ds,)* lr)
            }
            fn param_names(&self) -> ::std::vec::Vec<&'static str> {
                ::std::vec![#(#pnames),*]
            }
            fn param(&self, name: &str) -> ::core::option::Option<&#t> {
                match name { #(#pnames => Some(&self.params.#pf),)* _ => None }
            }
            fn param_mut(&mut self, name: &str) -> ::core::option::Option<&mut #t> {
                match name { #(#pnames => Some(&mut self.params.#pf),)* _ => None }
            }
            fn grad(&self, name: &str) -> ::core::option::Option<&#t> {
                if self.grads_spent {
                    return None;
                }
                match name { #(#pnames => Some(&self.grads.#gf),)* _ => None }
            }
            fn check_state(&self) -> ::core::result::Result<(), ::bp::Error> {
                #(::bp::check_state_shape("parameter", #pnames, &self.params.#pf, &[#pdims])?;)*
                #(::bp::check_state_shape("buffer", #bnames, &self.buffers.#bf, &[#bdims])?;)*
                ::core::result::Result::Ok(())
            }
            fn buffer_names(&self) -> ::std::vec::Vec<&'static str> {
                ::std::vec![#(#bnames),*]
            }
            fn buffer(&self, name: &str) -> ::core::option::Option<&#t> {
                match name { #(#bnames => Some(&self.buffers.#bf),)* _ => None }
            }
            fn buffer_mut(&mut self, name: &str) -> ::core::option::Option<&mut #t> {
                match name { #(#bnames => Some(&mut self.buffers.#bf),)* _ => None }
            }
            fn reseed(&mut self, seed: u64) {
                self.rng = ::bp::rng::Rng::for_name(seed, "dropout");
            }
            fn value(&self, name: &str) -> ::core::option::Option<&#t> {
                if !self.forward_done {
                    return None;
                }
                match name { #(#val_names => Some(&self.values.#val_fields),)* _ => None }
            }
            fn residual(&self, name: &str) -> ::core::option::Option<&#t> {
                if !self.backward_done {
                    return None;
                }
                match name { #(#res_names => Some(&self.residuals.#res_fields),)* _ => None }
            }
            fn input_grad(&self, name: &str) -> ::core::option::Option<&#t> {
                if !self.backward_done {
                    return None;
                }
                match name { #(#ig_names => Some(&self.residuals.#ig_fields),)* _ => None }
            }
            fn visit_params(&mut self, #f: &mut ::bp::ParamVisitor<'_, #ty>) {
                #(#f(#pnames, &mut self.params.#pf, &self.grads.#gf);)*
            }
            fn set_training(&mut self, training: bool) {
                self.training = training;
            }
            fn is_training(&self) -> bool {
                self.training
            }
        }
    }
}
