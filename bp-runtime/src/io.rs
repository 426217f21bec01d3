//! Saving and loading in the safetensors format, under PyTorch's names, so that a file
//! moves between `bp` and PyTorch's `load_state_dict(strict=True)` in both directions.
//!
//! A network's file holds every parameter and buffer under its name, with the network's
//! dtype (`F32` or `F64`) and the tensor's shape, and the metadata
//! `{"bp.structure": "<16 hex digits>", "bp.format": "1"}`. Batch norm's
//! `num_batches_tracked` is written as a 0-dimensional `I64`, as PyTorch keeps it.
//!
//! [`load`] is strict and all-or-nothing: it checks the whole file against the network
//! (names both ways, shapes, dtypes, the structure hash) before it writes one element, so a
//! failed load leaves the network as it was.
//!
//! Both loaders read a hostile file safely: the sizes in its header (the header's length,
//! each tensor's shape and byte range) are checked against the bytes the file holds
//! before anything is built from them, and a lie is an error naming the tensor and the
//! numbers, never an allocation of what the header declares, nor a panic
//! (`tests/loaders_hostile.rs`).
#![forbid(unsafe_code)]

use crate::{Error, Float, Network, Tensor};
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The metadata key of the structure hash.
pub const STRUCTURE_KEY: &str = "bp.structure";
/// The metadata key of the format version.
pub const FORMAT_KEY: &str = "bp.format";
/// The format version written by this crate.
pub const FORMAT_VERSION: &str = "1";

/// One tensor ready to be written: what `safetensors::serialize` takes.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

fn dtype_of<T: Float>() -> Dtype {
    if T::BYTES == 8 {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

fn float_raw<T: Float>(t: &Tensor<T>) -> Raw {
    let mut bytes = Vec::with_capacity(t.len() * T::BYTES);
    for &v in t.as_slice() {
        v.write_le(&mut bytes);
    }
    Raw {
        dtype: dtype_of::<T>(),
        shape: t.shape().to_vec(),
        bytes,
    }
}

/// PyTorch's `num_batches_tracked`: an int64 scalar.
fn is_counter(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

fn counter_raw<T: Float>(t: &Tensor<T>) -> Raw {
    let mut bytes = Vec::with_capacity(t.len() * 8);
    for &v in t.as_slice() {
        bytes.extend_from_slice(&(v.to_f64().round() as i64).to_le_bytes());
    }
    // PyTorch keeps the counter 0-dimensional; a one-element tensor is written as such.
    let shape = if t.len() == 1 {
        Vec::new()
    } else {
        t.shape().to_vec()
    };
    Raw {
        dtype: Dtype::I64,
        shape,
        bytes,
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// Serializes and writes crash-safely: the bytes go to a temporary file in the same
/// directory (named after `path`, this process and a counter, so concurrent saves do not
/// share one), which is synced to disk and then renamed over `path`; last the directory is
/// synced so the rename itself survives a power cut. A reader of `path` therefore sees the
/// old version or the new one, complete, whenever the writer is killed.
fn write_file(
    path: &Path,
    tensors: &BTreeMap<String, Raw>,
    metadata: Option<Vec<(String, String)>>,
) -> Result<(), Error> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SAVES: AtomicU64 = AtomicU64::new(0);

    let bytes = safetensors::serialize(tensors.iter(), metadata.map(|m| m.into_iter().collect()))
        .map_err(|e| Error::format(path_str(path), format!("cannot serialize: {e}")))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = std::path::PathBuf::from(tmp);
    let io = |source| Error::Io {
        path: path_str(path),
        source,
    };
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(&bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    sync_parent(path).map_err(io)
}

/// Syncs the directory holding `path`, so that a rename into it is durable (POSIX). Other
/// systems cannot open a directory as a file; there the rename is as durable as they make it.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    if cfg!(unix) {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Saves the parameters and buffers of a network (see the module documentation).
///
/// Errors: a name the network lists without a tensor, or the file cannot be written.
pub fn save<N: Network>(net: &N, path: &Path) -> Result<(), Error> {
    net.check_state()?;
    let mut tensors = BTreeMap::new();
    for name in net.param_names() {
        let t = net
            .param(name)
            .ok_or_else(|| missing_tensor("parameter", name))?;
        tensors.insert(name.to_string(), float_raw(t));
    }
    for name in net.buffer_names() {
        let t = net
            .buffer(name)
            .ok_or_else(|| missing_tensor("buffer", name))?;
        let raw = if is_counter(name) {
            counter_raw(t)
        } else {
            float_raw(t)
        };
        if tensors.insert(name.to_string(), raw).is_some() {
            return Err(Error::invalid(format!(
                "cannot save: the name `{name}` is both a parameter and a buffer"
            )));
        }
    }
    let metadata = vec![
        (STRUCTURE_KEY.to_string(), structure(N::STRUCTURE_HASH)),
        (FORMAT_KEY.to_string(), FORMAT_VERSION.to_string()),
    ];
    write_file(path, &tensors, Some(metadata))
}

fn missing_tensor(kind: &str, name: &str) -> Error {
    Error::invalid(format!(
        "cannot save: the network lists {kind} `{name}` but has no tensor under that name"
    ))
}

fn structure(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Reads and parses a safetensors file; the buffer must outlive the view.
fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path_str(path),
        source,
    })
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, Error> {
    let invalid =
        |m: String| Error::format(path_str(path), format!("not a valid safetensors file: {m}"));
    check_header(bytes).map_err(invalid)?;
    SafeTensors::deserialize(bytes).map_err(|e| invalid(e.to_string()))
}

/// Checks the sizes a safetensors header declares against the file before the
/// `safetensors` crate reads it, with errors that name the tensor and the numbers: the
/// header's length against the bytes that follow it, and each tensor's element count,
/// byte size (for `F32` and `F64`) and byte range against the data the file holds. The
/// crate checks the rest (dtypes, contiguous ranges, the metadata). Nothing is allocated
/// in proportion to a declared size.
///
/// Beyond clearer messages, this keeps the crate's arithmetic in range: it adds the end
/// of the data to the header's length unchecked, which overflows (a panic in a debug
/// build) for a header whose tensors claim about 2^64 bytes.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(format!(
            "the file holds {} bytes, less than the 8 bytes of a safetensors header length",
            bytes.len()
        ));
    };
    let n = u64::from_le_bytes(*len);
    let header = usize::try_from(n)
        .ok()
        .and_then(|n| rest.get(..n))
        .ok_or_else(|| {
            format!(
                "the header is {n} bytes long but only {} bytes follow its length",
                rest.len()
            )
        })?;
    let data_len = (rest.len() - header.len()) as u64;
    let json: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("the header is not valid JSON: {e}"))?;
    let serde_json::Value::Object(entries) = json else {
        return Err("the header is not a JSON object of tensors".to_string());
    };
    for (name, info) in entries.iter().filter(|(name, _)| *name != "__metadata__") {
        check_entry(name, info, data_len)?;
    }
    Ok(())
}

/// One tensor's entry of a safetensors header: `{"dtype", "shape", "data_offsets"}`.
fn check_entry(name: &str, info: &serde_json::Value, data_len: u64) -> Result<(), String> {
    let numbers = |key: &str| -> Option<Vec<u64>> {
        info.get(key)?
            .as_array()?
            .iter()
            .map(|v| v.as_u64())
            .collect()
    };
    let (Some(shape), Some(offsets), Some(dtype)) = (
        numbers("shape"),
        numbers("data_offsets"),
        info.get("dtype").and_then(|d| d.as_str()),
    ) else {
        return Err(format!(
            "tensor `{name}`: its entry is not {{\"dtype\": string, \"shape\": [sizes], \
             \"data_offsets\": [start, end]}}: {info}"
        ));
    };
    let &[start, end] = &offsets[..] else {
        return Err(format!(
            "tensor `{name}` has data_offsets {offsets:?}; a start and an end were expected"
        ));
    };
    let count = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            format!("tensor `{name}` has shape {shape:?}, whose element count overflows")
        })?;
    if end < start {
        return Err(format!(
            "tensor `{name}` has data_offsets [{start}, {end}], which end before they start"
        ));
    }
    if end > data_len {
        return Err(format!(
            "tensor `{name}` declares bytes {start}..{end} but the file holds {data_len} bytes of data"
        ));
    }
    let element = match dtype {
        "F32" => 4,
        "F64" => 8,
        _ => return Ok(()),
    };
    if count.checked_mul(element) != Some(end - start) {
        return Err(format!(
            "tensor `{name}` has shape {shape:?} of {dtype} ({} bytes) but its data_offsets span {} bytes",
            count.saturating_mul(element),
            end - start
        ));
    }
    Ok(())
}

/// Loads parameters and buffers into a network, strictly and all-or-nothing.
///
/// Accepts files written by [`save`] and by PyTorch's
/// `safetensors.torch.save_file(model.state_dict(), path)` (which carry no structure
/// hash). Errors, each naming what is wrong, leave the network unchanged:
/// - the file cannot be read or is not safetensors;
/// - its `bp.structure` differs from `N::STRUCTURE_HASH` (a file of another network);
/// - names of the network missing from the file, or names in the file the network does
///   not have (both lists given);
/// - a tensor whose shape or dtype differs from the network's (both given). The dtype must
///   be the network's (`F32` or `F64`), except for `num_batches_tracked`, which may also be
///   `I64` (PyTorch's), and whose shapes `[]` and `[1]` are taken as the same.
pub fn load<N: Network>(net: &mut N, path: &Path) -> Result<(), Error> {
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    let fail = |message: String| Error::format(path_str(path), message);
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| fail(format!("not a valid safetensors file: {e}")))?;
    let ours = structure(N::STRUCTURE_HASH);
    if let Some(theirs) = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(STRUCTURE_KEY))
    {
        if *theirs != ours {
            return Err(fail(format!(
                "the file comes from a different network: its structure hash is {theirs} but \
                 this network's is {ours} (same names and shapes do not make the same network)"
            )));
        }
    }
    check_names(net, &file).map_err(fail)?;
    // Decode everything first; write only when every tensor is good.
    let mut decoded = Vec::new();
    for name in net.param_names() {
        let target = net
            .param(name)
            .ok_or_else(|| fail(format!("no parameter `{name}`")))?;
        decoded.push((
            name,
            true,
            decode_into_shape(&file, name, target.shape()).map_err(&fail)?,
        ));
    }
    for name in net.buffer_names() {
        let target = net
            .buffer(name)
            .ok_or_else(|| fail(format!("no buffer `{name}`")))?;
        decoded.push((
            name,
            false,
            decode_into_shape(&file, name, target.shape()).map_err(&fail)?,
        ));
    }
    for (name, is_param, values) in decoded {
        let target = if is_param {
            net.param_mut(name)
        } else {
            net.buffer_mut(name)
        };
        // Lengths were checked against `param`/`buffer`; the filter only guards against
        // a network whose `_mut` accessor returns another tensor.
        if let Some(t) = target.filter(|t| t.len() == values.len()) {
            t.as_mut_slice().copy_from_slice(&values);
        }
    }
    Ok(())
}

/// PyTorch's `strict=True`: the file's names and the network's are the same set.
fn check_names<N: Network>(net: &N, file: &SafeTensors<'_>) -> Result<(), String> {
    let ours: BTreeSet<&str> = net
        .param_names()
        .into_iter()
        .chain(net.buffer_names())
        .collect();
    let theirs: BTreeSet<&str> = file.names().into_iter().collect();
    let missing: Vec<&str> = ours.difference(&theirs).copied().collect();
    let unexpected: Vec<&str> = theirs.difference(&ours).copied().collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut message = String::from("the file does not fit the network:");
    if !missing.is_empty() {
        message += &format!(" missing from the file: {}.", quote_list(&missing));
    }
    if !unexpected.is_empty() {
        message += &format!(" unexpected in the file: {}.", quote_list(&unexpected));
    }
    Err(message)
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values of tensor `name`, checked against the shape and dtype the network expects.
fn decode_into_shape<T: Float>(
    file: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<T>, String> {
    let view = file
        .tensor(name)
        .map_err(|e| format!("tensor `{name}`: {e}"))?;
    let counter = is_counter(name);
    let same_shape = view.shape() == shape
        || (counter
            && view.shape().iter().product::<usize>() == 1
            && shape.iter().product::<usize>() == 1);
    if !same_shape {
        return Err(format!(
            "tensor `{name}` has shape {:?} in the file but {shape:?} in the network",
            view.shape()
        ));
    }
    match view.dtype() {
        d if d == dtype_of::<T>() => {
            Ok(view.data().chunks_exact(T::BYTES).map(T::read_le).collect())
        }
        Dtype::I64 if counter => Ok(view
            .data()
            .chunks_exact(8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                T::from_f64(i64::from_le_bytes(a) as f64)
            })
            .collect()),
        d => Err(format!(
            "tensor `{name}` has dtype {d:?} in the file but the network holds {}{}",
            T::DTYPE,
            if counter { " (or I64)" } else { "" }
        )),
    }
}

/// Saves plain named tensors (no structure hash, the given metadata if any).
///
/// ```
/// use bp_runtime::{io, Tensor};
/// let path = std::env::temp_dir().join("bp-doc-save-tensors.safetensors");
/// let w = Tensor::from_vec(&[2], vec![1.0f32, 2.0]).unwrap();
/// io::save_tensors([("w", &w)], &path).unwrap();
/// let back = io::load_tensors::<f32>(&path).unwrap();
/// assert_eq!(back["w"], w);
/// # std::fs::remove_file(&path).unwrap();
/// ```
///
/// Errors: a name given twice, or the file cannot be written.
pub fn save_tensors<'a, T, S, I>(tensors: I, path: impl AsRef<Path>) -> Result<(), Error>
where
    T: Float,
    S: AsRef<str>,
    I: IntoIterator<Item = (S, &'a Tensor<T>)>,
{
    let mut raw = BTreeMap::new();
    for (name, t) in tensors {
        let name = name.as_ref();
        if raw.insert(name.to_string(), float_raw(t)).is_some() {
            return Err(Error::invalid(format!(
                "save_tensors: the name `{name}` is given twice"
            )));
        }
    }
    write_file(path.as_ref(), &raw, None)
}

/// Loads every tensor of a safetensors file by name, converting `F32` and `F64` to `T`
/// (f64 → f32 rounds). Any other dtype is an error naming the tensor.
pub fn load_tensors<T: Float>(
    path: impl AsRef<Path>,
) -> Result<BTreeMap<String, Tensor<T>>, Error> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let file = parse(path, &bytes)?;
    let fail = |message: String| Error::format(path_str(path), message);
    let mut out = BTreeMap::new();
    for (name, view) in file.iter() {
        let values: Vec<T> = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| T::from_f64(f32::read_le(b) as f64))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| T::from_f64(f64::read_le(b)))
                .collect(),
            d => {
                return Err(fail(format!(
                    "tensor `{name}` has dtype {d:?}; only F32 and F64 are read"
                )))
            }
        };
        let t = Tensor::from_vec(view.shape(), values)
            .map_err(|e| fail(format!("tensor `{name}`: {e}")))?;
        out.insert(name.to_string(), t);
    }
    Ok(out)
}
