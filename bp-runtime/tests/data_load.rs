//! The data loaders on the real files shipped in `data/`, and on corrupt copies of them.
#![forbid(unsafe_code)]

use bp_runtime::data::{self, read_csv, read_idx_images, read_idx_labels, Batcher, CsvOptions};
use bp_runtime::{Error, Tensor};
use std::io::Write;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn images() -> PathBuf {
    data_dir().join("mnist-10k-images.idx3-ubyte.gz")
}

fn labels() -> PathBuf {
    data_dir().join("mnist-10k-labels.idx1-ubyte.gz")
}

fn digits_csv() -> PathBuf {
    data_dir().join("digits.csv.gz")
}

/// A fresh path in the system's temporary directory, unique per process and name.
fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bp-data-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn gunzip(path: impl AsRef<Path>) -> Vec<u8> {
    let mut out = Vec::new();
    let file = std::fs::File::open(path).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut out).unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn format_message(e: Error) -> String {
    assert!(matches!(e, Error::Format { .. }), "{e:?}");
    e.to_string()
}

#[test]
fn mnist_10k_has_10000_images_of_28x28_and_digit_labels() {
    let raw = read_idx_images(images()).unwrap();
    assert_eq!((raw.count, raw.rows, raw.cols), (10_000, 28, 28));
    assert_eq!(read_idx_labels(labels()).unwrap().len(), 10_000);

    let ds = data::mnist::<f32>(images(), labels()).unwrap();
    assert_eq!(ds.x.shape(), [10_000, 784]);
    assert_eq!(ds.len(), 10_000);
    assert_eq!(ds.num_classes(), 10);
    let mut counts = [0usize; 10];
    for &l in &ds.y {
        counts[l] += 1;
    }
    assert!(
        counts.iter().all(|&c| c > 800),
        "every digit is there: {counts:?}"
    );
    assert!(ds.x.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert_eq!(ds.x.iter().fold(0.0f32, |m, &p| m.max(p)), 1.0);
    let mean = ds.x.iter().map(|&p| p as f64).sum::<f64>() / ds.x.len() as f64;
    assert!(
        (0.1..0.15).contains(&mean),
        "MNIST's mean pixel is about 0.13, got {mean}"
    );

    let (train, test) = ds.split_at(8_000).unwrap();
    assert_eq!(
        (train.x.shape(), test.x.shape()),
        (&[8_000, 784][..], &[2_000, 784][..])
    );
    assert_eq!(test.y[..], ds.y[8_000..]);
    assert_eq!(test.x[..784], ds.x[8_000 * 784..8_001 * 784]);
    assert!(ds.split_at(10_001).is_err());

    let mut conv = test;
    conv.reshape_samples(&[1, 28, 28]).unwrap();
    assert_eq!(conv.x.shape(), [2_000, 1, 28, 28]);
    assert!(conv.reshape_samples(&[27, 28]).is_err());
    assert_eq!(
        conv.x.shape(),
        [2_000, 1, 28, 28],
        "unchanged after a failed reshape"
    );
}

#[test]
fn digits_has_1797_rows_of_64_pixels() {
    let ds = data::digits::<f64>(digits_csv()).unwrap();
    assert_eq!(ds.x.shape(), [1_797, 64]);
    assert_eq!(ds.num_classes(), 10);
    assert!(ds.x.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert_eq!(ds.x.iter().fold(0.0f64, |m, &p| m.max(p)), 1.0);
    // The first row of scikit-learn's digits is a 0: 0,0,5,13,9,1,0,0,…
    assert_eq!(ds.y[0], 0);
    assert_eq!(ds.x[..4], [0.0, 0.0, 5.0 / 16.0, 13.0 / 16.0]);
    let (train, test) = ds.split_at(1_500).unwrap();
    assert_eq!((train.len(), test.len()), (1_500, 297));
}

#[test]
fn plain_files_load_as_well_as_gzipped_ones() {
    let img = temp("images.idx3-ubyte");
    let lab = temp("labels.idx1-ubyte");
    std::fs::write(&img, gunzip(images())).unwrap();
    std::fs::write(&lab, gunzip(labels())).unwrap();
    let plain = data::mnist::<f32>(&img, &lab).unwrap();
    let gz = data::mnist::<f32>(images(), labels()).unwrap();
    assert_eq!(plain.x, gz.x);
    assert_eq!(plain.y, gz.y);

    let csv = temp("digits.csv");
    std::fs::write(&csv, gunzip(digits_csv())).unwrap();
    let opts = CsvOptions {
        label_column: Some(64),
        ..CsvOptions::default()
    };
    let ds = read_csv::<f32>(&csv, &opts).unwrap();
    assert_eq!(ds.x.shape(), [1_797, 64]);
    assert_eq!(ds.x[2], 5.0, "read_csv does not scale");
}

#[test]
fn corrupt_idx_files_are_errors_naming_file_and_fault() {
    let bytes = gunzip(labels());
    let path = temp("corrupt-labels.gz");

    std::fs::write(&path, gzip(&bytes[..5_000])).unwrap();
    let e = format_message(read_idx_labels(&path).unwrap_err());
    assert!(
        e.contains("corrupt-labels.gz") && e.contains("truncated"),
        "{e}"
    );
    assert!(e.contains("10000 labels"), "{e}");

    let mut bad_magic = bytes.clone();
    bad_magic[3] = 0x03;
    std::fs::write(&path, gzip(&bad_magic)).unwrap();
    let e = format_message(read_idx_labels(&path).unwrap_err());
    assert!(e.contains("bad magic number 0x00000803"), "{e}");
    let e = format_message(read_idx_images(labels()).unwrap_err());
    assert!(e.contains("bad magic number 0x00000801"), "{e}");

    // A gzip stream cut in the middle.
    let gz = std::fs::read(images()).unwrap();
    std::fs::write(&path, &gz[..gz.len() / 3]).unwrap();
    let e = format_message(read_idx_images(&path).unwrap_err());
    assert!(e.contains("gzip"), "{e}");

    // Images and labels of different counts.
    std::fs::write(
        &path,
        gzip(&[&[0, 0, 8, 1, 0, 0, 0, 2][..], &[3, 4]].concat()),
    )
    .unwrap();
    let e = format_message(data::mnist::<f32>(images(), &path).unwrap_err());
    assert!(
        e.contains("count mismatch: 10000 images but 2 labels"),
        "{e}"
    );

    // A label that is no digit.
    let mut bad_label = bytes;
    bad_label[8 + 17] = 12;
    std::fs::write(&path, gzip(&bad_label)).unwrap();
    let e = format_message(data::mnist::<f32>(images(), &path).unwrap_err());
    assert!(e.contains("label 12 at index 17"), "{e}");

    let e = read_idx_images(temp("no-such-file")).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("no-such-file"),
        "{e}"
    );
}

#[test]
fn corrupt_csv_is_an_error_naming_the_line() {
    let mut text = String::from_utf8(gunzip(digits_csv())).unwrap();
    text = text.replacen(",13,", ",1x,", 1);
    let path = temp("bad-digits.csv.gz");
    std::fs::write(&path, gzip(text.as_bytes())).unwrap();
    let e = format_message(data::digits::<f32>(&path).unwrap_err());
    assert!(
        e.contains("bad-digits.csv.gz: line 1, column 3: `1x` is not a number"),
        "{e}"
    );

    std::fs::write(&path, gzip(b"1,2,3\n4,5,6\n")).unwrap();
    let e = format_message(data::digits::<f32>(&path).unwrap_err());
    assert!(e.contains("64 pixels"), "{e}");
}

#[test]
fn batches_cover_the_real_set_once_per_epoch() {
    let ds = data::digits::<f32>(digits_csv()).unwrap();
    let mut batches = Batcher::new(&ds, 64, 3).unwrap();
    assert_eq!(batches.batches_per_epoch(), 29);
    let (mut x, mut y) = (Tensor::default(), Vec::new());
    let mut seen = vec![0usize; 10];
    let mut sizes = Vec::new();
    while batches.next_batch(&mut x, &mut y) {
        sizes.push(y.len());
        assert_eq!(x.shape(), [y.len(), 64]);
        for &l in &y {
            seen[l] += 1;
        }
    }
    assert_eq!(sizes.iter().sum::<usize>(), 1_797);
    assert_eq!(
        *sizes.last().unwrap(),
        1_797 % 64,
        "the last partial batch is kept"
    );
    let mut expected = vec![0usize; 10];
    for &l in &ds.y {
        expected[l] += 1;
    }
    assert_eq!(seen, expected);

    // Same seed, same batches.
    let mut again = Batcher::new(&ds, 64, 3).unwrap();
    let mut first = Batcher::new(&ds, 64, 3).unwrap();
    let (mut x2, mut y2) = (Tensor::default(), Vec::new());
    again.next_batch(&mut x, &mut y);
    first.next_batch(&mut x2, &mut y2);
    assert_eq!((x.as_slice(), &y), (x2.as_slice(), &y2));
}
