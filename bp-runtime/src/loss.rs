//! Losses, each returning the mean loss and writing its gradient with respect to its
//! first argument into a buffer the caller owns, plus classification helpers.
//!
//! The gradient buffer is resized to the prediction's shape with [`Tensor::resize`], so a
//! buffer reused across batches allocates only while it grows. The gradient is that of
//! the *mean* loss, ready to hand to `backward`. Names and formulas are PyTorch's:
//! `mse` is `F.mse_loss`, `softmax_cross_entropy` is `F.cross_entropy` on class
//! indices, `binary_cross_entropy_with_logits` is `F.binary_cross_entropy_with_logits`,
//! all with `reduction='mean'`.
//!
//! An empty batch is an error here (PyTorch returns NaN for the mean over nothing).
//!
//! ```
//! use bp_runtime::{loss, Tensor};
//! let logits = Tensor::from_vec(&[2, 3], vec![2.0f32, 0.5, -1.0, 0.0, 0.0, 3.0]).unwrap();
//! let mut grad = Tensor::default();
//! let l = loss::softmax_cross_entropy(&logits, &[0, 2], &mut grad).unwrap();
//! assert!(l > 0.0 && l < 0.5);
//! assert_eq!(grad.shape(), &[2, 3]);
//! assert_eq!(loss::accuracy(&logits, &[0, 1]).unwrap(), 0.5);
//! ```
#![forbid(unsafe_code)]

use crate::{Error, Float, Tensor};

fn empty(what: &str) -> Error {
    Error::invalid(format!(
        "{what}: the batch is empty, so the mean loss is undefined"
    ))
}

/// Checks that `logits` is `[B, C]` and returns `(B, C)`.
fn rows<T: Float>(what: &str, logits: &Tensor<T>) -> Result<(usize, usize), Error> {
    match *logits.shape() {
        [b, c] => Ok((b, c)),
        _ => Err(Error::invalid(format!(
            "{what}: logits must have rank 2 [batch, classes] but have shape {:?}",
            logits.shape()
        ))),
    }
}

/// Checks one label per row, each below the number of classes.
fn check_labels(what: &str, batch: usize, classes: usize, labels: &[usize]) -> Result<(), Error> {
    if labels.len() != batch {
        return Err(Error::invalid(format!(
            "{what}: the logits hold a batch of {batch} rows but {} labels were given",
            labels.len()
        )));
    }
    if let Some((i, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(Error::invalid(format!(
            "{what}: label {label} at index {i} is out of range for {classes} classes \
             (labels are 0..{classes})"
        )));
    }
    Ok(())
}

/// Mean squared error over all elements: `J = mean((pred − target)²)`, gradient
/// `2·(pred − target)/N` written into `grad` (resized to `pred`'s shape).
///
/// An error names both shapes when they differ.
///
/// ```
/// use bp_runtime::{loss::mse, Tensor};
/// let p = Tensor::from_vec(&[2], vec![1.0f64, 3.0]).unwrap();
/// let t = Tensor::from_vec(&[2], vec![0.0f64, 1.0]).unwrap();
/// let mut g = Tensor::default();
/// assert_eq!(mse(&p, &t, &mut g).unwrap(), 2.5); // (1 + 4) / 2
/// assert_eq!(g.as_slice(), &[1.0, 2.0]);          // 2·(p − t)/2
/// ```
pub fn mse<T: Float>(
    pred: &Tensor<T>,
    target: &Tensor<T>,
    grad: &mut Tensor<T>,
) -> Result<T, Error> {
    if pred.shape() != target.shape() {
        return Err(Error::shape(
            "mse: the target (it must have the prediction's shape)",
            pred.shape(),
            target.shape(),
        ));
    }
    let n = pred.len();
    if n == 0 {
        return Err(empty("mse"));
    }
    grad.resize(pred.shape());
    let scale = T::from_f64(2.0 / n as f64);
    let mut total = 0.0f64;
    for ((g, &p), &t) in grad.iter_mut().zip(pred.iter()).zip(target.iter()) {
        let d = p - t;
        total += (d * d).to_f64();
        *g = scale * d;
    }
    Ok(T::from_f64(total / n as f64))
}

/// Cross-entropy of softmax(logits) against class indices, averaged over the batch:
/// `J = mean_b(logsumexp(x_b) − x_b[label_b])`, gradient `(softmax(x) − onehot)/B`
/// written into `grad` (resized to `[B, C]`).
///
/// Numerically stable: the log-sum-exp subtracts each row's maximum, so logits of ±1000
/// give a finite loss and gradient.
///
/// Errors: logits not of rank 2; `labels.len() != B` (both named); a label ≥ C (its index
/// and value named); an empty batch.
pub fn softmax_cross_entropy<T: Float>(
    logits: &Tensor<T>,
    labels: &[usize],
    grad: &mut Tensor<T>,
) -> Result<T, Error> {
    const WHAT: &str = "softmax_cross_entropy";
    let (batch, classes) = rows(WHAT, logits)?;
    check_labels(WHAT, batch, classes, labels)?;
    if batch == 0 {
        return Err(empty(WHAT));
    }
    // classes > 0 here: every label is below it and there is at least one label.
    grad.resize(&[batch, classes]);
    let inv_b = T::ONE / T::from_usize(batch);
    let mut total = 0.0f64;
    let rows = logits
        .chunks_exact(classes)
        .zip(grad.chunks_exact_mut(classes));
    for ((row, g), &label) in rows.zip(labels) {
        let m = row.iter().fold(row[0], |m, &x| m.max(x));
        let mut sum = T::ZERO;
        for (gi, &x) in g.iter_mut().zip(row) {
            let e = (x - m).exp();
            *gi = e;
            sum += e;
        }
        let scale = inv_b / sum;
        for gi in g.iter_mut() {
            *gi *= scale;
        }
        g[label] -= inv_b;
        total += ((m - row[label]) + sum.ln()).to_f64();
    }
    Ok(T::from_f64(total / batch as f64))
}

/// The logistic sigmoid `1/(1 + e^{−x})`, computed without overflow for any `x`.
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1], averaged over all
/// elements: per element `max(x, 0) − x·t + ln(1 + e^{−|x|})` (the stable form, computed
/// in f64 with `ln_1p`), gradient `(σ(x) − t)/N` written into `grad` (resized to the
/// logits' shape).
///
/// An error names both shapes when `targets` does not have the logits' shape.
pub fn binary_cross_entropy_with_logits<T: Float>(
    logits: &Tensor<T>,
    targets: &Tensor<T>,
    grad: &mut Tensor<T>,
) -> Result<T, Error> {
    const WHAT: &str = "binary_cross_entropy_with_logits";
    if logits.shape() != targets.shape() {
        return Err(Error::shape(
            format!("{WHAT}: the targets (they must have the logits' shape)"),
            logits.shape(),
            targets.shape(),
        ));
    }
    let n = logits.len();
    if n == 0 {
        return Err(empty(WHAT));
    }
    grad.resize(logits.shape());
    let inv_n = T::ONE / T::from_usize(n);
    let mut total = 0.0f64;
    for ((g, &x), &t) in grad.iter_mut().zip(logits.iter()).zip(targets.iter()) {
        let (xf, tf) = (x.to_f64(), t.to_f64());
        total += xf.max(0.0) - xf * tf + (-xf.abs()).exp().ln_1p();
        *g = (sigmoid(x) - t) * inv_n;
    }
    Ok(T::from_f64(total / n as f64))
}

/// The index of the largest value of `row`: the first maximum on ties and the first NaN
/// if there is one (as `torch.argmax`). `None` for an empty row.
pub fn argmax<T: Float>(row: &[T]) -> Option<usize> {
    // NaN is the one value not comparable with itself.
    let is_nan = |v: T| v.partial_cmp(&v).is_none();
    let mut best: Option<(usize, T)> = None;
    for (i, &v) in row.iter().enumerate() {
        match best {
            None => best = Some((i, v)),
            Some((_, b)) if is_nan(b) => break,
            Some((_, b)) if is_nan(v) || v > b => best = Some((i, v)),
            _ => {}
        }
    }
    best.map(|(i, _)| i)
}

/// The predicted class of each row of `[B, C]` logits (see [`argmax`]), written into
/// `out` (cleared first; no allocation once its capacity suffices).
///
/// Errors: logits not of rank 2, or no classes (`C == 0`) with a non-empty batch.
pub fn argmax_rows_into<T: Float>(logits: &Tensor<T>, out: &mut Vec<usize>) -> Result<(), Error> {
    let (batch, classes) = rows("argmax_rows", logits)?;
    out.clear();
    if batch == 0 {
        return Ok(());
    }
    if classes == 0 {
        return Err(Error::invalid(
            "argmax_rows: the logits have 0 classes, so no row has a maximum",
        ));
    }
    out.extend(logits.chunks_exact(classes).filter_map(argmax));
    Ok(())
}

/// The predicted class of each row of `[B, C]` logits (see [`argmax_rows_into`]).
///
/// ```
/// use bp_runtime::{loss::argmax_rows, Tensor};
/// let t = Tensor::from_vec(&[2, 3], vec![0.1f32, 0.7, 0.2, 5.0, 5.0, 1.0]).unwrap();
/// assert_eq!(argmax_rows(&t).unwrap(), vec![1, 0]);
/// ```
pub fn argmax_rows<T: Float>(logits: &Tensor<T>) -> Result<Vec<usize>, Error> {
    let mut out = Vec::new();
    argmax_rows_into(logits, &mut out)?;
    Ok(out)
}

/// The fraction of rows of `[B, C]` logits whose [`argmax`] equals the label, in [0, 1].
///
/// Errors as [`softmax_cross_entropy`]: rank not 2, `labels.len() != B`, a label ≥ C, an
/// empty batch.
pub fn accuracy<T: Float>(logits: &Tensor<T>, labels: &[usize]) -> Result<f64, Error> {
    const WHAT: &str = "accuracy";
    let (batch, classes) = rows(WHAT, logits)?;
    check_labels(WHAT, batch, classes, labels)?;
    if batch == 0 {
        return Err(Error::invalid(
            "accuracy: the batch is empty, so the accuracy is undefined",
        ));
    }
    let correct = logits
        .chunks_exact(classes)
        .zip(labels)
        .filter(|(row, &label)| argmax(row) == Some(label))
        .count();
    Ok(correct as f64 / batch as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t64(shape: &[usize], v: &[f64]) -> Tensor<f64> {
        Tensor::from_slice(shape, v).unwrap()
    }

    /// Checks `grad` against central differences of `f` around `x`.
    fn check_grad(x: &Tensor<f64>, grad: &Tensor<f64>, f: impl Fn(&Tensor<f64>) -> f64) {
        assert_eq!(grad.shape(), x.shape());
        let h = 1e-6;
        for i in 0..x.len() {
            let (mut a, mut b) = (x.clone(), x.clone());
            a.as_mut_slice()[i] += h;
            b.as_mut_slice()[i] -= h;
            let numeric = (f(&a) - f(&b)) / (2.0 * h);
            let analytic = grad.as_slice()[i];
            assert!(
                (numeric - analytic).abs() <= 1e-7 * (1.0 + numeric.abs()),
                "element {i}: numeric {numeric} vs analytic {analytic}"
            );
        }
    }

    #[test]
    fn mse_value_and_gradient() {
        let p = t64(&[2, 2], &[1.0, -2.0, 0.5, 3.0]);
        let t = t64(&[2, 2], &[0.0, 1.0, 0.5, 1.0]);
        let mut g = Tensor::default();
        assert_eq!(mse(&p, &t, &mut g).unwrap(), (1.0 + 9.0 + 0.0 + 4.0) / 4.0);
        assert_eq!(g.as_slice(), &[0.5, -1.5, 0.0, 1.0]);
        check_grad(&p, &g, |p| mse(p, &t, &mut Tensor::default()).unwrap());
    }

    #[test]
    fn cross_entropy_values() {
        let x = t64(&[2, 3], &[1.0, 2.0, 3.0, 0.5, -1.0, 2.0]);
        let mut g = Tensor::default();
        let l = softmax_cross_entropy(&x, &[2, 0], &mut g).unwrap();
        // Row 0: ln(e + e² + e³) − 3; row 1: −ln softmax(x)[0] with softmax 0.17529…
        let expected = (0.40760596444438013 - 0.1752903921400367f64.ln()) / 2.0;
        assert!((l - expected).abs() < 1e-14, "{l} vs {expected}");
        let row1 = [
            0.1752903921400367 - 1.0,
            0.039112573270687456,
            0.7855970345892759,
        ];
        for (a, b) in g.as_slice()[3..].iter().zip(row1) {
            assert!((a - b / 2.0).abs() < 1e-15);
        }
        check_grad(&x, &g, |x| {
            softmax_cross_entropy(x, &[2, 0], &mut Tensor::default()).unwrap()
        });
    }

    #[test]
    fn cross_entropy_is_stable_for_large_logits() {
        let x = t64(&[2, 3], &[1000.0, -1000.0, 0.0, -1000.0, -1000.0, 1000.0]);
        let mut g = Tensor::default();
        let l = softmax_cross_entropy(&x, &[1, 2], &mut g).unwrap();
        assert!((l - 1000.0).abs() < 1e-9, "{l}"); // (2000 + 0) / 2
        assert!(g.iter().all(|v| v.is_finite()));
        assert_eq!(g.as_slice(), &[0.5, -0.5, 0.0, 0.0, 0.0, 0.0]);
        let x32 = x.cast::<f32>();
        let mut g32 = Tensor::default();
        let l32 = softmax_cross_entropy(&x32, &[1, 2], &mut g32).unwrap();
        assert_eq!(l32, 1000.0);
        assert!(g32.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn bce_values_gradient_and_stability() {
        let x = t64(&[2, 2], &[0.0, 2.0, -1.5, 0.3]);
        let t = t64(&[2, 2], &[1.0, 0.0, 0.25, 1.0]);
        let mut g = Tensor::default();
        let l = binary_cross_entropy_with_logits(&x, &t, &mut g).unwrap();
        let naive: f64 = x
            .iter()
            .zip(t.iter())
            .map(|(&x, &t)| {
                let s = 1.0 / (1.0 + (-x).exp());
                -(t * s.ln() + (1.0 - t) * (1.0 - s).ln())
            })
            .sum::<f64>()
            / 4.0;
        assert!((l - naive).abs() < 1e-14, "{l} vs {naive}");
        check_grad(&x, &g, |x| {
            binary_cross_entropy_with_logits(x, &t, &mut Tensor::default()).unwrap()
        });
        let one = t64(&[1], &[2.0]);
        let zero = t64(&[1], &[0.0]);
        let l = binary_cross_entropy_with_logits(&one, &zero, &mut g).unwrap();
        assert!((l - 2.1269280110429727).abs() < 1e-15);
        let big = Tensor::from_slice(&[2], &[1000.0f32, -1000.0]).unwrap();
        let tz = Tensor::from_slice(&[2], &[0.0f32, 0.0]).unwrap();
        let mut g32 = Tensor::default();
        let l = binary_cross_entropy_with_logits(&big, &tz, &mut g32).unwrap();
        assert_eq!(l, 500.0);
        assert_eq!(g32.as_slice(), &[0.5, 0.0]);
    }

    #[test]
    fn warm_buffers_do_not_reallocate() {
        let mut g = Tensor::<f32>::default();
        let big = Tensor::zeros(&[8, 5]);
        softmax_cross_entropy(&big, &[0; 8], &mut g).unwrap();
        let ptr = g.as_ptr();
        let small = Tensor::zeros(&[3, 5]);
        softmax_cross_entropy(&small, &[1; 3], &mut g).unwrap();
        assert_eq!(g.shape(), &[3, 5]);
        mse(&big, &big, &mut g).unwrap();
        binary_cross_entropy_with_logits(&small, &small, &mut g).unwrap();
        assert_eq!(g.as_ptr(), ptr);
    }

    fn message<T>(r: Result<T, Error>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn error_paths() {
        let mut g = Tensor::default();
        let a = Tensor::<f64>::zeros(&[2, 3]);
        let b = Tensor::<f64>::zeros(&[3, 2]);
        let m = message(mse(&a, &b, &mut g));
        assert!(
            m.contains("[2, 3]") && m.contains("[3, 2]") && m.contains("mse"),
            "{m}"
        );
        let e = Tensor::<f64>::zeros(&[0, 3]);
        assert!(message(mse(&e, &e, &mut g)).contains("empty"));
        let m = message(binary_cross_entropy_with_logits(&a, &b, &mut g));
        assert!(m.contains("[2, 3]") && m.contains("[3, 2]"), "{m}");
        assert!(message(binary_cross_entropy_with_logits(&e, &e, &mut g)).contains("empty"));

        let v = Tensor::<f64>::zeros(&[6]);
        let m = message(softmax_cross_entropy(&v, &[0], &mut g));
        assert!(m.contains("rank 2") && m.contains("[6]"), "{m}");
        let m = message(softmax_cross_entropy(&a, &[0, 1, 2], &mut g));
        assert!(m.contains("batch of 2") && m.contains("3 labels"), "{m}");
        let m = message(softmax_cross_entropy(&a, &[0, 7], &mut g));
        assert!(
            m.contains("label 7 at index 1") && m.contains("3 classes"),
            "{m}"
        );
        assert!(message(softmax_cross_entropy(&e, &[], &mut g)).contains("empty"));
        let no_classes = Tensor::<f64>::zeros(&[2, 0]);
        let m = message(softmax_cross_entropy(&no_classes, &[0, 0], &mut g));
        assert!(m.contains("0 classes"), "{m}");

        assert!(message(accuracy(&a, &[0])).contains("2 rows but 1 labels"));
        assert!(message(accuracy(&a, &[0, 3])).contains("label 3 at index 1"));
        assert!(message(accuracy(&e, &[])).contains("empty"));
        assert!(message(accuracy(&v, &[0])).contains("rank 2"));
        assert!(message(argmax_rows(&v)).contains("rank 2"));
        assert!(message(argmax_rows(&no_classes)).contains("0 classes"));
    }

    #[test]
    fn argmax_ties_nan_and_accuracy() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[1.0, f64::NAN, 5.0, f64::NAN]), Some(1));
        assert_eq!(argmax::<f32>(&[]), None);
        let x = t64(&[3, 2], &[0.0, 1.0, 2.0, -1.0, 0.5, 0.5]);
        assert_eq!(argmax_rows(&x).unwrap(), vec![1, 0, 0]);
        assert_eq!(accuracy(&x, &[1, 1, 0]).unwrap(), 2.0 / 3.0);
        assert!(argmax_rows(&Tensor::<f64>::zeros(&[0, 4]))
            .unwrap()
            .is_empty());
        assert_eq!(sigmoid(0.0f64), 0.5);
        assert!(sigmoid(-1000.0f32) == 0.0 && sigmoid(1000.0f32) == 1.0);
    }
}
