//! Safetensors save and load of a hand-written network: round trip, strictness (names
//! both ways, shapes, dtypes, structure hash), garbage files, all-or-nothing loading, and
//! files laid out as PyTorch's `safetensors.torch.save_file` writes them.
#![forbid(unsafe_code)]

use bp_runtime::{io, Error, Float, Network, ParamVisitor, Port, Tensor};
use std::path::PathBuf;

/// A linear layer and a batch-norm-like set of buffers; `H` is the structure hash and
/// `BIAS` the size of the bias (so a network with other shapes has the same names).
#[derive(Clone, Debug, PartialEq)]
struct Tiny<T: Float, const H: u64, const BIAS: usize> {
    weight: Tensor<T>,
    bias: Tensor<T>,
    d_weight: Tensor<T>,
    d_bias: Tensor<T>,
    running_mean: Tensor<T>,
    tracked: Tensor<T>,
    out: Tensor<T>,
}

type Net = Tiny<f32, 0xabcd, 2>;

impl<T: Float, const H: u64, const BIAS: usize> Tiny<T, H, BIAS> {
    fn new(start: f64) -> Self {
        let seq = |n: usize, k: f64| (0..n).map(|i| T::from_f64(start + k * i as f64)).collect();
        Tiny {
            weight: Tensor::from_vec(&[2, 3], seq(6, 0.5)).unwrap(),
            bias: Tensor::from_vec(&[BIAS], seq(BIAS, -1.0)).unwrap(),
            d_weight: Tensor::zeros(&[2, 3]),
            d_bias: Tensor::zeros(&[BIAS]),
            running_mean: Tensor::from_vec(&[2], seq(2, 0.25)).unwrap(),
            tracked: Tensor::from_vec(&[], vec![T::from_f64(start.abs().round() + 7.0)]).unwrap(),
            out: Tensor::zeros(&[1, 2]),
        }
    }
}

impl<T: Float, const H: u64, const BIAS: usize> Network for Tiny<T, H, BIAS> {
    type Scalar = T;
    const INPUTS: &'static [Port] = &[("x", &[3])];
    const OUTPUTS: &'static [Port] = &[("y", &[2])];
    const STRUCTURE_HASH: u64 = H;

    fn forward_dyn(&mut self, _: &[&Tensor<T>]) -> Result<(), Error> {
        Ok(())
    }
    fn output(&self, i: usize) -> Option<&Tensor<T>> {
        (i == 0).then_some(&self.out)
    }
    fn backward_dyn(&mut self, _: &[&Tensor<T>]) -> Result<(), Error> {
        Ok(())
    }
    fn backward_dyn_accumulate(&mut self, _: &[&Tensor<T>]) -> Result<(), Error> {
        Ok(())
    }
    fn param_names(&self) -> Vec<&'static str> {
        vec!["fc.weight", "fc.bias"]
    }
    fn param(&self, name: &str) -> Option<&Tensor<T>> {
        match name {
            "fc.weight" => Some(&self.weight),
            "fc.bias" => Some(&self.bias),
            _ => None,
        }
    }
    fn param_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        match name {
            "fc.weight" => Some(&mut self.weight),
            "fc.bias" => Some(&mut self.bias),
            _ => None,
        }
    }
    fn grad(&self, name: &str) -> Option<&Tensor<T>> {
        match name {
            "fc.weight" => Some(&self.d_weight),
            "fc.bias" => Some(&self.d_bias),
            _ => None,
        }
    }
    fn buffer_names(&self) -> Vec<&'static str> {
        vec!["bn.running_mean", "bn.num_batches_tracked"]
    }
    fn buffer(&self, name: &str) -> Option<&Tensor<T>> {
        match name {
            "bn.running_mean" => Some(&self.running_mean),
            "bn.num_batches_tracked" => Some(&self.tracked),
            _ => None,
        }
    }
    fn buffer_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        match name {
            "bn.running_mean" => Some(&mut self.running_mean),
            "bn.num_batches_tracked" => Some(&mut self.tracked),
            _ => None,
        }
    }
    fn residual(&self, _: &str) -> Option<&Tensor<T>> {
        None
    }
    fn input_grad(&self, _: &str) -> Option<&Tensor<T>> {
        None
    }
    fn visit_params(&mut self, f: &mut ParamVisitor<'_, T>) {
        f("fc.weight", &mut self.weight, &self.d_weight);
        f("fc.bias", &mut self.bias, &self.d_bias);
    }
    fn set_training(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        true
    }
}

/// A fresh path in the system's temporary directory, unique per test.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bp-io-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.safetensors"))
}

/// A safetensors file written by hand: tensors `(name, dtype, shape, bytes)` and an
/// optional metadata JSON object, laid out as the Python `safetensors` package does.
fn write_raw(path: &PathBuf, tensors: &[(&str, &str, &[usize], Vec<u8>)], meta: Option<&str>) {
    let mut header = String::from("{");
    if let Some(meta) = meta {
        header += &format!("\"__metadata__\":{meta},");
    }
    let (mut offset, mut body) = (0, Vec::new());
    for (i, (name, dtype, shape, bytes)) in tensors.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        header += &format!(
            "{sep}\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + bytes.len()
        );
        offset += bytes.len();
        body.extend_from_slice(bytes);
    }
    header += "}";
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&body);
    std::fs::write(path, file).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The tensors of `Net::new(start)` as PyTorch would write them (num_batches_tracked I64).
fn torch_like(start: f64) -> Vec<(&'static str, &'static str, &'static [usize], Vec<u8>)> {
    let net = Net::new(start);
    vec![
        (
            "bn.num_batches_tracked",
            "I64",
            &[],
            9i64.to_le_bytes().to_vec(),
        ),
        ("bn.running_mean", "F32", &[2], f32_bytes(&net.running_mean)),
        ("fc.bias", "F32", &[2], f32_bytes(&net.bias)),
        ("fc.weight", "F32", &[2, 3], f32_bytes(&net.weight)),
    ]
}

fn load_err<N: Network>(net: &mut N, path: &PathBuf) -> String {
    let before = format!("{:?}", net.param(net.param_names()[0]));
    let e = net.load(path).unwrap_err();
    assert!(
        matches!(e, Error::Format { .. } | Error::Io { .. }),
        "{e:?}"
    );
    assert_eq!(before, format!("{:?}", net.param(net.param_names()[0])));
    e.to_string()
}

#[test]
fn round_trip_f32_and_f64() {
    let path = temp("round_trip");
    let saved = Net::new(1.5);
    saved.save(&path).unwrap();
    let mut loaded = Net::new(-3.0);
    assert_ne!(loaded, saved);
    loaded.load(&path).unwrap();
    assert_eq!(loaded, saved);

    let saved = Tiny::<f64, 1, 2>::new(0.1);
    saved.save(&path).unwrap();
    let mut loaded = Tiny::<f64, 1, 2>::new(5.0);
    loaded.load(&path).unwrap();
    assert_eq!(loaded, saved, "f64 values come back bit for bit");
}

#[test]
fn saved_file_carries_structure_and_pytorch_counter() {
    let path = temp("header");
    Net::new(1.0).save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    assert!(
        header.contains("\"bp.structure\":\"000000000000abcd\""),
        "{header}"
    );
    assert!(header.contains("\"bp.format\":\"1\""), "{header}");
    assert!(
        header.contains("\"bn.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[]"),
        "{header}"
    );
    assert!(
        header.contains("\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,3]"),
        "{header}"
    );
    let plain = io::load_tensors::<f64>(&path);
    assert!(
        plain.unwrap_err().to_string().contains("I64"),
        "load_tensors reads floats only"
    );
}

#[test]
fn loads_a_file_laid_out_by_pytorch() {
    let path = temp("torch");
    write_raw(&path, &torch_like(2.0), Some("{\"format\":\"pt\"}"));
    let mut net = Net::new(-1.0);
    net.load(&path).unwrap();
    let expected = Net::new(2.0);
    assert_eq!(net.weight, expected.weight);
    assert_eq!(net.bias, expected.bias);
    assert_eq!(net.running_mean, expected.running_mean);
    assert_eq!(net.tracked.as_slice(), [9.0]);
    write_raw(&path, &torch_like(2.0), None);
    Net::new(0.0).load(&path).unwrap();
}

#[test]
fn missing_and_unexpected_names_are_listed() {
    let path = temp("names");
    let mut tensors = torch_like(2.0);
    tensors.remove(2); // fc.bias
    tensors.push(("fc.extra", "F32", &[1], f32_bytes(&[1.0])));
    write_raw(&path, &tensors, None);
    let e = load_err(&mut Net::new(0.0), &path);
    assert!(e.contains("missing from the file: `fc.bias`"), "{e}");
    assert!(e.contains("unexpected in the file: `fc.extra`"), "{e}");

    let mut tensors = torch_like(2.0);
    tensors.push(("zzz", "F32", &[1], f32_bytes(&[1.0])));
    write_raw(&path, &tensors, None);
    let e = load_err(&mut Net::new(0.0), &path);
    assert!(
        e.contains("unexpected in the file: `zzz`") && !e.contains("missing"),
        "{e}"
    );
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let path = temp("shape");
    Tiny::<f32, 0xabcd, 3>::new(1.0).save(&path).unwrap();
    let mut net = Net::new(0.0);
    let before = net.clone();
    let e = load_err(&mut net, &path);
    assert!(
        e.contains("`fc.bias` has shape [3] in the file but [2] in the network"),
        "{e}"
    );
    assert_eq!(
        net, before,
        "nothing written, not even the tensors before the bad one"
    );
}

#[test]
fn wrong_dtype_says_which() {
    let path = temp("dtype");
    Tiny::<f64, 0xabcd, 2>::new(1.0).save(&path).unwrap();
    let e = load_err(&mut Net::new(0.0), &path);
    assert!(
        e.contains("dtype F64 in the file but the network holds F32"),
        "{e}"
    );
}

#[test]
fn other_structure_hash_is_refused() {
    let path = temp("hash");
    Tiny::<f32, 0x1111, 2>::new(1.0).save(&path).unwrap();
    let e = load_err(&mut Net::new(0.0), &path);
    assert!(e.contains("comes from a different network"), "{e}");
    assert!(
        e.contains("0000000000001111") && e.contains("000000000000abcd"),
        "{e}"
    );
}

#[test]
fn garbage_truncated_and_missing_files_are_errors() {
    let path = temp("garbage");
    let mut net = Net::new(0.0);
    std::fs::write(&path, b"definitely not safetensors").unwrap();
    assert!(load_err(&mut net, &path).contains("not a valid safetensors file"));
    std::fs::write(&path, b"").unwrap();
    assert!(load_err(&mut net, &path).contains("not a valid safetensors file"));
    Net::new(1.0).save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [4, 20, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert!(load_err(&mut net, &path).contains("not a valid safetensors file"));
    }
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &huge).unwrap();
    assert!(load_err(&mut net, &path).contains("not a valid safetensors file"));
    let missing = temp("does-not-exist");
    let _ = std::fs::remove_file(&missing);
    let e = net.load(&missing).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("does-not-exist"),
        "{e}"
    );
    assert_eq!(net, Net::new(0.0));
}

#[test]
fn plain_tensor_maps_round_trip() {
    let path = temp("plain");
    let a = Tensor::from_vec(&[2, 2], vec![1.0f64, -2.0, 3.5, 1e-300]).unwrap();
    let b = Tensor::from_vec(&[], vec![4.0f64]).unwrap();
    io::save_tensors([("a", &a), ("b", &b)], &path).unwrap();
    let back = io::load_tensors::<f64>(&path).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!((&back["a"], &back["b"]), (&a, &b));
    let as_f32 = io::load_tensors::<f32>(&path).unwrap();
    assert_eq!(as_f32["a"].as_slice(), [1.0f32, -2.0, 3.5, 0.0]);
    let e = io::save_tensors([("a", &a), ("a", &b)], &path).unwrap_err();
    assert!(e.to_string().contains("`a` is given twice"), "{e}");
}
