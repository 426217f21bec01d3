//! Parity with PyTorch for the layers: `conv2d`, `max_pool2d`, `avg_pool2d`,
//! `batch_norm` (on [F], [C, L] and [C, H, W]; training with the running statistics,
//! evaluation), `layer_norm`, `rnn`, `lstm`, `gru` and `dropout` compute what PyTorch's
//! modules compute — outputs, every parameter gradient, the gradients of `grad` inputs,
//! the value and residual of every `let`-bound node, and batch norm's buffers
//! (`running_mean`, `running_var`, `num_batches_tracked`) — in f64, to
//!
//!     |a − b| ≤ 1e-6·|b| + 1e-9·max|b|     (elementwise; max over the tensor)
//!
//! with `a` bp's and `b` PyTorch's (the criterion of tests/pytorch_parity.rs, whose
//! harness this file copies).
//!
//! The reference values are the committed files in `tests/fixtures/layers/`, written once
//! by `tools/make_layer_fixtures.py` (PyTorch; see its header for how to re-run it). Each
//! network below is written twice: here with `network!`, there as an `nn.Module` whose
//! attributes are named like the `let`s, so its `state_dict()` keys are bp's names; the bp
//! source is also stored in each fixture's metadata under "architecture".
//!
//! Every network's parameters (and batch norm's buffers, `num_batches_tracked` as int64)
//! are loaded with `net.load(path)` from `safetensors.torch.save_file(model.state_dict())`;
//! `BnInterop` also checks that `net.save` writes what PyTorch's state_dict holds (names,
//! dtypes, shapes, bytes). Dropout in training mode draws from bp's own stream, not
//! PyTorch's: it is checked statistically at the end of this file.

mod common;

use bp::{Float, Network, Tensor};
use common::parity::{backward_and_compare, forward_and_compare, Fixture, Report, Tol, F64_TOL};
use std::collections::BTreeMap;
use std::path::PathBuf;

// ------------------------------------------------------------------------ the harness

fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layers")
        .join(file)
}

/// Loads the parameters and buffers from `params` (strictly, with `net.load`: the file is
/// PyTorch's `state_dict`).
fn load_params<N: Network>(net: &mut N, params: &str) {
    net.load(fixture(params))
        .unwrap_or_else(|e| panic!("loading {params} (written by PyTorch): {e}"));
}

/// One pass in the network's current mode: runs forward on the fixture's inputs, compares
/// every output, node value and buffer (after the forward pass, so after the running
/// statistics' update in training), then backward with its `d_out`s and compares every
/// parameter gradient, input gradient and node residual. Labels start with `pass`.
fn check_pass<N: Network>(net: &mut N, data: &str, pass: &str, tol: Tol, report: &mut Report) {
    let mut fx = Fixture::<N::Scalar>::open(fixture(data));

    let prefix = format!("{pass}: ");
    forward_and_compare(net, &mut fx, report, &prefix, tol);
    // Every buffer of bp's network is in the fixture (`get` panics otherwise) and every
    // buffer of PyTorch's module is compared (`all_used`): the same names both ways.
    for name in net.buffer_names() {
        let want = fx.get(&format!("buffer.{name}")).clone();
        let got = net.buffer(name);
        report.compare(&format!("{pass}: buffer {name}"), got, &want, tol);
        if name.ends_with("num_batches_tracked") {
            let got: Option<Vec<f64>> = got.map(|t| t.iter().map(|v| v.to_f64()).collect());
            let want: Vec<f64> = want.iter().map(|v| v.to_f64()).collect();
            if got.as_ref() != Some(&want) {
                report.failures.push(format!(
                    "{pass}: buffer {name} is {got:?} in bp but {want:?} in PyTorch"
                ));
            }
        }
    }

    backward_and_compare(net, &mut fx, report, &prefix, tol);
    fx.all_used();
}

/// The usual case: `NAME.params.safetensors` and one training-mode pass
/// `NAME.data.safetensors`, f64.
fn parity<N: Network<Scalar = f64>>(mut net: N, name: &str) {
    let mut report = Report::default();
    load_params(&mut net, &format!("{name}.params.safetensors"));
    assert!(net.is_training(), "a new network is in training mode");
    check_pass(
        &mut net,
        &format!("{name}.data.safetensors"),
        "training",
        F64_TOL,
        &mut report,
    );
    report.finish(name);
}

/// Batch norm: two training passes in a row on the loaded state (the running statistics
/// and the counter after each), then evaluation on a fresh load of the same state.
fn batch_norm_parity<N: Network<Scalar = f64>>(mut new: impl FnMut() -> N, name: &str) {
    let params = format!("{name}.params.safetensors");
    let mut report = Report::default();
    let mut net = new();
    load_params(&mut net, &params);
    let pass1 = format!("{name}.data.safetensors");
    check_pass(&mut net, &pass1, "training pass 1", F64_TOL, &mut report);
    let pass2 = format!("{name}.step2.data.safetensors");
    check_pass(&mut net, &pass2, "training pass 2", F64_TOL, &mut report);
    let mut net = new();
    load_params(&mut net, &params);
    net.set_training(false);
    let eval = format!("{name}.eval.data.safetensors");
    check_pass(&mut net, &eval, "evaluation", F64_TOL, &mut report);
    report.finish(name);
}

// ---------------------------------------------------------------------------- networks

bp::network! {
    /// conv2d with stride 2 and padding 1 on a 7×6 input (H ≠ W, (6 + 2 − 3)/2 floors),
    /// C = 3, with and without bias; a 1×1 conv; kernel 5 = the padded width of a 4×3
    /// input; kernel 7 = the padded 5×5 input (output 1×1); stride 3 > kernel 2; a 1×1
    /// kernel with stride 2 and padding 1 (the output's border sees only the padding).
    #[dtype(f64)]
    struct Conv {
        input x: [3, 7, 6] grad;
        input y: [2, 5, 5] grad;
        let c1 = conv2d(x, 4, kernel = 3, stride = 2, padding = 1);
        let c2 = conv2d(x, 2, kernel = 3, stride = 2, padding = 1, bias = false);
        let h = concat(tanh(c1), c2, dim = 0);
        let c3 = conv2d(h, 3, kernel = 1);
        let c4 = conv2d(c3, 2, kernel = 5, padding = 1);
        let c5 = conv2d(y, 3, kernel = 7, padding = 1);
        let c6 = conv2d(x, 2, kernel = 2, stride = 3);
        let c7 = conv2d(x, 2, kernel = 1, stride = 2, padding = 1);
        output c4, c5, c6, c7;
    }
}

#[test]
fn conv2d_matches_pytorch() {
    let fx = Fixture::<f64>::open(fixture("conv.data.safetensors"));
    assert_eq!(fx.tensors["value.c1"].shape(), &[3, 4, 4, 3]);
    assert_eq!(fx.tensors["value.c4"].shape(), &[3, 2, 2, 1]);
    assert_eq!(fx.tensors["value.c5"].shape(), &[3, 3, 1, 1]);
    assert_eq!(fx.tensors["value.c6"].shape(), &[3, 2, 2, 2]);
    assert_eq!(fx.tensors["value.c7"].shape(), &[3, 2, 5, 4]);
    parity(Conv::new(0), "conv");
}

bp::network! {
    /// Max pooling with overlapping windows (3, stride 2 and 3, stride 1) and with stride =
    /// kernel, on 7×6 (floored output sizes); inputs that are multiples of 0.5, a constant
    /// plane and relu's zeros, so that windows hold exact ties (PyTorch sends the residual
    /// to the first maximum in row-major order); average pooling, plain and overlapping.
    #[dtype(f64)]
    struct Pool {
        input x: [2, 7, 6] grad;
        let c = conv2d(x, 2, kernel = 1, bias = false);
        let r = relu(c);
        let m1 = max_pool2d(x, 3, stride = 2);
        let m2 = max_pool2d(r, 2);
        let m3 = max_pool2d(x, kernel = 3, stride = 1);
        let a1 = avg_pool2d(x, 2);
        let a2 = avg_pool2d(r, 3, stride = 2);
        output m1, m2, m3, a1, a2;
    }
}

/// Windows `k × k`, stride `s`, over every plane of `x` `[B, C, H, W]`: how many hold
/// their maximum more than once.
fn tied_windows(x: &Tensor<f64>, k: usize, s: usize) -> usize {
    let &[b, c, h, w] = x.shape() else {
        panic!("an image batch")
    };
    let v = x.as_slice();
    let mut ties = 0;
    for plane in 0..b * c {
        for oy in 0..(h - k) / s + 1 {
            for ox in 0..(w - k) / s + 1 {
                let window: Vec<f64> = (0..k * k)
                    .map(|i| v[plane * h * w + (oy * s + i / k) * w + ox * s + i % k])
                    .collect();
                let m = window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                ties += usize::from(window.iter().filter(|&&e| e == m).count() > 1);
            }
        }
    }
    ties
}

#[test]
fn pooling_matches_pytorch() {
    // The fixture does hold exact ties in the windows of m1, m2 and m3.
    let fx = Fixture::<f64>::open(fixture("pool.data.safetensors"));
    let (x, r) = (&fx.tensors["input.x"], &fx.tensors["value.r"]);
    let (t1, t2, t3) = (
        tied_windows(x, 3, 2),
        tied_windows(r, 2, 2),
        tied_windows(x, 3, 1),
    );
    assert!(
        t1 >= 6 && t2 >= 3 && t3 >= 20,
        "tied windows: m1 {t1}, m2 {t2}, m3 {t3}"
    );
    assert_eq!(fx.tensors["value.m1"].shape(), &[2, 2, 3, 2]);
    assert_eq!(fx.tensors["value.m2"].shape(), &[2, 2, 3, 3]);
    assert_eq!(fx.tensors["value.a2"].shape(), &[2, 2, 3, 2]);
    parity(Pool::new(0), "pool");
}

bp::network! {
    /// batch_norm on [F] (BatchNorm1d) with the default momentum and eps, with momentum 0.3
    /// and eps 1e-3, and on [C, L] (BatchNorm1d on [B, C, L], per channel) with momentum
    /// 0.05. `fc` also feeds `h` directly: through a batch norm in training alone, the
    /// gradient of its bias would be exactly 0 (the norm cancels a shift) and both sides
    /// would hold only rounding noise (~1e-16) to compare.
    #[dtype(f64)]
    struct BnFeatures {
        input x: [5] grad;
        input s: [3, 4] grad;
        let fc = linear(x, 4);
        let bn = batch_norm(fc);
        let bn2 = batch_norm(x, momentum = 0.3, eps = 1e-3);
        let bs = batch_norm(s, momentum = 0.05);
        let h = concat(bn, bn2, fc, dim = 0);
        let out = linear(h, 3);
        output out, bs;
    }
}

#[test]
fn batch_norm_on_features_matches_pytorch() {
    batch_norm_parity(|| BnFeatures::new(0), "bn_features");
}

bp::network! {
    /// batch_norm on [C, H, W] (BatchNorm2d) after a conv without bias, momentum 0.2, and
    /// on the input directly with the defaults.
    #[dtype(f64)]
    struct BnImage {
        input x: [3, 4, 3] grad;
        let c = conv2d(x, 4, kernel = 3, padding = 1, bias = false);
        let bn = batch_norm(c, momentum = 0.2);
        let r = relu(bn);
        let bx = batch_norm(x);
        let out = linear(flatten(r), 2);
        output out, bx;
    }
}

#[test]
fn batch_norm_on_images_matches_pytorch() {
    batch_norm_parity(|| BnImage::new(0), "bn_image");
}

/// PyTorch fixes the graph at forward: a batch norm run in training mode is differentiated
/// with the batch's statistics even when the module is put in evaluation mode before
/// backward. And two passes add their gradients (`.grad +=`), as `backward_accumulate`.
#[test]
fn batch_norm_backward_follows_its_forward_mode_and_accumulates() {
    let mut net = BnImage::new(0);
    load_params(&mut net, "bn_image.params.safetensors");
    let f1 = Fixture::<f64>::open(fixture("bn_image.data.safetensors")).tensors;
    let f2 = Fixture::<f64>::open(fixture("bn_image.step2.data.safetensors")).tensors;
    let mut report = Report::default();
    net.forward_dyn(&[&f1["input.x"]]).unwrap();
    net.set_training(false);
    net.backward_dyn(&[&f1["d_out.out"], &f1["d_out.bx"]])
        .unwrap();
    for name in net.param_names() {
        let what = format!("evaluation mode set before backward: gradient of {name}");
        report.compare(&what, net.grad(name), &f1[&format!("grad.{name}")], F64_TOL);
    }
    let what = "evaluation mode set before backward: gradient of input x";
    report.compare(what, net.input_grad("x"), &f1["input_grad.x"], F64_TOL);
    net.set_training(true);
    net.forward_dyn(&[&f2["input.x"]]).unwrap();
    net.backward_dyn_accumulate(&[&f2["d_out.out"], &f2["d_out.bx"]])
        .unwrap();
    for name in net.param_names() {
        let key = format!("grad.{name}");
        let sum: Vec<f64> = f1[&key]
            .iter()
            .zip(f2[&key].iter())
            .map(|(a, b)| a + b)
            .collect();
        let want = Tensor::from_vec(f1[&key].shape(), sum).unwrap();
        let what = format!("passes 1 + 2 accumulated: gradient of {name}");
        report.compare(&what, net.grad(name), &want, F64_TOL);
    }
    report.finish("bn_image (mode switch, accumulation)");
}

bp::network! {
    /// layer_norm over [F] and over the last dim of [T, F] (eps 1e-3); one sample's [F] is
    /// constant (variance 0), another's is ~1e3.
    #[dtype(f64)]
    struct LayerNorm {
        input x: [6] grad;
        input s: [4, 5] grad;
        let ln1 = layer_norm(x);
        let fc = linear(s, 5);
        let ln2 = layer_norm(fc, eps = 1e-3);
        let out = linear(ln1, 3);
        output out, ln2;
    }
}

#[test]
fn layer_norm_matches_pytorch() {
    parity(LayerNorm::new(0), "layer_norm");
}

bp::network! {
    /// Two stacked tanh RNNs (`nn.RNN(3, 4)`, `nn.RNN(4, 3)`, batch_first), both sequences
    /// concatenated along the features, the last step into a linear layer; the second
    /// RNN's whole sequence is an output too.
    #[dtype(f64)]
    struct Rnn {
        input x: [5, 3] grad;
        let l1 = rnn(x, hidden = 4);
        let l2 = rnn(l1, hidden = 3);
        let both = concat(l1, l2, dim = 1);
        let h = last(both);
        let out = linear(h, 2);
        output out, l2;
    }
}

#[test]
fn rnn_matches_pytorch() {
    parity(Rnn::new(0), "rnn");
}

bp::network! {
    /// The same with `nn.LSTM` (gates i, f, g, o).
    #[dtype(f64)]
    struct Lstm {
        input x: [5, 3] grad;
        let l1 = lstm(x, hidden = 4);
        let l2 = lstm(l1, hidden = 3);
        let both = concat(l1, l2, dim = 1);
        let h = last(both);
        let out = linear(h, 2);
        output out, l2;
    }
}

#[test]
fn lstm_matches_pytorch() {
    parity(Lstm::new(0), "lstm");
}

bp::network! {
    /// The same with `nn.GRU` (gates r, z, n; n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn))).
    #[dtype(f64)]
    struct Gru {
        input x: [5, 3] grad;
        let l1 = gru(x, hidden = 4);
        let l2 = gru(l1, hidden = 3);
        let both = concat(l1, l2, dim = 1);
        let h = last(both);
        let out = linear(h, 2);
        output out, l2;
    }
}

#[test]
fn gru_matches_pytorch() {
    parity(Gru::new(0), "gru");
}

bp::network! {
    /// Dropout between two linear layers: the identity in evaluation mode.
    #[dtype(f64)]
    struct Dropout {
        input x: [4, 6] grad;
        let fc = linear(x, 6);
        let d = dropout(fc, 0.4);
        let out = linear(d, 3);
        output out;
    }
}

#[test]
fn dropout_in_evaluation_matches_pytorch() {
    let mut net = Dropout::new(0);
    let mut report = Report::default();
    load_params(&mut net, "dropout.params.safetensors");
    net.set_training(false);
    check_pass(
        &mut net,
        "dropout.eval.data.safetensors",
        "evaluation",
        F64_TOL,
        &mut report,
    );
    // The identity, bit for bit, both ways.
    assert_eq!(net.value("d"), net.value("fc"));
    assert_eq!(net.residual("d"), net.residual("fc"));
    report.finish("dropout (evaluation)");
}

// ----------------------------------------------------------------------------- interop

// PyTorch's side (tools/make_layer_fixtures.py), trained three SGD steps, then
// `safetensors.torch.save_file(model.state_dict(), "bn_interop.safetensors")`:
//
//     class BnInterop(nn.Module):
//         def __init__(self):
//             super().__init__()
//             self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
//             self.bn = nn.BatchNorm2d(3)
//             self.fc = nn.Linear(27, 5, bias=False)
//             self.bn1 = nn.BatchNorm1d(5, momentum=0.2)
//             self.out = nn.Linear(5, 3)
//
//         def forward(self, x):
//             h = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
//             return self.out(F.relu(self.bn1(self.fc(h.flatten(1)))))

bp::network! {
    /// The network of PyTorch's `BnInterop` module: no bias before a batch norm (its
    /// gradient would be 0 in training, rounding noise on both sides).
    #[dtype(f64)]
    struct BnInterop {
        input x: [2, 6, 6];
        let conv = conv2d(x, 3, kernel = 3, padding = 1, bias = false);
        let bn = batch_norm(conv);
        let pool = max_pool2d(relu(bn), 2);
        let fc = linear(flatten(pool), 5, bias = false);
        let bn1 = batch_norm(fc, momentum = 0.2);
        let out = linear(relu(bn1), 3);
        output out;
    }
}

/// A minimal JSON value: enough for a safetensors header.
#[derive(Debug)]
enum Json {
    Obj(Vec<(String, Json)>),
    Arr(Vec<Json>),
    Str(String),
    Num(f64),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("a string expected, found {other:?}"),
        }
    }
    fn usizes(&self) -> Vec<usize> {
        match self {
            Json::Arr(items) => items
                .iter()
                .map(|v| match v {
                    Json::Num(n) if *n >= 0.0 && n.fract() == 0.0 => *n as usize,
                    other => panic!("an index expected, found {other:?}"),
                })
                .collect(),
            other => panic!("an array expected, found {other:?}"),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.s.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }
    fn expect(&mut self, c: u8) {
        assert!(self.eat(c), "`{}` expected at byte {}", c as char, self.i);
    }
    fn value(&mut self) -> Json {
        self.ws();
        match self.s[self.i] {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let Json::Str(k) = self.value() else {
                            panic!("a key expected at byte {}", self.i)
                        };
                        self.expect(b':');
                        fields.push((k, self.value()));
                        if !self.eat(b',') {
                            break;
                        }
                    }
                    self.expect(b'}');
                }
                Json::Obj(fields)
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value());
                        if !self.eat(b',') {
                            break;
                        }
                    }
                    self.expect(b']');
                }
                Json::Arr(items)
            }
            b'"' => {
                self.i += 1;
                let mut out = Vec::new();
                while self.s[self.i] != b'"' {
                    if self.s[self.i] == b'\\' {
                        self.i += 1;
                        assert!(b"\"\\/".contains(&self.s[self.i]), "escape at {}", self.i);
                    }
                    out.push(self.s[self.i]);
                    self.i += 1;
                }
                self.i += 1;
                Json::Str(String::from_utf8(out).expect("UTF-8"))
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.0123456789eE".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(text.parse().unwrap_or_else(|_| panic!("number `{text}`")))
            }
        }
    }
}

/// A safetensors file as written: name → (dtype, shape, the tensor's bytes), and the
/// metadata keys. Read by hand so that the int64 `num_batches_tracked` is seen as it is.
#[allow(clippy::type_complexity)]
fn raw_safetensors(
    path: &std::path::Path,
) -> (BTreeMap<String, (String, Vec<usize>, Vec<u8>)>, Vec<String>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = JsonParser {
        s: &bytes[8..8 + n],
        i: 0,
    }
    .value();
    let data = &bytes[8 + n..];
    let Json::Obj(fields) = &header else {
        panic!("the header is not an object")
    };
    let (mut tensors, mut metadata) = (BTreeMap::new(), Vec::new());
    for (name, v) in fields {
        if name == "__metadata__" {
            if let Json::Obj(m) = v {
                metadata = m.iter().map(|(k, _)| k.clone()).collect();
            }
            continue;
        }
        let offsets = v.get("data_offsets").expect("data_offsets").usizes();
        tensors.insert(
            name.clone(),
            (
                v.get("dtype").expect("dtype").str().to_string(),
                v.get("shape").expect("shape").usizes(),
                data[offsets[0]..offsets[1]].to_vec(),
            ),
        );
    }
    (tensors, metadata)
}

/// `net.save` writes what PyTorch's `state_dict` file holds: the same names, dtypes (F64,
/// and I64 for `num_batches_tracked`), shapes (`[]` for the counter) and bytes, so
/// `load_state_dict(strict=True)` takes it. With `BP_LAYERS_SAVE_TO` set, the file is
/// also kept there, for `tools/make_layer_fixtures.py --load-bp-file`.
fn assert_saved_like_pytorch<N: Network>(net: &N, torch_file: &str) {
    let path = std::env::temp_dir().join(format!("bp-layers-{}-{torch_file}", std::process::id()));
    net.save(&path).expect("save");
    let (ours, meta) = raw_safetensors(&path);
    if let Some(keep) = std::env::var_os("BP_LAYERS_SAVE_TO") {
        std::fs::copy(&path, &keep).expect("copy to BP_LAYERS_SAVE_TO");
    }
    std::fs::remove_file(&path).ok();
    let (theirs, _) = raw_safetensors(&fixture(torch_file));
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "names in bp's file vs PyTorch's state_dict"
    );
    for (name, (dtype, shape, bytes)) in &theirs {
        let (d, s, b) = &ours[name];
        assert_eq!(
            (d, s),
            (dtype, shape),
            "dtype and shape of `{name}`: bp's vs PyTorch's"
        );
        assert!(b == bytes, "the bytes of `{name}` differ from PyTorch's");
    }
    assert!(
        theirs.values().any(|(d, s, _)| d == "I64" && s.is_empty()),
        "PyTorch's file holds an int64 0-dimensional counter"
    );
    assert!(meta.iter().any(|k| k == "bp.structure"), "{meta:?}");
}

#[test]
fn pytorch_batch_norm_state_dict_loads_runs_and_saves_back() {
    let mut net = BnInterop::new(0);
    let mut report = Report::default();
    load_params(&mut net, "bn_interop.safetensors");
    let counter = net.buffer("bn.num_batches_tracked").expect("the counter");
    assert_eq!(
        counter.as_slice(),
        &[3.0],
        "three training steps in PyTorch"
    );
    // `predict` is inference, PyTorch's model.eval(), even while the network is in
    // training mode, and it moves no buffer.
    let eval = Fixture::<f64>::open(fixture("bn_interop.eval.data.safetensors"));
    let y = net.predict(&eval.tensors["input.x"]).expect("predict");
    let want = &eval.tensors["output.out"];
    report.compare("predict: output out", Some(&y), want, F64_TOL);
    assert!(net.is_training());
    let counter = net.buffer("bn1.num_batches_tracked").expect("the counter");
    assert_eq!(counter.as_slice(), &[3.0], "predict leaves the counter");
    // Evaluation: PyTorch's running statistics; the buffers do not move.
    net.set_training(false);
    check_pass(
        &mut net,
        "bn_interop.eval.data.safetensors",
        "evaluation",
        F64_TOL,
        &mut report,
    );
    assert_saved_like_pytorch(&net, "bn_interop.safetensors");
    // Training goes on from PyTorch's statistics and counter (3 → 4).
    net.set_training(true);
    check_pass(
        &mut net,
        "bn_interop.train.data.safetensors",
        "training",
        F64_TOL,
        &mut report,
    );
    report.finish("bn_interop");
}

// -------------------------------------------------------------- dropout in training mode

// PyTorch's mask comes from its own generator, so training mode is checked against
// nn.Dropout's definition instead: each element independently 0 with probability p, else
// scaled by 1/(1 − p); the residual goes through the same mask.

bp::network! {
    #[dtype(f64)]
    struct Dropout3 {
        input x: [2000] grad;
        let d = dropout(x, 0.3);
        output d;
    }
}

bp::network! {
    #[dtype(f64)]
    struct Dropout5 {
        input x: [2000] grad;
        let d = dropout(x, 0.5);
        output d;
    }
}

bp::network! {
    #[dtype(f64)]
    struct Dropout1 {
        input x: [2000] grad;
        let d = dropout(x, 0.1);
        output d;
    }
}

/// A batch of `b` samples of 2000 values, none of them 0 (so a 0 out is a dropped value).
fn nonzero_batch(b: usize, seed: u64) -> Tensor<f64> {
    let mut rng = bp::rng::Rng::new(seed);
    let data = (0..b * 2000)
        .map(|i| {
            let v = rng.uniform(0.5, 2.0);
            if i % 2 == 0 {
                v
            } else {
                -v
            }
        })
        .collect();
    Tensor::from_vec(&[b, 2000], data).unwrap()
}

/// |count − n·q| within 5 standard deviations of a binomial(n, q).
fn assert_binomial(count: usize, n: usize, q: f64, what: &str) {
    let (mean, sd) = (n as f64 * q, (n as f64 * q * (1.0 - q)).sqrt());
    assert!(
        (count as f64 - mean).abs() <= 5.0 * sd,
        "{what}: {count} of {n}, expected {mean:.0} ± {:.0} (5 sd)",
        5.0 * sd
    );
}

fn dropout_statistics<N: Network<Scalar = f64>>(mut net: N, p: f64) {
    let (b, f) = (16, 2000);
    let n = b * f;
    let x = nonzero_batch(b, 1);
    let d = nonzero_batch(b, 2);
    assert!(net.is_training());
    net.reseed(42);
    net.forward_dyn(&[&x]).unwrap();
    let y = net.output(0).unwrap().clone();
    // The mask: 0 or exactly 1/(1 − p) times the input, as nn.Dropout.
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<bool> = x
        .iter()
        .zip(y.iter())
        .map(|(&x, &y)| {
            assert!(
                y == 0.0 || y == x * scale,
                "p = {p}: output {y} for input {x} is neither 0 nor x/(1 − p)"
            );
            y == 0.0
        })
        .collect();
    let dropped = mask.iter().filter(|&&m| m).count();
    assert_binomial(dropped, n, p, &format!("p = {p}: dropped elements"));
    // Every sample has its own mask at the rate p (no mask shared across the batch or
    // dropping whole samples).
    for s in 0..b {
        let row = &mask[s * f..(s + 1) * f];
        let k = row.iter().filter(|&&m| m).count();
        assert_binomial(k, f, p, &format!("p = {p}: dropped in sample {s}"));
        if s > 0 {
            assert_ne!(row, &mask[..f], "p = {p}: samples 0 and {s} share a mask");
        }
    }
    // Independent neighbours: both of two adjacent elements dropped at the rate p².
    let pairs = mask.windows(2).filter(|w| w[0] && w[1]).count();
    assert_binomial(
        pairs,
        n - 1,
        p * p,
        &format!("p = {p}: adjacent pairs dropped"),
    );
    // The scale keeps the expectation: mean over the batch of y/x is 1.
    let mean_ratio = x.iter().zip(y.iter()).map(|(x, y)| y / x).sum::<f64>() / n as f64;
    let sd = (p / (1.0 - p) / n as f64).sqrt();
    assert!(
        (mean_ratio - 1.0).abs() <= 5.0 * sd,
        "p = {p}: E[y/x] = {mean_ratio}, expected 1 ± {}",
        5.0 * sd
    );
    // Backward through the same mask.
    net.backward_dyn(&[&d]).unwrap();
    let dx = net.input_grad("x").unwrap();
    for (i, ((&g, &dg), &m)) in dx.iter().zip(d.iter()).zip(&mask).enumerate() {
        let want = if m { 0.0 } else { dg * scale };
        assert_eq!(g, want, "p = {p}: input gradient [{i}]");
    }
    // A new pass draws a new mask; the same seed draws the same one.
    net.forward_dyn(&[&x]).unwrap();
    let again: Vec<bool> = net.output(0).unwrap().iter().map(|&v| v == 0.0).collect();
    let differ = again.iter().zip(&mask).filter(|(a, b)| a != b).count();
    assert_binomial(
        differ,
        n,
        2.0 * p * (1.0 - p),
        &format!("p = {p}: masks of two passes differ"),
    );
    net.reseed(42);
    net.forward_dyn(&[&x]).unwrap();
    assert_eq!(
        net.output(0).unwrap(),
        &y,
        "p = {p}: reseeding repeats the mask"
    );
    // Evaluation: the identity, both ways, bit for bit.
    net.set_training(false);
    net.forward_dyn(&[&x]).unwrap();
    assert_eq!(
        net.output(0).unwrap(),
        &x,
        "p = {p}: evaluation is the identity"
    );
    net.backward_dyn(&[&d]).unwrap();
    assert_eq!(
        net.input_grad("x").unwrap(),
        &d,
        "p = {p}: evaluation backward"
    );
}

#[test]
fn dropout_in_training_drops_at_rate_p_and_scales_by_one_over_one_minus_p() {
    dropout_statistics(Dropout1::new(0), 0.1);
    dropout_statistics(Dropout3::new(0), 0.3);
    dropout_statistics(Dropout5::new(0), 0.5);
}
