//! Optimizers with PyTorch's update rules: [`Sgd`] (momentum, dampening, Nesterov,
//! weight decay), [`Adam`] and [`AdamW`].
//!
//! An optimizer updates a network through [`Network::visit_params`], which yields every
//! learnable parameter with its gradient in declaration order; batch norm's running
//! statistics are buffers and never reach it.
//!
//! ```
//! use bp_runtime::optim::{Adam, Optimizer, Sgd};
//! let sgd = Sgd::<f32>::new(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4).checked();
//! assert!(sgd.is_ok());
//! // PyTorch refuses Nesterov without momentum, and so does `check`:
//! let e = Sgd::<f32>::new(0.1).nesterov(true).checked().unwrap_err();
//! assert!(e.to_string().contains("Nesterov"));
//! let mut adam = Adam::<f64>::new(1e-3).betas(0.9, 0.99);
//! adam.set_lr(5e-4);
//! assert_eq!(adam.lr(), 5e-4);
//! ```
//!
//! # Hyperparameters
//!
//! Constructors and builder methods never fail and never panic: they store what they are
//! given. [`Optimizer::check`] (and the `checked` builder that ends a chain with it)
//! validates the values with PyTorch's rules and messages (`lr ≥ 0`, `momentum ≥ 0`,
//! `weight_decay ≥ 0`, betas in [0, 1), `eps ≥ 0`, Nesterov needs momentum > 0 and zero
//! dampening; and every value finite). [`Optimizer::step`] runs the same check first, on
//! every step, and on an invalid value returns its error before it touches a parameter, so
//! a bad learning rate set by a schedule through `set_lr` is caught at the next step. The
//! check is a few comparisons and allocates nothing unless it fails. Calling `check` once
//! before training still pays: it fails before any work is done.
//!
//! ```
//! use bp_runtime::optim::{Adam, Optimizer};
//! let mut adam = Adam::<f32>::new(1e-3);
//! adam.set_lr(f64::NAN);
//! assert_eq!(adam.check().unwrap_err().to_string(), "Invalid learning rate: NaN");
//! ```
//!
//! # State
//!
//! Momentum buffers and moments are allocated on the first `step` and reused afterwards:
//! a warm `step` does not allocate. State is keyed by visit order and checked against
//! the parameter's name and size on every step. A parameter whose name or size differs
//! from the one its state was made for (another network was passed) gets fresh state, as
//! a new PyTorch optimizer would give it; this is not an error and never panics. So one
//! optimizer per network: alternating two networks through one optimizer restarts their
//! moments at every step.
#![forbid(unsafe_code)]

mod adam;
mod sgd;

pub use adam::{Adam, AdamW};
pub use sgd::{sgd_update, Sgd};

use crate::{Error, Float, Network, Tensor};

/// An optimizer: updates every parameter of a network from its gradient.
pub trait Optimizer<T: Float> {
    /// θ ← θ − update(∇θ) for every parameter the network's visitor yields, using the
    /// gradients of the last `backward`.
    ///
    /// Errors: a hyperparameter that [`check`](Self::check) refuses, with its message
    /// (`Invalid learning rate: -1`); the check runs first, so on error no parameter and
    /// no state has changed.
    fn step<N: Network<Scalar = T>>(&mut self, net: &mut N) -> Result<(), Error>;
    /// The backward pass from the output gradients `d_outputs` and then the update:
    /// the same result as `net.backward_dyn(d_outputs)` followed by
    /// [`step`](Self::step) (up to rounding), and what the training loop calls. The
    /// default is exactly that, with the hyperparameters checked before the backward pass;
    /// plain [`Sgd`] overrides it with the network's fused
    /// [`Network::backward_sgd_dyn`], which updates the parameters during the backward
    /// pass and leaves no gradients behind.
    fn backward_step<N: Network<Scalar = T>>(
        &mut self,
        net: &mut N,
        d_outputs: &[&Tensor<T>],
    ) -> Result<(), Error> {
        self.check()?;
        net.backward_dyn(d_outputs)?;
        self.step(net)
    }
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate (for schedules); the state is kept.
    fn set_lr(&mut self, lr: f64);
    /// Validates the hyperparameters with PyTorch's rules; the error says which value is
    /// invalid. [`step`](Self::step) calls it first. The default accepts everything.
    fn check(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// The error for a hyperparameter outside its domain, in PyTorch's words.
fn invalid(what: &str, value: f64) -> Error {
    Error::invalid(format!("Invalid {what}: {value}"))
}

/// Checks a learning rate as `Sgd`'s `check` does (`lr ≥ 0` and finite), with PyTorch's
/// message; for the fused `backward_sgd`.
pub fn check_lr(lr: f64) -> Result<(), Error> {
    non_negative("learning rate", lr)
}

/// Checks `value ≥ 0` and finite.
fn non_negative(what: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(what, value))
    }
}

/// The state of one parameter: its name and size, how many steps it has had, and `K`
/// buffers of its size (momentum for SGD; first and second moments for Adam).
#[derive(Clone, Debug)]
struct Slot<T, const K: usize> {
    name: &'static str,
    steps: u64,
    bufs: [Vec<T>; K],
}

impl<T: Float, const K: usize> Slot<T, K> {
    fn new(name: &'static str, len: usize) -> Self {
        Slot {
            name,
            steps: 0,
            bufs: std::array::from_fn(|_| vec![T::ZERO; len]),
        }
    }

    /// Fresh state for another parameter, reusing the allocations.
    fn reset(&mut self, name: &'static str, len: usize) {
        self.name = name;
        self.steps = 0;
        for b in &mut self.bufs {
            b.clear();
            b.resize(len, T::ZERO);
        }
    }
}

/// The state of every parameter, in visit order.
#[derive(Clone, Debug)]
struct State<T, const K: usize> {
    slots: Vec<Slot<T, K>>,
}

impl<T: Float, const K: usize> State<T, K> {
    const fn new() -> Self {
        State { slots: Vec::new() }
    }

    /// The state of the `i`-th parameter visited (`i` ≤ the number of slots), made
    /// fresh when it was made for another name or size.
    fn slot(&mut self, i: usize, name: &'static str, len: usize) -> &mut Slot<T, K> {
        if i == self.slots.len() {
            self.slots.push(Slot::new(name, len));
        }
        let slot = &mut self.slots[i];
        if slot.name != name || slot.bufs.iter().any(|b| b.len() != len) {
            slot.reset(name, len);
        }
        slot
    }

    /// Drops the state of parameters past the `visited` first (a smaller network).
    fn finish(&mut self, visited: usize) {
        self.slots.truncate(visited);
    }

    fn clear(&mut self) {
        self.slots.clear();
    }
}

/// Panics unless a parameter and its gradient have the same size: a `Network`
/// implementation that breaks this is a bug, not a user error.
fn same_len(name: &str, param: usize, grad: usize) {
    assert_eq!(
        param, grad,
        "Network::visit_params yielded `{name}` with {param} elements but a gradient of {grad}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_resets_on_another_parameter() {
        let mut s = State::<f64, 2>::new();
        s.slot(0, "a", 3).steps = 4;
        s.slot(0, "a", 3).bufs[1][2] = 1.0;
        assert_eq!(s.slot(0, "a", 3).steps, 4);
        let fresh = s.slot(0, "b", 3);
        assert_eq!((fresh.steps, fresh.bufs[1][2]), (0, 0.0));
        assert_eq!(s.slot(0, "b", 5).bufs[0].len(), 5);
        s.slot(1, "c", 1);
        s.finish(1);
        assert_eq!(s.slots.len(), 1);
        s.clear();
        assert!(s.slots.is_empty());
    }

    #[test]
    fn non_negative_rejects_nan_and_negatives() {
        assert!(non_negative("learning rate", 0.0).is_ok());
        let e = non_negative("learning rate", -0.1).unwrap_err();
        assert_eq!(e.to_string(), "Invalid learning rate: -0.1");
        assert!(non_negative("eps", f64::NAN).is_err());
        assert!(non_negative("eps", f64::INFINITY).is_err());
    }
}
