//! `set_check_finite(true)`: every pass stops at its first NaN or infinity and names the
//! tensor (in the user's terms), the pass and the element; off (the default), values
//! propagate as in PyTorch.

use bp::{Error, Tensor};

bp::network! {
    #[dtype(f64)]
    struct Logs {
        input x: [3];
        param w: [3] = zeros;
        let h = ln(x);
        let r = sqrt(w + x * 0.0);
        let y = linear(h + r, 2);
        output y;
    }
}

fn x(values: [f64; 6]) -> Tensor<f64> {
    Tensor::from_vec(&[2, 3], values.to_vec()).unwrap()
}

fn non_finite(e: Error) -> (String, String, Vec<usize>, f64) {
    match e {
        Error::NonFinite {
            pass,
            what,
            index,
            value,
        } => (pass, what, index, value),
        e => panic!("not a NonFinite error: {e}"),
    }
}

#[test]
fn off_by_default_values_propagate() {
    let mut net = Logs::new(0);
    assert!(!net.check_finite());
    let y = net.forward(&x([1.0, 2.0, 3.0, 4.0, 5.0, -6.0])).unwrap();
    assert!(y.as_slice()[2..].iter().all(|v| v.is_nan()));
}

#[test]
fn forward_names_the_first_non_finite_node_and_element() {
    let mut net = Logs::new(0);
    net.set_check_finite(true);
    // ln(−6) is NaN at sample 1, element 2; everything after it is NaN too.
    let e = net
        .forward(&x([1.0, 2.0, 3.0, 4.0, 5.0, -6.0]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "forward: `h` is NaN at [1, 2], the first non-finite value of the pass"
    );
    let (pass, what, index, value) = non_finite(e);
    assert_eq!(
        (pass.as_str(), what.as_str(), index, value.is_nan()),
        ("forward", "`h`", vec![1, 2], true)
    );
    // backward refuses to run on the failed forward.
    let d = Tensor::from_vec(&[2, 2], vec![1.0; 4]).unwrap();
    assert!(net
        .backward(&d)
        .unwrap_err()
        .to_string()
        .contains("before forward"));
    // An infinite input is found at the input itself.
    let e = net
        .forward(&x([1.0, f64::INFINITY, 3.0, 4.0, 5.0, 6.0]))
        .unwrap_err();
    assert_eq!(non_finite(e).1, "`x`");
    // predict checks the same way.
    let e = net.predict(&x([1.0, 2.0, 0.0, 4.0, 5.0, 6.0])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "predict: `h` is -inf at [0, 2], the first non-finite value of the pass"
    );
    net.set_check_finite(false);
    assert!(net.predict(&x([1.0, 2.0, 0.0, 4.0, 5.0, 6.0])).is_ok());
}

#[test]
fn backward_names_the_first_non_finite_residual_or_gradient() {
    let mut net = Logs::new(0);
    net.set_check_finite(true);
    // Forward is finite: sqrt(w) = 0 with w = 0. Its derivative 0.5 / sqrt(0) is not.
    net.forward(&x([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    let d = Tensor::from_vec(&[2, 2], vec![1.0; 4]).unwrap();
    let e = net.backward(&d).unwrap_err();
    let (pass, what, index, value) = non_finite(e);
    assert_eq!(pass, "backward");
    assert_eq!(what, "the gradient of `w`");
    assert_eq!(index, vec![0]);
    assert!(value.is_infinite() || value.is_nan());
    // With the check off the same backward succeeds and leaves the infinity in place.
    net.set_check_finite(false);
    net.forward(&x([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    net.backward(&d).unwrap();
    let g = bp::Network::grad(&net, "w").unwrap();
    assert!(g.as_slice().iter().any(|v| !v.is_finite()));
}
