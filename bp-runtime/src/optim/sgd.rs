//! Stochastic gradient descent, `torch.optim.SGD`.
#![forbid(unsafe_code)]

use super::{invalid, non_negative, same_len, Optimizer, State};
use crate::{Error, Float, Network, Tensor};

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and
/// L2 weight decay: `torch.optim.SGD`'s algorithm, step for step. With `g` the gradient,
/// `λ` the weight decay, `μ` the momentum, `τ` the dampening and `η` the learning rate:
///
/// ```text
/// g ← g + λ·θ                               (if λ ≠ 0)
/// b ← g            on the first step        (if μ ≠ 0)
/// b ← μ·b + (1 − τ)·g                       on later steps
/// g ← g + μ·b  (Nesterov)   or   g ← b
/// θ ← θ − η·g
/// ```
///
/// ```
/// use bp_runtime::optim::Sgd;
/// let opt = Sgd::<f32>::new(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4);
/// assert!(bp_runtime::optim::Optimizer::check(&opt).is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float = f32> {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    state: State<T, 1>,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr`: no momentum, no dampening, no weight decay.
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            state: State::new(),
        }
    }

    /// Momentum factor `μ` (default 0: no momentum buffer).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Dampening `τ` of the momentum (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Nesterov momentum (default false; needs momentum > 0 and zero dampening).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// L2 weight decay `λ`, added to the gradient as `λ·θ` (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// The optimizer if its hyperparameters are valid ([`Optimizer::check`]), else the
    /// error naming the invalid one.
    pub fn checked(self) -> Result<Self, Error> {
        self.check()?;
        Ok(self)
    }

    /// Forgets the momentum buffers; the next step starts afresh.
    pub fn reset_state(&mut self) {
        self.state.clear();
    }
}

/// Tensors with at least this many elements are updated by all threads of
/// [`crate::kernels::set_threads`] (plain SGD).
const PARALLEL_UPDATE: usize = 1 << 16;

/// The hyperparameters of one step, in the element type.
#[derive(Clone, Copy)]
struct Coeffs<T> {
    lr: T,
    momentum: T,
    keep: T,
    weight_decay: T,
    decay: bool,
    nesterov: bool,
}

/// `g + λ·θ`, or `g` when there is no weight decay (as PyTorch, which skips the term).
#[inline(always)]
fn decayed<T: Float>(c: &Coeffs<T>, g: T, p: T) -> T {
    if c.decay {
        g + c.weight_decay * p
    } else {
        g
    }
}

fn plain<T: Float>(c: &Coeffs<T>, p: &mut [T], g: &[T]) {
    for (p, &g) in p.iter_mut().zip(g) {
        let d = decayed(c, g, *p);
        *p -= c.lr * d;
    }
}

/// [`plain`] over the threads of [`crate::kernels::set_threads`] when the tensor is large:
/// its update is memory-bound, and two cores move it faster than one.
fn plain_split<T: Float>(c: &Coeffs<T>, p: &mut [T], g: &[T]) {
    let parts = if p.len() >= PARALLEL_UPDATE {
        crate::kernels::threads()
    } else {
        1
    };
    let len = p.len();
    crate::threads::for_chunks(p, parts, &|i, pc| {
        let start = crate::threads::chunk_start(len, parts, i);
        plain(c, pc, &g[start..start + pc.len()]);
    });
}

/// `θ ← θ − lr·g` over one tensor: plain SGD's update (`Sgd::new(lr)` with no momentum
/// and no weight decay), the step the networks' fused `backward_sgd` applies to the
/// parameters whose gradient it does not fold into a product.
///
/// # Panics
/// If `p` and `g` differ in length.
pub fn sgd_update<T: Float>(p: &mut [T], g: &[T], lr: T) {
    assert_eq!(
        p.len(),
        g.len(),
        "sgd_update: parameter and gradient lengths differ"
    );
    let c = Coeffs {
        lr,
        momentum: T::ZERO,
        keep: T::ONE,
        weight_decay: T::ZERO,
        decay: false,
        nesterov: false,
    };
    plain_split(&c, p, g);
}

fn with_momentum<T: Float>(c: &Coeffs<T>, first: bool, p: &mut [T], g: &[T], buf: &mut [T]) {
    for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
        let d = decayed(c, g, *p);
        *b = if first {
            d
        } else {
            *b * c.momentum + c.keep * d
        };
        let d = if c.nesterov { d + c.momentum * *b } else { *b };
        *p -= c.lr * d;
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step<N: Network<Scalar = T>>(&mut self, net: &mut N) -> Result<(), Error> {
        self.check()?;
        let c = Coeffs {
            lr: T::from_f64(self.lr),
            momentum: T::from_f64(self.momentum),
            keep: T::from_f64(1.0 - self.dampening),
            weight_decay: T::from_f64(self.weight_decay),
            decay: self.weight_decay != 0.0,
            nesterov: self.nesterov,
        };
        if self.momentum == 0.0 {
            net.visit_params(&mut |name, p, g| {
                same_len(name, p.len(), g.len());
                plain_split(&c, p, g);
            });
            return Ok(());
        }
        let state = &mut self.state;
        let mut i = 0;
        net.visit_params(&mut |name, p, g| {
            same_len(name, p.len(), g.len());
            let slot = state.slot(i, name, p.len());
            i += 1;
            with_momentum(&c, slot.steps == 0, p, g, &mut slot.bufs[0]);
            slot.steps += 1;
        });
        state.finish(i);
        Ok(())
    }

    /// Plain SGD (no momentum, no weight decay) runs the network's fused
    /// [`Network::backward_sgd_dyn`]: each dense layer's weight is updated inside its
    /// weight-gradient product, and no gradient is stored or read again. With momentum or
    /// weight decay it is `backward_dyn` followed by [`step`](Optimizer::step). Either
    /// way the hyperparameters are checked first (the fused pass alone would check only
    /// the learning rate, and let a stray Nesterov flag or dampening through).
    fn backward_step<N: Network<Scalar = T>>(
        &mut self,
        net: &mut N,
        d_outputs: &[&Tensor<T>],
    ) -> Result<(), Error> {
        self.check()?;
        if self.momentum == 0.0 && self.weight_decay == 0.0 {
            return net.backward_sgd_dyn(d_outputs, self.lr);
        }
        net.backward_dyn(d_outputs)?;
        self.step(net)
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn check(&self) -> Result<(), Error> {
        non_negative("learning rate", self.lr)?;
        non_negative("momentum value", self.momentum)?;
        non_negative("weight_decay value", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(invalid("dampening value", self.dampening));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::invalid(
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_follow_pytorch() {
        let ok = |s: Sgd<f32>| s.check().is_ok();
        assert!(ok(Sgd::new(0.0)));
        assert!(ok(Sgd::new(0.1).momentum(0.9).dampening(0.5)));
        assert!(!ok(Sgd::new(-1.0)));
        assert!(!ok(Sgd::new(f64::NAN)));
        assert!(!ok(Sgd::new(0.1).momentum(-0.5)));
        assert!(!ok(Sgd::new(0.1).weight_decay(-1e-4)));
        assert!(!ok(Sgd::new(0.1).dampening(f64::INFINITY)));
        assert!(!ok(Sgd::new(0.1).nesterov(true)));
        assert!(!ok(Sgd::new(0.1)
            .momentum(0.9)
            .dampening(0.1)
            .nesterov(true)));
        let e = Sgd::<f64>::new(-2.0).checked().unwrap_err();
        assert_eq!(e.to_string(), "Invalid learning rate: -2");
    }

    #[test]
    fn first_momentum_buffer_is_the_gradient() {
        let c = Coeffs {
            lr: 0.5,
            momentum: 0.9,
            keep: 0.25,
            weight_decay: 0.0,
            decay: false,
            nesterov: false,
        };
        let (mut p, mut b) = ([1.0f64], [7.0]);
        with_momentum(&c, true, &mut p, &[2.0], &mut b);
        assert_eq!((p, b), ([0.0], [2.0]));
        with_momentum(&c, false, &mut p, &[4.0], &mut b);
        assert_eq!(b, [0.9 * 2.0 + 0.25 * 4.0]);
    }
}
