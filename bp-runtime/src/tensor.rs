//! `Tensor`: a row-major array of `f32` or `f64` with its shape.
#![forbid(unsafe_code)]

use crate::{Error, Float};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The largest rank a tensor may have (batch dimension included).
pub const MAX_RANK: usize = 6;

/// A dense, row-major tensor. The shape is stored inline, so changing it never allocates;
/// the data is a `Vec<T>` whose capacity is kept when a tensor shrinks, so buffers sized
/// for the largest batch are reused for every smaller one.
///
/// A tensor dereferences to its data as a slice, so kernels taking `&[T]` accept it.
///
/// ```
/// use bp_runtime::Tensor;
/// let t = Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
/// assert_eq!(t.shape(), &[2, 3]);
/// assert_eq!(t.as_slice()[4], 5.0);
/// ```
#[derive(Clone, PartialEq)]
pub struct Tensor<T = f32> {
    dims: [usize; MAX_RANK],
    rank: usize,
    data: Vec<T>,
}

impl<T: Float> Default for Tensor<T> {
    /// An empty tensor of shape `[0]`; it holds no allocation.
    fn default() -> Self {
        Tensor {
            dims: [0; MAX_RANK],
            rank: 1,
            data: Vec::new(),
        }
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

fn inline_dims(shape: &[usize]) -> Result<[usize; MAX_RANK], Error> {
    if shape.len() > MAX_RANK {
        return Err(Error::invalid(format!(
            "shape {shape:?} has rank {} but tensors have at most rank {MAX_RANK}",
            shape.len()
        )));
    }
    let mut dims = [0; MAX_RANK];
    dims[..shape.len()].copy_from_slice(shape);
    Ok(dims)
}

impl<T: Float> Tensor<T> {
    /// A tensor of the given shape holding `data` in row-major order.
    ///
    /// An error names both lengths when `data` does not hold exactly the elements the
    /// shape asks for.
    pub fn from_vec(shape: &[usize], data: Vec<T>) -> Result<Tensor<T>, Error> {
        let dims = inline_dims(shape)?;
        if numel(shape) != data.len() {
            return Err(Error::Length {
                what: format!("Tensor::from_vec with shape {shape:?}"),
                expected: numel(shape),
                found: data.len(),
            });
        }
        Ok(Tensor {
            dims,
            rank: shape.len(),
            data,
        })
    }

    /// A tensor of zeros.
    ///
    /// # Panics
    /// If the rank exceeds [`MAX_RANK`]; use [`Tensor::from_vec`] for a checked constructor.
    pub fn zeros(shape: &[usize]) -> Tensor<T> {
        Tensor::full(shape, T::ZERO)
    }

    /// A tensor with every element equal to `value`.
    ///
    /// # Panics
    /// If the rank exceeds [`MAX_RANK`].
    pub fn full(shape: &[usize], value: T) -> Tensor<T> {
        let dims = match inline_dims(shape) {
            Ok(dims) => dims,
            Err(e) => panic!("{e}"),
        };
        Tensor {
            dims,
            rank: shape.len(),
            data: vec![value; numel(shape)],
        }
    }

    /// [`Tensor::full`] that reports a failed allocation (or a rank over [`MAX_RANK`]) as
    /// an error instead of aborting the process: what a network's `try_new` builds its
    /// parameters with.
    pub fn try_full(shape: &[usize], value: T) -> Result<Tensor<T>, Error> {
        let dims = inline_dims(shape)?;
        let fail = |bytes| Error::Alloc {
            what: format!("a tensor of shape {shape:?}"),
            bytes,
        };
        let n = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| fail(usize::MAX))?;
        let bytes = n.saturating_mul(std::mem::size_of::<T>());
        let mut data = Vec::new();
        data.try_reserve_exact(n).map_err(|_| fail(bytes))?;
        data.resize(n, value);
        Ok(Tensor {
            dims,
            rank: shape.len(),
            data,
        })
    }

    /// Makes room for `len` elements without changing the tensor, or reports that the
    /// memory cannot be had as [`Error::Alloc`] naming `what`; allocates nothing when the
    /// tensor already holds that much. Generated passes call it before they size their
    /// buffers, so a batch too large for memory is an error, not an abort.
    pub fn try_reserve_len(&mut self, what: &str, len: usize) -> Result<(), Error> {
        reserve_vec(&mut self.data, what, len)
    }

    /// A tensor holding a copy of `data`.
    pub fn from_slice(shape: &[usize], data: &[T]) -> Result<Tensor<T>, Error> {
        Tensor::from_vec(shape, data.to_vec())
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The data vector, consuming the tensor.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Gives the tensor a new shape, keeping its allocation. New elements are zero; the
    /// values of kept elements are unspecified for callers (kernels overwrite them).
    /// Allocates only when the tensor grows past every size it had before.
    ///
    /// # Panics
    /// If the rank exceeds [`MAX_RANK`] (generated code never asks for that).
    pub fn resize(&mut self, shape: &[usize]) {
        assert!(shape.len() <= MAX_RANK, "rank {} > {MAX_RANK}", shape.len());
        self.dims[..shape.len()].copy_from_slice(shape);
        self.rank = shape.len();
        self.data.resize(numel(shape), T::ZERO);
    }

    /// Makes this tensor a copy of `other` (shape and data), reusing the allocation.
    pub fn assign(&mut self, other: &Tensor<T>) {
        self.dims = other.dims;
        self.rank = other.rank;
        self.data.clear();
        self.data.extend_from_slice(&other.data);
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: T) {
        self.data.fill(value);
    }

    /// The same data under another shape with the same number of elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Tensor<T>, Error> {
        if numel(shape) != self.data.len() {
            return Err(Error::Length {
                what: format!("reshape of {:?} to {shape:?}", self.shape()),
                expected: numel(shape),
                found: self.data.len(),
            });
        }
        self.dims = inline_dims(shape)?;
        self.rank = shape.len();
        Ok(self)
    }

    /// Converts the elements to another float type.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor {
            dims: self.dims,
            rank: self.rank,
            data: self.data.iter().map(|&v| U::from_f64(v.to_f64())).collect(),
        }
    }
}

impl<T> Deref for Tensor<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T> DerefMut for Tensor<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Tensor{:?} [", self.shape())?;
        for (i, v) in self.data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        if self.data.len() > SHOWN {
            write!(f, ", … {} more", self.data.len() - SHOWN)?;
        }
        f.write_str("]")
    }
}

/// `Vec::try_reserve_exact` up to a total of `len` elements, as [`Error::Alloc`] naming
/// `what` on failure.
pub fn reserve_vec<E>(v: &mut Vec<E>, what: &str, len: usize) -> Result<(), Error> {
    if v.capacity() >= len {
        return Ok(());
    }
    v.try_reserve_exact(len - v.len())
        .map_err(|_| Error::Alloc {
            what: what.to_string(),
            bytes: len.saturating_mul(std::mem::size_of::<E>()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_length() {
        let e = Tensor::<f32>::from_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert!(e.to_string().contains("6 elements but 5"), "{e}");
    }

    #[test]
    fn resize_keeps_capacity() {
        let mut t = Tensor::<f64>::zeros(&[64, 10]);
        let cap = t.data.capacity();
        t.resize(&[17, 10]);
        assert_eq!(t.shape(), &[17, 10]);
        t.resize(&[64, 10]);
        assert_eq!(t.data.capacity(), cap);
    }
}
