//! What every case of the hostile-file tests goes through: the loaders, a file for each,
//! and `outcome`, which runs one and judges what came back.

use crate::LARGEST;
use bp_runtime::data::{self, read_csv, read_idx_images, read_idx_labels, CsvOptions};
use bp_runtime::{io, Error, Network, ParamVisitor, Port, Tensor};
use proptest::test_runner::{Config, RngSeed};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// The proptest configuration: `cases` cases from a fixed seed, unless `PROPTEST_CASES` or
/// `PROPTEST_RNG_SEED` say otherwise; no regression files.
pub(crate) fn config(cases: u32) -> Config {
    let env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            cases
        },
        rng_seed: match env.rng_seed {
            RngSeed::Random => RngSeed::Fixed(0x6270_5f6c_6f61_6473),
            fixed => fixed,
        },
        failure_persistence: None,
        ..env
    }
}

/// Aborts the process, naming the test, if it is still running after `limit`: a loader
/// that hangs fails the run instead of stalling it.
pub(crate) struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    pub(crate) fn new(test: &'static str, limit: Duration) -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                eprintln!("{test}: a loader hung (still running after {limit:?})");
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// A fresh directory for one test's files, removed when dropped.
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(test: &str) -> Dir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("bp-hostile-{}-{n}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Dir(dir)
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("a temporary file");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("in memory");
    enc.finish().expect("in memory")
}

// ---------------------------------------------------------------------------------------
// The loaders, each with what its `Ok` must satisfy.

/// A network of two parameters, `w` [2, 3] and `b` [4], for `io::load`.
pub(crate) struct Two {
    pub(crate) params: [Tensor<f32>; 2],
}

impl Two {
    pub(crate) fn new() -> Two {
        let w = Tensor::from_vec(&[2, 3], vec![1., 2., 3., 4., 5., 6.]).expect("6 values");
        let b = Tensor::from_vec(&[4], vec![-1., -2., 0.5, 8.]).expect("4 values");
        Two { params: [w, b] }
    }

    fn index(name: &str) -> Option<usize> {
        ["w", "b"].iter().position(|n| *n == name)
    }
}

impl Network for Two {
    type Scalar = f32;
    const INPUTS: &'static [Port] = &[];
    const OUTPUTS: &'static [Port] = &[];
    const STRUCTURE_HASH: u64 = 0x1234_5678_9abc_def0;

    fn forward_dyn(&mut self, _: &[&Tensor<f32>]) -> Result<(), Error> {
        Ok(())
    }
    fn output(&self, _: usize) -> Option<&Tensor<f32>> {
        None
    }
    fn backward_dyn(&mut self, _: &[&Tensor<f32>]) -> Result<(), Error> {
        Ok(())
    }
    fn backward_dyn_accumulate(&mut self, _: &[&Tensor<f32>]) -> Result<(), Error> {
        Ok(())
    }
    fn param_names(&self) -> Vec<&'static str> {
        vec!["w", "b"]
    }
    fn param(&self, name: &str) -> Option<&Tensor<f32>> {
        Two::index(name).map(|i| &self.params[i])
    }
    fn param_mut(&mut self, name: &str) -> Option<&mut Tensor<f32>> {
        Two::index(name).map(|i| &mut self.params[i])
    }
    fn grad(&self, _: &str) -> Option<&Tensor<f32>> {
        None
    }
    fn buffer_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn buffer(&self, _: &str) -> Option<&Tensor<f32>> {
        None
    }
    fn buffer_mut(&mut self, _: &str) -> Option<&mut Tensor<f32>> {
        None
    }
    fn residual(&self, _: &str) -> Option<&Tensor<f32>> {
        None
    }
    fn input_grad(&self, _: &str) -> Option<&Tensor<f32>> {
        None
    }
    fn visit_params(&mut self, _: &mut ParamVisitor<'_, f32>) {}
    fn set_training(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Loader {
    Tensors,
    Net,
    Images,
    Labels,
    Mnist,
    Csv,
    Digits,
}

pub(crate) const LOADERS: [Loader; 7] = [
    Loader::Tensors,
    Loader::Net,
    Loader::Images,
    Loader::Labels,
    Loader::Mnist,
    Loader::Csv,
    Loader::Digits,
];

/// Runs `loader` on `path` (for `Mnist`, the images; `labels` is the label file) and
/// checks what an `Ok` promises; an `Err` is returned as it is.
pub(crate) fn run(loader: Loader, path: &Path, labels: &Path) -> Result<(), Error> {
    match loader {
        Loader::Tensors => {
            for (name, t) in io::load_tensors::<f32>(path)? {
                assert_eq!(t.len(), t.shape().iter().product::<usize>(), "`{name}`");
            }
        }
        Loader::Net => {
            let mut net = Two::new();
            let before = net.params.clone();
            if let Err(e) = io::load(&mut net, path) {
                assert_eq!(net.params, before, "a failed load changed the network");
                return Err(e);
            }
            assert_eq!(net.params[0].shape(), [2, 3]);
            assert_eq!(net.params[1].shape(), [4]);
        }
        Loader::Images => {
            let img = read_idx_images(path)?;
            assert_eq!(img.pixels.len(), img.count * img.rows * img.cols);
        }
        Loader::Labels => {
            read_idx_labels(path)?;
        }
        Loader::Mnist => {
            let ds = data::mnist::<f32>(path, labels)?;
            assert!(ds.y.iter().all(|&l| l < 10));
            assert!(ds.x.iter().all(|v| (0.0..=1.0).contains(v)));
        }
        Loader::Csv => {
            let ds = read_csv::<f32>(path, &CsvOptions::default())?;
            assert!(ds.x.iter().all(|v| v.is_finite()), "a non-finite feature");
            assert!(!ds.is_empty() && ds.sample_len() > 0);
        }
        Loader::Digits => {
            let ds = data::digits::<f64>(path)?;
            assert_eq!(ds.sample_len(), 64);
            assert!(ds.y.iter().all(|&l| l < 10));
        }
    }
    Ok(())
}

/// `bytes` as a file for `loader`: `Ok(())` if it loads, else the error's message. Fails
/// (with `case` in the message) on a panic, on an error that does not name the file, or on
/// an allocation larger than a small multiple of the file.
pub(crate) fn outcome(
    dir: &Dir,
    loader: Loader,
    bytes: &[u8],
    case: &str,
) -> Result<Result<(), String>, String> {
    let path = dir.write("file", bytes);
    let labels = dir.write("labels", &labels_file());
    LARGEST.with(|l| l.set(0));
    let result = std::panic::catch_unwind(|| run(loader, &path, &labels));
    let largest = LARGEST.with(Cell::get);
    // Reading and decoding: the file, a decompressed copy, a parsed copy, each perhaps
    // doubled by a growing Vec; nothing in proportion to what a header declares.
    let limit = 64 * (bytes.len() + labels_file().len()) + (1 << 20);
    if largest > limit && result.is_ok() {
        return Err(format!(
            "{loader:?}, {case}: allocated {largest} bytes at once for a {}-byte file",
            bytes.len()
        ));
    }
    match result {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("?");
            Err(format!("{loader:?}, {case}: panicked: {message}"))
        }
        Ok(Ok(())) => Ok(Ok(())),
        Ok(Err(e)) => {
            let message = e.to_string();
            if !message.contains(&*path.to_string_lossy())
                && !matches!(
                    e,
                    Error::Shape { .. } | Error::Length { .. } | Error::Invalid(_)
                )
            {
                return Err(format!(
                    "{loader:?}, {case}: the error does not name the file: {message}"
                ));
            }
            Ok(Err(message))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Small valid files.

pub(crate) fn safetensors_file() -> Vec<u8> {
    let dir = Dir::new("make-safetensors");
    let path = dir.0.join("two.safetensors");
    io::save(&Two::new(), &path).expect("save");
    std::fs::read(&path).expect("read back")
}

pub(crate) fn images_file() -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0803u32, 2, 3, 4] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..24u8).map(|v| v * 10));
    b
}

pub(crate) fn labels_file() -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0801u32, 2] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend([3, 9]);
    b
}

pub(crate) fn csv_file() -> Vec<u8> {
    b"0.5,1,2\n3,4.25,0\n-1,2e-3,1\n".to_vec()
}

pub(crate) fn digits_file() -> Vec<u8> {
    let row = |label: usize| {
        let pixels: Vec<String> = (0..64)
            .map(|p| ((p * 7 + label) % 17).to_string())
            .collect();
        format!("{},{label}\n", pixels.join(","))
    };
    (row(3) + &row(7)).into_bytes()
}

/// Each loader with a valid file for it.
pub(crate) fn valid_files() -> Vec<(Loader, Vec<u8>)> {
    let st = safetensors_file();
    vec![
        (Loader::Tensors, st.clone()),
        (Loader::Net, st),
        (Loader::Images, images_file()),
        (Loader::Images, gzip(&images_file())),
        (Loader::Labels, labels_file()),
        (Loader::Labels, gzip(&labels_file())),
        (Loader::Mnist, images_file()),
        (Loader::Mnist, gzip(&images_file())),
        (Loader::Csv, csv_file()),
        (Loader::Csv, gzip(&csv_file())),
        (Loader::Digits, digits_file()),
    ]
}
