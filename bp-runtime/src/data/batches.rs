//! Shuffled mini-batches copied into reusable tensors.
#![forbid(unsafe_code)]

use super::Dataset;
use crate::rng::Rng;
use crate::{Error, Float, Tensor, MAX_RANK};

/// Hands out the mini-batches of a data set, epoch after epoch, copying each into tensors
/// the caller keeps, so that once they have grown to the batch size no batch allocates.
///
/// Each epoch visits every sample once, in an order shuffled by a seeded [`Rng`] (the
/// same seed gives the same batches on every platform). [`Batcher::next_batch`] returns
/// `false` once at the end of each epoch and reshuffles, so
/// `while b.next_batch(&mut x, &mut y) { … }` runs exactly one epoch each time it is
/// reached.
///
/// The last batch of an epoch holds the `N mod batch_size` samples left over when the
/// size does not divide `N` (PyTorch's `DataLoader` default, `drop_last=False`): no sample
/// is skipped. Call [`Batcher::drop_last`] to skip them instead, e.g. for batch norm,
/// whose statistics are poor on a tiny batch.
///
/// ```
/// use bp_runtime::{data::{Batcher, Dataset}, Tensor};
/// let data = Dataset::new(Tensor::<f32>::zeros(&[10, 3]), vec![0; 10]).unwrap();
/// let mut batches = Batcher::new(&data, 4, 7).unwrap();
/// let (mut x, mut y) = (Tensor::default(), Vec::new());
/// let mut sizes = Vec::new();
/// while batches.next_batch(&mut x, &mut y) {
///     sizes.push(x.shape()[0]);
/// }
/// assert_eq!(sizes, [4, 4, 2]);
/// ```
#[derive(Debug)]
pub struct Batcher<'a, T: Float> {
    data: &'a Dataset<T>,
    order: Vec<usize>,
    pos: usize,
    batch_size: usize,
    rng: Option<Rng>,
    drop_last: bool,
}

impl<'a, T: Float> Batcher<'a, T> {
    /// Shuffled batches of `batch_size` samples, the order drawn from `Rng::new(seed)`.
    ///
    /// An error if `batch_size` is 0.
    pub fn new(data: &'a Dataset<T>, batch_size: usize, seed: u64) -> Result<Self, Error> {
        let mut b = Batcher::sequential(data, batch_size)?;
        let mut rng = Rng::new(seed);
        rng.shuffle(&mut b.order);
        b.rng = Some(rng);
        Ok(b)
    }

    /// Batches in the order of the data set, for evaluation.
    ///
    /// An error if `batch_size` is 0.
    pub fn sequential(data: &'a Dataset<T>, batch_size: usize) -> Result<Self, Error> {
        if batch_size == 0 {
            return Err(Error::invalid("Batcher: the batch size must be at least 1"));
        }
        Ok(Batcher {
            data,
            order: (0..data.len()).collect(),
            pos: 0,
            batch_size,
            rng: None,
            drop_last: false,
        })
    }

    /// Whether to skip the last, smaller batch of each epoch (default: keep it).
    pub fn drop_last(mut self, drop: bool) -> Self {
        self.drop_last = drop;
        self
    }

    /// The number of batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.data.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The indices of the next batch, or `None` at the end of an epoch (after which the
    /// next call starts a new, reshuffled epoch).
    pub fn next_indices(&mut self) -> Option<&[usize]> {
        let n = self.order.len();
        let end = (self.pos + self.batch_size).min(n);
        let short = end - self.pos < self.batch_size;
        if self.pos >= n || (short && self.drop_last) {
            self.pos = 0;
            if let Some(rng) = &mut self.rng {
                rng.shuffle(&mut self.order);
            }
            return None;
        }
        let start = self.pos;
        self.pos = end;
        Some(&self.order[start..end])
    }

    /// Copies the next batch into `x` (`[b, …sample shape]`) and `y` (its `b` labels) and
    /// returns `true`, or returns `false` at the end of an epoch. Allocates only while
    /// `x` and `y` grow to the largest batch.
    pub fn next_batch(&mut self, x: &mut Tensor<T>, y: &mut Vec<usize>) -> bool {
        let data = self.data;
        let Some(indices) = self.next_indices() else {
            return false;
        };
        let sample_shape = data.sample_shape();
        let mut dims = [0usize; MAX_RANK];
        dims[0] = indices.len();
        dims[1..=sample_shape.len()].copy_from_slice(sample_shape);
        x.resize(&dims[..=sample_shape.len()]);
        let len = data.sample_len();
        let src = data.x.as_slice();
        y.clear();
        for (row, &i) in x.as_mut_slice().chunks_exact_mut(len.max(1)).zip(indices) {
            row.copy_from_slice(&src[i * len..(i + 1) * len]);
        }
        y.extend(indices.iter().map(|&i| data.y[i]));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Dataset<f64> {
        let x = Tensor::from_vec(&[n, 2], (0..2 * n).map(|v| v as f64).collect()).unwrap();
        Dataset::new(x, (0..n).collect()).unwrap()
    }

    #[test]
    fn every_sample_once_per_epoch_and_rows_match_labels() {
        let d = data(10);
        let mut b = Batcher::new(&d, 3, 1).unwrap();
        let (mut x, mut y) = (Tensor::default(), Vec::new());
        let mut epochs = Vec::new();
        for _ in 0..2 {
            let mut seen = Vec::new();
            while b.next_batch(&mut x, &mut y) {
                for (row, &label) in x.chunks_exact(2).zip(&y) {
                    assert_eq!(row, [2.0 * label as f64, 2.0 * label as f64 + 1.0]);
                }
                seen.extend_from_slice(&y);
            }
            epochs.push(seen.clone());
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1], "each epoch is reshuffled");
        assert_ne!(epochs[0], (0..10).collect::<Vec<_>>(), "shuffled at all");
    }

    #[test]
    fn drop_last_and_sequential() {
        let d = data(10);
        let mut b = Batcher::sequential(&d, 4).unwrap().drop_last(true);
        assert_eq!(b.batches_per_epoch(), 2);
        assert_eq!(b.next_indices(), Some(&[0, 1, 2, 3][..]));
        assert_eq!(b.next_indices(), Some(&[4, 5, 6, 7][..]));
        assert_eq!(b.next_indices(), None);
        assert_eq!(b.next_indices(), Some(&[0, 1, 2, 3][..]));
        assert!(Batcher::sequential(&d, 0).is_err());
    }

    #[test]
    fn no_allocation_once_warm() {
        let d = data(10);
        let mut b = Batcher::new(&d, 4, 0).unwrap();
        let (mut x, mut y) = (Tensor::default(), Vec::new());
        while b.next_batch(&mut x, &mut y) {}
        let (px, py) = (x.as_ptr(), y.as_ptr());
        while b.next_batch(&mut x, &mut y) {
            assert_eq!((x.as_ptr(), y.as_ptr()), (px, py));
        }
    }
}
