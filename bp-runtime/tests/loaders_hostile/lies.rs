//! Headers that lie: each refused with a message saying what is wrong, without allocating
//! what they declare.

use crate::harness::*;
use std::time::Duration;

/// A safetensors file: the header's length (u64, little-endian), the header, `data` zero
/// bytes.
fn safetensors(header: &str, data: usize) -> Vec<u8> {
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header.as_bytes());
    b.resize(b.len() + data, 0);
    b
}

/// One tensor's header entry.
fn entry(name: &str, dtype: &str, shape: &str, offsets: (u64, u64)) -> String {
    format!(
        r#""{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[{},{}]}}"#,
        offsets.0, offsets.1
    )
}

fn idx(magic: u32, dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(body);
    b
}

/// Each case: the loader, the file, and a piece of the message its error must hold.
fn lies() -> Vec<(Loader, Vec<u8>, &'static str)> {
    use Loader::*;
    let two = |a: &str, b: &str| format!("{{{a},{b}}}");
    // 8 tensors of M bytes each: 8·M = 2^64 − 8, so the end of the data plus the 8 bytes
    // of the length overflows.
    let m = u64::MAX / 8;
    let eight: Vec<String> = (0..8)
        .map(|i| {
            entry(
                &format!("t{i}"),
                "U8",
                &format!("[{m}]"),
                (i * m, (i + 1) * m),
            )
        })
        .collect();
    let mut length_max = u64::MAX.to_le_bytes().to_vec();
    length_max.extend_from_slice(b"{}");
    let mut st = vec![
        (safetensors("{}", 0)[..5].to_vec(), "less than the 8 bytes"),
        (length_max, "the header is 18446744073709551615 bytes long"),
        ({
            let mut b = safetensors("{}", 0);
            b[0] = 200;
            b
        }, "the header is 200 bytes long but only 2 bytes follow"),
        (safetensors(&"[".repeat(100_000), 0), "the header is not valid JSON"),
        (safetensors("[1, 2]", 0), "not a JSON object"),
        (safetensors("\"w\"", 0), "not a JSON object"),
        (safetensors(r#"{"w": 1}"#, 0), "tensor `w`"),
        (safetensors(r#"{"w": {"dtype": "F32"}}"#, 0), "tensor `w`"),
        (safetensors(&format!("{{{}}}", entry("w", "F32", "[-1]", (0, 0))), 0), "tensor `w`"),
        (safetensors(&format!("{{{}}}", entry("w", "Q7", "[1]", (0, 4))), 4), "not a valid safetensors file"),
        (safetensors(&format!("{{{}}}", entry("w", "F32", "[2147483648,2147483648]", (0, 1 << 63))), 16), "tensor `w` declares bytes 0..9223372036854775808 but the file holds 16 bytes of data"),
        (safetensors(&format!("{{{}}}", entry("w", "U8", "[4294967296,4294967296,4294967296]", (0, 0))), 0), "tensor `w` has shape [4294967296, 4294967296, 4294967296], whose element count overflows"),
        (safetensors(&format!("{{{}}}", entry("w", "F32", "[2,3]", (0, 20))), 20), "tensor `w` has shape [2, 3] of F32 (24 bytes) but its data_offsets span 20 bytes"),
        (safetensors(&format!("{{{}}}", entry("w", "F64", "[2]", (16, 0))), 16), "tensor `w` has data_offsets [16, 0], which end before they start"),
        (safetensors(&format!("{{{}}}", eight.join(",")), 8), "tensor `t0` declares bytes 0..2305843009213693951"),
        (safetensors(&two(&entry("w", "F32", "[1]", (0, 4)), &entry("b", "F32", "[1]", (8, 12))), 12), "not a valid safetensors file"),
        (safetensors(&two(&entry("w", "F32", "[1]", (0, 4)), r#""__metadata__":{"a":1}"#), 4), "not a valid safetensors file"),
        (safetensors(&format!("{{{}}}", entry("w", "I64", "[1]", (0, 8))), 8), "only F32 and F64"),
        (safetensors(&format!("{{{}}}", entry("w", "F32", "[1,1,1,1,1,1,1]", (0, 4))), 4), "rank 7"),
    ];
    let mut cases: Vec<(Loader, Vec<u8>, &str)> = Vec::new();
    for (file, message) in st.drain(..) {
        // `io::load` parses as `io::load_tensors` does; the dtype and rank cases fail
        // there on the names instead.
        if !message.contains("F32 and F64") && !message.contains("rank") {
            cases.push((Net, file.clone(), message));
        }
        cases.push((Tensors, file, message));
    }
    let big = u32::MAX;
    for (loader, file, message) in [
        (
            Images,
            idx(0x0804, &[1, 1, 1], &[0]),
            "bad magic number 0x00000804",
        ),
        (
            Images,
            idx(0x0d03, &[1, 1, 1], &[0; 4]),
            "bad magic number 0x00000d03",
        ),
        (
            Labels,
            idx(0x0803, &[1], &[0]),
            "bad magic number 0x00000803",
        ),
        (
            Images,
            idx(0x0803, &[big, big, big], &[]),
            "too many to address",
        ),
        (
            Images,
            idx(0x0803, &[big, 1 << 16, 1 << 16], &[1, 2, 3]),
            "(18446744069414584320 bytes) but only 3 bytes follow it",
        ),
        (
            Images,
            gzip(&idx(0x0803, &[big, 1 << 16, 1 << 16], &[1, 2, 3])),
            "but only 3 bytes follow it",
        ),
        (
            Labels,
            idx(0x0801, &[big], &[1, 2]),
            "4294967295 labels (4294967295 bytes) but only 2 bytes",
        ),
        (
            Labels,
            idx(0x0801, &[2], &[1, 2, 3]),
            "goes on after the 2 bytes of 2 labels",
        ),
        // 1 MiB of zeros after a one-pixel image, in a gzip stream of about a kilobyte:
        // refused after one byte more, never inflated.
        (
            Images,
            gzip(&idx(0x0803, &[1, 1, 1], &vec![0; 1 << 20])),
            "goes on after the 1 bytes",
        ),
        (
            Images,
            idx(0x0803, &[1, 1], &[]),
            "the IDX header needs 16 bytes but the file holds 12",
        ),
        (
            Images,
            gzip(&idx(0x0803, &[2, 3, 4], &[0; 24]))[..30].to_vec(),
            "not a valid gzip stream",
        ),
        (
            Mnist,
            idx(0x0803, &[3, 1, 1], &[1, 2, 3]),
            "count mismatch: 3 images but 2 labels",
        ),
        (
            Csv,
            b"1,2,3\n4,5\n".to_vec(),
            "line 2 has 2 fields but the first row has 3",
        ),
        (
            Csv,
            b"1,2,3\n4,x,0\n".to_vec(),
            "line 2, column 1: `x` is not a number",
        ),
        (
            Csv,
            b"1,2,3\n4,nan,0\n".to_vec(),
            "line 2, column 1: the feature `nan` is not a finite f32 number",
        ),
        (
            Csv,
            b"inf,2,3\n".to_vec(),
            "line 1, column 0: the feature `inf` is not a finite f32",
        ),
        (
            Csv,
            b"1e39,2,3\n".to_vec(),
            "line 1, column 0: the feature `1e39` is not a finite f32",
        ),
        (
            Csv,
            b"1,2,-1\n".to_vec(),
            "line 1, column 2: the label `-1` is not a non-negative integer",
        ),
        (Csv, b"1,2,2.5\n".to_vec(), "the label `2.5` is not"),
        (Csv, b"1,2,1e20\n".to_vec(), "the label `1e20` is not"),
        (Csv, b"1,2,NaN\n".to_vec(), "the label `NaN` is not"),
        (Csv, b"".to_vec(), "no data row"),
        (Csv, b"\n \n\r\n".to_vec(), "no data row"),
        (Csv, b"3\n4\n".to_vec(), "line 1 has one field"),
        (Csv, b"1,2,\xff\n".to_vec(), "not UTF-8"),
        (
            Csv,
            gzip(b"1,2,3\n")[..12].to_vec(),
            "not a valid gzip stream",
        ),
        (
            Digits,
            format!("{}10\n", "1,".repeat(64)).into_bytes(),
            "label 10 of sample 0 is not a digit",
        ),
        (Digits, b"1,2,3\n".to_vec(), "digits rows have 64 pixels"),
    ] {
        cases.push((loader, file, message));
    }
    cases
}

#[test]
fn lying_headers_are_refused_without_allocating() {
    let _watchdog = Watchdog::new(
        "lying_headers_are_refused_without_allocating",
        Duration::from_secs(60),
    );
    let dir = Dir::new("lies");
    let mut wrong = Vec::new();
    for (i, (loader, file, message)) in lies().into_iter().enumerate() {
        match outcome(&dir, loader, &file, &format!("case {i}")) {
            Err(e) => wrong.push(e),
            Ok(Ok(())) => wrong.push(format!(
                "case {i}, {loader:?}: loaded; expected an error with `{message}`"
            )),
            Ok(Err(got)) if !got.contains(message) => wrong.push(format!(
                "case {i}, {loader:?}: `{got}` does not say `{message}`"
            )),
            Ok(Err(_)) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
