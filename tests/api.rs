//! The generated API: errors that name what is wrong, determinism, predict, gradient
//! accumulation, names, readable values and residuals, save and load.

mod common;
use bp::{Network, Tensor};
use common::{random, random_f32};

bp::network! {
    /// Two inputs, two outputs, a free param.
    pub struct Two {
        input x: [3];
        input z: [2] grad;
        param scale: [4] = ones;
        let fc1 = linear(x, 4);
        let h = relu(fc1) * scale;
        let head = linear(concat(h, z), 2);
        let aux = sum(h);
        output head, aux;
    }
}

fn inputs(b: usize) -> (Tensor, Tensor) {
    (
        random_f32(&[b, 3], -1.0, 1.0, 1),
        random_f32(&[b, 2], -1.0, 1.0, 2),
    )
}

#[test]
fn wrong_input_shape_is_an_error_naming_input_and_shapes() {
    let mut net = Two::new(0);
    let (x, _) = inputs(5);
    let bad = Tensor::zeros(&[5, 3]);
    let e = net.forward(&x, &bad).unwrap_err().to_string();
    assert!(
        e.contains("input `z`") && e.contains("[5, 3]") && e.contains("[5, 2]"),
        "{e}"
    );
    let e = net
        .forward(&Tensor::zeros(&[3]), &bad)
        .unwrap_err()
        .to_string();
    assert!(e.contains("input `x`") && e.contains("[3]"), "{e}");
    let (x2, z4) = (inputs(2).0, inputs(4).1);
    let e = net.forward(&x2, &z4).unwrap_err().to_string();
    assert!(e.contains("batch of 2") && e.contains("batch of 4"), "{e}");
}

#[test]
fn backward_errors() {
    let mut net = Two::new(0);
    let (x, z) = inputs(4);
    let e = net
        .backward(&Tensor::zeros(&[4, 2]), &Tensor::zeros(&[4]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("before forward"), "{e}");
    net.forward(&x, &z).unwrap();
    let e = net
        .backward(&Tensor::zeros(&[4, 3]), &Tensor::zeros(&[4]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("output `head`") && e.contains("[4, 3]") && e.contains("[4, 2]"),
        "{e}"
    );
    let e = net.forward_dyn(&[&x]).unwrap_err().to_string();
    assert!(e.contains("2 tensor(s) but 1"), "{e}");
}

#[test]
fn new_is_deterministic_per_seed_and_pytorch_shaped() {
    let (a, b, c) = (Two::new(1), Two::new(1), Two::new(2));
    assert_eq!(
        a.param_names(),
        [
            "scale",
            "fc1.weight",
            "fc1.bias",
            "head.weight",
            "head.bias"
        ]
    );
    assert_eq!(a.param("fc1.weight").unwrap().shape(), &[4, 3]);
    assert_eq!(a.param("head.weight").unwrap().shape(), &[2, 6]);
    assert_eq!(a.param("fc1.weight"), b.param("fc1.weight"));
    assert_ne!(a.param("fc1.weight"), c.param("fc1.weight"));
    // U(−1/√3, 1/√3), as nn.Linear initializes.
    let bound = 1.0 / 3f32.sqrt();
    assert!(a
        .param("fc1.weight")
        .unwrap()
        .iter()
        .all(|v| v.abs() <= bound));
    assert!(a.param("scale").unwrap().iter().all(|&v| v == 1.0));
    assert!(a.param("nope").is_none());
}

#[test]
fn predict_matches_forward_and_needs_only_shared_access() {
    let mut net = Two::new(3);
    let (x, z) = inputs(6);
    let (head, aux) = net.forward(&x, &z).unwrap();
    let (head, aux) = (head.clone(), aux.clone());
    let shared = std::sync::Arc::new(net.clone());
    let handle = std::thread::spawn(move || shared.predict(&x, &z).unwrap());
    let (ph, pa) = handle.join().unwrap();
    assert_eq!(ph, head);
    assert_eq!(pa, aux);
    let mut ws = net.workspace();
    let (x, z) = inputs(6);
    let (h2, _) = net.predict_into(&mut ws, &x, &z).unwrap();
    assert_eq!(h2, &head);
}

#[test]
fn backward_overwrites_and_accumulate_adds() {
    let mut net = Two::new(4);
    let (x, z) = inputs(5);
    net.forward(&x, &z).unwrap();
    let dh = random_f32(&[5, 2], -1.0, 1.0, 7);
    let da = random_f32(&[5], -1.0, 1.0, 8);
    net.backward(&dh, &da).unwrap();
    let once = net.grad("fc1.weight").unwrap().clone();
    let once_scale = net.grad("scale").unwrap().clone();
    net.backward(&dh, &da).unwrap();
    assert_eq!(
        net.grad("fc1.weight").unwrap(),
        &once,
        "backward overwrites"
    );
    net.backward_accumulate(&dh, &da).unwrap();
    for (g, o) in net.grad("fc1.weight").unwrap().iter().zip(once.iter()) {
        assert!((g - 2.0 * o).abs() <= 1e-6 * o.abs().max(1.0));
    }
    for (g, o) in net.grad("scale").unwrap().iter().zip(once_scale.iter()) {
        assert!((g - 2.0 * o).abs() <= 1e-6 * o.abs().max(1.0));
    }
}

#[test]
fn values_and_residuals_are_readable_by_name() {
    let mut net = Two::new(5);
    let (x, z) = inputs(3);
    assert!(net.value("h").is_none(), "no value before forward");
    net.forward(&x, &z).unwrap();
    assert_eq!(net.value("h").unwrap().shape(), &[3, 4]);
    assert_eq!(net.value("x").unwrap(), &x);
    assert!(net.residual("h").is_none(), "no residual before backward");
    net.backward(&Tensor::full(&[3, 2], 1.0), &Tensor::zeros(&[3]))
        .unwrap();
    assert_eq!(net.residual("h").unwrap().shape(), &[3, 4]);
    assert_eq!(net.residual("head").unwrap(), &Tensor::full(&[3, 2], 1.0));
    assert_eq!(net.input_grad("z").unwrap().shape(), &[3, 2]);
    assert!(net.input_grad("x").is_none(), "x has no `grad`");
    // d_z = d_head · head.weight[:, 4..6]
    let w = net.param("head.weight").unwrap();
    let dz = net.input_grad("z").unwrap();
    for b in 0..3 {
        for j in 0..2 {
            let want = w[4 + j] + w[6 + 4 + j];
            assert!((dz[b * 2 + j] - want).abs() < 1e-6);
        }
    }
}

#[test]
fn save_and_load_round_trip_and_refuse_other_networks() {
    let dir = std::env::temp_dir().join(format!("bp-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("two.safetensors");
    let a = Two::new(6);
    a.save(&path).unwrap();
    let mut b = Two::new(7);
    b.load(&path).unwrap();
    for name in a.param_names() {
        assert_eq!(a.param(name), b.param(name), "{name}");
    }
    bp::network! {
        /// Same names and shapes as `Two`, another structure (tanh instead of relu).
        pub struct TwoTanh {
            input x: [3];
            input z: [2] grad;
            param scale: [4] = ones;
            let fc1 = linear(x, 4);
            let h = tanh(fc1) * scale;
            let head = linear(concat(h, z), 2);
            let aux = sum(h);
            output head, aux;
        }
    }
    let mut other = TwoTanh::new(0);
    let e = other.load(&path).unwrap_err().to_string();
    assert!(
        e.contains("different network") || e.contains("structure"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

bp::network! {
    #[dtype(f64)]
    struct Deep {
        input x: [4];
        let a = linear(x, 8);
        let b = linear(relu(a), 8);
        let c = linear(tanh(b) + a, 3);
        output c;
    }
}

#[test]
fn f64_networks_and_the_dyn_path() {
    let mut net = Deep::new(0);
    let x = random(&[2, 4], -1.0, 1.0, 3);
    net.forward_dyn(&[&x]).unwrap();
    assert_eq!(net.output(0).unwrap().shape(), &[2, 3]);
    assert!(net.output(1).is_none());
    assert_eq!(<Deep as Network>::INPUTS, &[("x", &[4usize][..])]);
    assert_eq!(<Deep as Network>::OUTPUTS, &[("c", &[3usize][..])]);
    net.backward_dyn(&[&Tensor::full(&[2, 3], 1.0)]).unwrap();
    let mut seen = Vec::new();
    net.visit_params(&mut |name, p, g| {
        assert_eq!(p.shape(), g.shape());
        seen.push(name);
    });
    assert_eq!(seen, net.param_names());
}

bp::network! {
    struct Loaded {
        input x: [3];
        let fc = linear(x, 2);
        output fc;
    }
}

#[test]
fn forward_loaded_runs_on_the_input_buffer_without_a_copy() {
    let x = bp::Tensor::from_vec(&[2, 3], vec![0.5f32, -1.0, 2.0, 0.0, 1.5, -0.5]).unwrap();
    let mut a = Loaded::new(3);
    let want = a.forward(&x).unwrap().clone();
    let mut b = Loaded::new(3);
    b.inputs_mut().0.assign(&x);
    assert_eq!(b.forward_loaded().unwrap(), &want);
    // Through the trait, as generic code (the bench) uses it.
    let mut c = Loaded::new(3);
    bp::Network::input_mut(&mut c, 0).unwrap().assign(&x);
    assert!(bp::Network::input_mut(&mut c, 1).is_none());
    bp::Network::forward_loaded_dyn(&mut c).unwrap();
    assert_eq!(bp::Network::output(&c, 0).unwrap(), &want);
    // A badly shaped buffer is refused with the input's name, not run.
    let mut d = Loaded::new(3);
    *d.inputs_mut().0 = bp::Tensor::from_vec(&[2, 4], vec![0.0f32; 8]).unwrap();
    let e = d.forward_loaded().unwrap_err().to_string();
    assert!(e.contains('x'), "{e}");
}

#[test]
fn a_parameter_resized_through_param_mut_is_refused_before_use() {
    let mut net = Two::new(0);
    let (x, z) = inputs(3);
    net.param_mut("fc1.weight").unwrap().resize(&[3, 4]); // transposed: same length
    let expect = |e: bp::Error| {
        let e = e.to_string();
        assert!(
            e.contains("parameter `fc1.weight` has shape") && e.contains("declares [4, 3]"),
            "{e}"
        );
    };
    let e = net.forward(&x, &z).unwrap_err().to_string();
    assert!(e.contains("[3, 4]") && e.contains("`param_mut`"), "{e}");
    expect(net.predict(&x, &z).unwrap_err());
    let path = std::env::temp_dir().join(format!("bp-api-resized-{}.st", std::process::id()));
    expect(net.save(&path).unwrap_err());
    assert!(!path.exists(), "nothing is written");
    net.param_mut("fc1.weight").unwrap().resize(&[4, 3]);
    net.forward(&x, &z).unwrap();
    net.param_mut("fc1.weight").unwrap().resize(&[2]); // too short
    let (d_head, d_aux) = (Tensor::zeros(&[3, 2]), Tensor::zeros(&[3]));
    expect(net.backward(&d_head, &d_aux).unwrap_err());
}

#[test]
fn input_errors_show_the_batch_as_b() {
    let net = Two::new(0);
    let (_, z) = inputs(1);
    // One sample without its batch dimension: no invented batch size.
    let e = net
        .predict(&Tensor::zeros(&[3]), &z)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("input `x`") && e.contains("[B, 3]") && e.contains("[3]"),
        "{e}"
    );
    let e = net
        .predict(&Tensor::zeros(&[0, 3]), &Tensor::zeros(&[0, 2]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("input `x`") && e.contains("empty batch"), "{e}");
}

#[test]
fn grad_is_none_before_any_backward() {
    let mut net = Two::new(0);
    assert!(net.grad("fc1.weight").is_none());
    let (x, z) = inputs(2);
    net.forward(&x, &z).unwrap();
    assert!(net.grad("fc1.weight").is_none());
    net.backward(&Tensor::zeros(&[2, 2]), &Tensor::zeros(&[2]))
        .unwrap();
    assert!(net.grad("fc1.weight").is_some());
}

bp::network! {
    struct Bn {
        input x: [3];
        input img: [2, 1, 1];
        let a = batch_norm(x);
        let b = batch_norm(img);
        let y = sum(a) + sum(b);
        output y;
    }
}

bp::network! {
    struct BnImage {
        input img: [2, 2, 1];
        let b = batch_norm(img);
        output b;
    }
}

/// PyTorch's rule and message: batch norm in training needs more than one value per
/// channel; in evaluation a single sample is fine.
#[test]
fn batch_norm_refuses_one_value_per_channel_in_training() {
    let mut net = Bn::new(0);
    let (x, img) = (
        random_f32(&[1, 3], -1.0, 1.0, 1),
        random_f32(&[1, 2, 1, 1], -1.0, 1.0, 2),
    );
    let e = net.forward(&x, &img).unwrap_err().to_string();
    assert_eq!(
        e,
        "batch norm `a`: Expected more than 1 value per channel when training, got input size [1, 3]"
    );
    // Nothing changed: the running statistics are untouched.
    assert_eq!(
        net.buffer("a.num_batches_tracked").unwrap().as_slice()[0],
        0.0
    );
    net.set_training(false);
    net.forward(&x, &img).unwrap();
    net.set_training(true);
    let (x2, img2) = (
        random_f32(&[2, 3], -1.0, 1.0, 3),
        random_f32(&[2, 2, 1, 1], -1.0, 1.0, 4),
    );
    net.forward(&x2, &img2).unwrap();
    // Images count H·W values per channel and sample: one sample of 2×1 is enough.
    let mut image = BnImage::new(0);
    image
        .forward(&random_f32(&[1, 2, 2, 1], -1.0, 1.0, 5))
        .unwrap();
}
