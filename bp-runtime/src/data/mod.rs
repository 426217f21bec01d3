//! Data sets: IDX (MNIST) and CSV loading, gzip-compressed or plain, and shuffled
//! mini-batches.
//!
//! ```no_run
//! use bp_runtime::data::{self, Batcher};
//! use bp_runtime::Tensor;
//!
//! # fn main() -> Result<(), bp_runtime::Error> {
//! let all = data::mnist::<f32>(
//!     "data/mnist-10k-images.idx3-ubyte.gz",
//!     "data/mnist-10k-labels.idx1-ubyte.gz",
//! )?;
//! let (train, test) = all.split_at(8_000)?;
//! let mut batches = Batcher::new(&train, 64, 0)?;
//! let (mut x, mut y) = (Tensor::default(), Vec::new());
//! while batches.next_batch(&mut x, &mut y) {
//!     // x is [64, 784] (the last batch of an epoch may be smaller), y the labels.
//! }
//! # let _ = test;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod batches;
mod csv;
mod idx;

pub use batches::Batcher;
pub use csv::{read_csv, CsvOptions};
pub use idx::{read_idx_images, read_idx_labels, IdxImages};

use crate::{Error, Float, Tensor, MAX_RANK};
use std::io::Read;
use std::path::Path;

/// A labelled data set for classification: samples stacked along the first dimension of
/// `x` (`[N, …features]`) and one class index per sample in `y`.
#[derive(Clone, Debug)]
pub struct Dataset<T: Float> {
    /// The samples, `[N, …features]`.
    pub x: Tensor<T>,
    /// The class of each sample.
    pub y: Vec<usize>,
}

impl<T: Float> Dataset<T> {
    /// A data set from samples and labels; an error unless `x` has a first dimension equal
    /// to the number of labels.
    pub fn new(x: Tensor<T>, y: Vec<usize>) -> Result<Dataset<T>, Error> {
        if x.shape().first() != Some(&y.len()) {
            let mut expected = x.shape().to_vec();
            match expected.first_mut() {
                Some(n) => *n = y.len(),
                None => expected.push(y.len()),
            }
            return Err(Error::shape(
                format!("samples of a data set with {} labels", y.len()),
                &expected,
                x.shape(),
            ));
        }
        Ok(Dataset { x, y })
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The shape of one sample (`x`'s shape without the first dimension).
    pub fn sample_shape(&self) -> &[usize] {
        &self.x.shape()[1..]
    }

    /// The number of elements of one sample.
    pub fn sample_len(&self) -> usize {
        self.sample_shape().iter().product()
    }

    /// One more than the largest label (0 for an empty set).
    pub fn num_classes(&self) -> usize {
        self.y.iter().max().map_or(0, |m| m + 1)
    }

    /// Splits into the first `n` samples and the rest (MNIST-10k: `split_at(8_000)`).
    pub fn split_at(&self, n: usize) -> Result<(Dataset<T>, Dataset<T>), Error> {
        if n > self.len() {
            return Err(Error::invalid(format!(
                "split_at({n}) on a data set of {} samples",
                self.len()
            )));
        }
        let cut = n * self.sample_len();
        let (xa, xb) = self.x.as_slice().split_at(cut);
        let mut shape = self.x.shape().to_vec();
        shape[0] = n;
        let a = Tensor::from_slice(&shape, xa)?;
        shape[0] = self.len() - n;
        let b = Tensor::from_slice(&shape, xb)?;
        Ok((
            Dataset::new(a, self.y[..n].to_vec())?,
            Dataset::new(b, self.y[n..].to_vec())?,
        ))
    }

    /// Multiplies every feature by `factor` (e.g. `1/255` for pixels).
    pub fn scale(&mut self, factor: T) {
        for v in self.x.as_mut_slice() {
            *v *= factor;
        }
    }

    /// Gives each sample a new shape with the same number of elements, e.g.
    /// `[784] → [1, 28, 28]` for a convolutional network.
    pub fn reshape_samples(&mut self, sample_shape: &[usize]) -> Result<(), Error> {
        let mut shape = Vec::with_capacity(sample_shape.len() + 1);
        shape.push(self.len());
        shape.extend_from_slice(sample_shape);
        let elements: usize = sample_shape.iter().product();
        if elements != self.sample_len() || shape.len() > MAX_RANK {
            return Err(Error::invalid(format!(
                "cannot reshape samples of shape {:?} to {sample_shape:?}",
                self.sample_shape()
            )));
        }
        self.x = std::mem::take(&mut self.x).reshape(&shape)?;
        Ok(())
    }
}

/// MNIST from an IDX image file and an IDX label file (gzip or plain): `x` is
/// `[N, 784]` with pixels scaled to [0, 1], `y` the digits. Use
/// [`Dataset::reshape_samples`]`(&[1, 28, 28])` for a convolutional network.
///
/// Errors name the file: unreadable, bad magic, truncated, images and labels of different
/// counts, a label above 9.
pub fn mnist<T: Float>(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
) -> Result<Dataset<T>, Error> {
    let (images, labels) = (images.as_ref(), labels.as_ref());
    let img = read_idx_images(images)?;
    let lab = read_idx_labels(labels)?;
    if img.count != lab.len() {
        return Err(Error::format(
            format!("{} and {}", images.display(), labels.display()),
            format!(
                "count mismatch: {} images but {} labels",
                img.count,
                lab.len()
            ),
        ));
    }
    if let Some(i) = lab.iter().position(|&l| l > 9) {
        return Err(Error::format(
            labels.display().to_string(),
            format!("label {} at index {i} is not a digit 0..9", lab[i]),
        ));
    }
    let scale = T::ONE / T::from_f64(255.0);
    let pixels = img
        .pixels
        .iter()
        .map(|&p| T::from_usize(p as usize) * scale);
    let x = Tensor::from_vec(&[img.count, img.rows * img.cols], pixels.collect())?;
    Dataset::new(x, lab.into_iter().map(usize::from).collect())
}

/// scikit-learn's 8x8 digits from CSV (gzip or plain): 64 pixel columns 0..16 then the
/// label, no header. `x` is `[N, 64]` scaled to [0, 1] (divided by 16).
///
/// Errors as [`read_csv`], and rows of another width or a label above 9, naming the file.
pub fn digits<T: Float>(path: impl AsRef<Path>) -> Result<Dataset<T>, Error> {
    let path = path.as_ref();
    let opts = CsvOptions {
        label_column: None,
        has_header: false,
        delimiter: b',',
    };
    let mut ds = read_csv::<T>(path, &opts)?;
    if ds.sample_len() != 64 {
        return Err(Error::format(
            path.display().to_string(),
            format!(
                "digits rows have 64 pixels and a label, but these rows have {} features",
                ds.sample_len()
            ),
        ));
    }
    if let Some(i) = ds.y.iter().position(|&l| l > 9) {
        return Err(Error::format(
            path.display().to_string(),
            format!("label {} of sample {i} is not a digit 0..9", ds.y[i]),
        ));
    }
    ds.scale(T::ONE / T::from_f64(16.0));
    Ok(ds)
}

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a whole file.
fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a whole file, decompressing it when it starts with the gzip magic `1f 8b`.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, Error> {
    let raw = read_file(path)?;
    if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::format(
                    path.display().to_string(),
                    format!("not a valid gzip stream: {e}"),
                )
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
