//! Adam and AdamW, `torch.optim.Adam` and `torch.optim.AdamW`.
#![forbid(unsafe_code)]

use super::{invalid, non_negative, same_len, Optimizer, State};
use crate::{Error, Float, Network};

/// The hyperparameters and state shared by [`Adam`] and [`AdamW`].
#[derive(Clone, Debug)]
struct Core<T: Float> {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    /// AdamW: θ ← θ·(1 − η·λ) before the step, instead of adding λ·θ to the gradient.
    decoupled: bool,
    /// Buffers: the first moment `m` and the second moment `v`.
    state: State<T, 2>,
}

/// The scalars of one step of one parameter, in the element type.
#[derive(Clone, Copy)]
struct Coeffs<T> {
    /// Weight of the new gradient in `m`: 1 − β₁ (PyTorch's `lerp_` weight).
    w1: T,
    beta2: T,
    w2: T,
    /// −η / (1 − β₁ᵗ).
    neg_step_size: T,
    /// √(1 − β₂ᵗ).
    bc2_sqrt: T,
    eps: T,
    /// L2 weight decay added to the gradient (Adam); 0 for AdamW.
    l2: T,
    l2_on: bool,
}

/// One Adam update of a parameter (PyTorch's `_single_tensor_adam`):
/// `m ← m + (1 − β₁)(g − m)`, `v ← β₂v + (1 − β₂)g²`,
/// `θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)`.
fn update<T: Float>(c: &Coeffs<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if c.l2_on { g + c.l2 * *p } else { g };
        *m += c.w1 * (g - *m);
        *v = *v * c.beta2 + c.w2 * g * g;
        let denom = v.sqrt() / c.bc2_sqrt + c.eps;
        *p += c.neg_step_size * *m / denom;
    }
}

impl<T: Float> Core<T> {
    fn new(lr: f64, weight_decay: f64, decoupled: bool) -> Self {
        Core {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            decoupled,
            state: State::new(),
        }
    }

    fn step<N: Network<Scalar = T>>(&mut self, net: &mut N) -> Result<(), Error> {
        self.check()?;
        let (lr, beta1, beta2) = (self.lr, self.beta1, self.beta2);
        let decay = self.weight_decay != 0.0;
        let shrink = T::from_f64(1.0 - lr * self.weight_decay);
        let base = Coeffs {
            w1: T::from_f64(1.0 - beta1),
            beta2: T::from_f64(beta2),
            w2: T::from_f64(1.0 - beta2),
            neg_step_size: T::ZERO,
            bc2_sqrt: T::ONE,
            eps: T::from_f64(self.eps),
            l2: T::from_f64(self.weight_decay),
            l2_on: decay && !self.decoupled,
        };
        let decoupled = decay && self.decoupled;
        let state = &mut self.state;
        let mut i = 0;
        net.visit_params(&mut |name, p, g| {
            same_len(name, p.len(), g.len());
            let slot = state.slot(i, name, p.len());
            i += 1;
            slot.steps += 1;
            // Bias corrections in f64, as PyTorch computes them in Python floats.
            let t = slot.steps as f64;
            let c = Coeffs {
                neg_step_size: T::from_f64(-(lr / (1.0 - beta1.powf(t)))),
                bc2_sqrt: T::from_f64((1.0 - beta2.powf(t)).sqrt()),
                ..base
            };
            if decoupled {
                for p in p.iter_mut() {
                    *p *= shrink;
                }
            }
            let [m, v] = &mut slot.bufs;
            update(&c, p, g, m, v);
        });
        state.finish(i);
        Ok(())
    }

    fn check(&self) -> Result<(), Error> {
        non_negative("learning rate", self.lr)?;
        non_negative("epsilon value", self.eps)?;
        for (i, beta) in [self.beta1, self.beta2].into_iter().enumerate() {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid(&format!("beta parameter at index {i}"), beta));
            }
        }
        non_negative("weight_decay value", self.weight_decay)
    }
}

/// Writes the builder methods and the `Optimizer` impl shared by Adam and AdamW.
macro_rules! adam_like {
    ($name:ident) => {
        impl<T: Float> $name<T> {
            /// The decay rates `β₁`, `β₂` of the moment estimates (default 0.9, 0.999).
            pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
                self.0.beta1 = beta1;
                self.0.beta2 = beta2;
                self
            }

            /// The term `ε` added to `√v̂` in the denominator (default 1e-8).
            pub fn eps(mut self, eps: f64) -> Self {
                self.0.eps = eps;
                self
            }

            /// The weight decay `λ` (see the type's documentation for how it applies).
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.0.weight_decay = weight_decay;
                self
            }

            /// The optimizer if its hyperparameters are valid ([`Optimizer::check`]),
            /// else the error naming the invalid one.
            pub fn checked(self) -> Result<Self, Error> {
                self.check()?;
                Ok(self)
            }

            /// Forgets the moments and step counts; the next step starts afresh.
            pub fn reset_state(&mut self) {
                self.0.state.clear();
            }
        }

        impl<T: Float> Optimizer<T> for $name<T> {
            fn step<N: Network<Scalar = T>>(&mut self, net: &mut N) -> Result<(), Error> {
                self.0.step(net)
            }

            fn lr(&self) -> f64 {
                self.0.lr
            }

            fn set_lr(&mut self, lr: f64) {
                self.0.lr = lr;
            }

            fn check(&self) -> Result<(), Error> {
                self.0.check()
            }
        }
    };
}

/// Adam, `torch.optim.Adam` (without amsgrad), step for step. With `g` the gradient,
/// `t` the step count of the parameter, `η` the learning rate, `λ` the weight decay:
///
/// ```text
/// g ← g + λ·θ                               (L2 weight decay, if λ ≠ 0)
/// m ← β₁·m + (1 − β₁)·g
/// v ← β₂·v + (1 − β₂)·g²
/// θ ← θ − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
///
/// Defaults: β = (0.9, 0.999), ε = 1e-8, λ = 0.
///
/// ```
/// use bp_runtime::optim::{Adam, Optimizer};
/// let opt = Adam::<f32>::new(1e-3).betas(0.9, 0.98).eps(1e-6).weight_decay(1e-4);
/// assert!(opt.check().is_ok());
/// assert!(Adam::<f32>::new(1e-3).betas(1.0, 0.9).check().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T: Float = f32>(Core<T>);

impl<T: Float> Adam<T> {
    /// Adam with learning rate `lr` and PyTorch's defaults for the rest.
    pub fn new(lr: f64) -> Self {
        Adam(Core::new(lr, 0.0, false))
    }
}

adam_like!(Adam);

/// AdamW, `torch.optim.AdamW`: Adam with decoupled weight decay. Before the Adam step
/// (with no L2 term in the gradient) every parameter shrinks as θ ← θ·(1 − η·λ).
///
/// Defaults as PyTorch: β = (0.9, 0.999), ε = 1e-8, λ = 0.01.
///
/// ```
/// use bp_runtime::optim::{AdamW, Optimizer};
/// let opt = AdamW::<f64>::new(1e-3).weight_decay(0.05).checked().unwrap();
/// assert_eq!(opt.lr(), 1e-3);
/// ```
#[derive(Clone, Debug)]
pub struct AdamW<T: Float = f32>(Core<T>);

impl<T: Float> AdamW<T> {
    /// AdamW with learning rate `lr` and PyTorch's defaults for the rest (λ = 0.01).
    pub fn new(lr: f64) -> Self {
        AdamW(Core::new(lr, 0.01, true))
    }
}

adam_like!(AdamW);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_follow_pytorch() {
        assert!(Adam::<f32>::new(0.0).check().is_ok());
        assert!(Adam::<f32>::new(-1e-3).check().is_err());
        assert!(Adam::<f32>::new(1e-3).eps(-1.0).check().is_err());
        assert!(Adam::<f32>::new(1e-3).weight_decay(-1.0).check().is_err());
        assert!(AdamW::<f32>::new(1e-3).betas(0.0, 0.0).check().is_ok());
        let e = AdamW::<f32>::new(1e-3)
            .betas(0.9, 1.0)
            .checked()
            .unwrap_err();
        assert_eq!(e.to_string(), "Invalid beta parameter at index 1: 1");
        assert!(Adam::<f32>::new(1e-3).betas(-0.1, 0.9).check().is_err());
        assert!(Adam::<f32>::new(1e-3).betas(f64::NAN, 0.9).check().is_err());
    }

    #[test]
    fn first_step_moves_by_lr() {
        // With m̂ = g and v̂ = g², the first step is −η·g/(|g| + ε) ≈ −η·sign(g).
        let c = Coeffs {
            w1: 0.1,
            beta2: 0.999,
            w2: 0.001,
            neg_step_size: -0.01 / 0.1,
            bc2_sqrt: 0.001f64.sqrt(),
            eps: 0.0,
            l2: 0.0,
            l2_on: false,
        };
        let (mut p, mut m, mut v) = ([1.0f64, 1.0], [0.0; 2], [0.0; 2]);
        update(&c, &mut p, &[3.0, -0.5], &mut m, &mut v);
        assert!(
            (p[0] - 0.99).abs() < 1e-12 && (p[1] - 1.01).abs() < 1e-12,
            "{p:?}"
        );
    }
}
