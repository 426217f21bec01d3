//! The IDX format of MNIST: a big-endian header (magic, then one u32 per dimension) and
//! unsigned bytes. Only the two kinds MNIST uses are read: images (`0x00000803`: count,
//! rows, cols) and labels (`0x00000801`: count).
#![forbid(unsafe_code)]

use super::{read_file, GZIP_MAGIC};
use crate::Error;
use std::io::Read;
use std::path::Path;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Images read from an IDX3 file: `count` images of `rows × cols` u8 pixels, row-major.
#[derive(Clone, Debug)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count · rows · cols` pixels, image after image.
    pub pixels: Vec<u8>,
}

/// Reads an IDX3 image file (gzip or plain). Errors name the file and say what is wrong:
/// a bad magic number, a truncated header or body, or bytes after the last image.
///
/// Only what the header announces is read, and no buffer is sized by the header: a body
/// grows as its bytes arrive, so a header that announces more than the file holds costs
/// nothing, and a gzip stream is decompressed no further than one byte past the body (a
/// small file that inflates to gigabytes is an error, not an allocation).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, Error> {
    let path = path.as_ref();
    let raw = read_file(path)?;
    let mut r = reader(&raw);
    parse_images(&mut r).map_err(|m| Error::format(path.display().to_string(), m))
}

/// Reads an IDX1 label file (gzip or plain). Errors and reading as for
/// [`read_idx_images`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    let raw = read_file(path)?;
    let mut r = reader(&raw);
    parse_labels(&mut r).map_err(|m| Error::format(path.display().to_string(), m))
}

/// The bytes of a file, or its decompressed bytes when it starts with the gzip magic.
fn reader(raw: &[u8]) -> Box<dyn Read + '_> {
    if raw.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    }
}

/// Fills `buf` from `r` as far as it goes; the number of bytes read (less than the
/// length only at the end of the stream).
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize, String> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("not a valid gzip stream: {e}")),
        }
    }
    Ok(n)
}

/// The `N`-byte header, as big-endian u32s (the first is the magic).
fn header<const N: usize>(r: &mut dyn Read) -> Result<[u8; N], String> {
    let mut h = [0; N];
    let n = read_up_to(r, &mut h)?;
    if n < N {
        return Err(format!(
            "truncated: the IDX header needs {N} bytes but the file holds {n}"
        ));
    }
    Ok(h)
}

fn header_u32(h: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]])
}

fn check_magic(h: &[u8], expected: u32, what: &str) -> Result<(), String> {
    let magic = header_u32(h, 0);
    if magic != expected {
        return Err(format!(
            "bad magic number 0x{magic:08x}: an IDX file of {what} starts with 0x{expected:08x}"
        ));
    }
    Ok(())
}

/// The body after the header: exactly `expected` bytes, read as they come (one byte more
/// at most, to see that the file does not go on).
fn body(r: &mut dyn Read, expected: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let limit = u64::try_from(expected)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    r.take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a valid gzip stream: {e}"))?;
    let found = out.len();
    if found < expected {
        return Err(format!(
            "truncated: the header announces {what} ({expected} bytes) but only {found} bytes follow it"
        ));
    }
    if found > expected {
        return Err(format!(
            "the file goes on after the {expected} bytes of {what} the header announces"
        ));
    }
    Ok(out)
}

fn parse_images(r: &mut dyn Read) -> Result<IdxImages, String> {
    let h = header::<16>(r)?;
    check_magic(&h, IMAGES_MAGIC, "u8 images (IDX3)")?;
    let [count, rows, cols] = [1, 2, 3].map(|i| header_u32(&h, i) as usize);
    let what = format!("{count} images of {rows}x{cols}");
    // Checked on its own too: `mnist` multiplies rows by cols, and with no image the
    // product with the count is 0 whatever they are.
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(count))
        .ok_or_else(|| format!("the header announces {what}, too many to address"))?;
    let pixels = body(r, expected, &what)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

fn parse_labels(r: &mut dyn Read) -> Result<Vec<u8>, String> {
    let h = header::<8>(r)?;
    check_magic(&h, LABELS_MAGIC, "u8 labels (IDX1)")?;
    let count = header_u32(&h, 1) as usize;
    body(r, count, &format!("{count} labels"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(count: u32, rows: u32, cols: u32, body: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [IMAGES_MAGIC, count, rows, cols] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.resize(16 + body, 7);
        b
    }

    #[test]
    fn parses_a_small_file() {
        let img = parse_images(&mut &images(2, 2, 3, 12)[..]).unwrap();
        assert_eq!(
            (img.count, img.rows, img.cols, img.pixels.len()),
            (2, 2, 3, 12)
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let e = parse_images(&mut &images(2, 2, 3, 11)[..]).unwrap_err();
        assert!(
            e.contains("truncated") && e.contains("2 images of 2x3"),
            "{e}"
        );
        let e = parse_images(&mut &images(2, 2, 3, 13)[..]).unwrap_err();
        assert!(e.contains("goes on after the 12 bytes"), "{e}");
        let e = parse_images(&mut &images(2, 2, 3, 12)[..10]).unwrap_err();
        assert!(
            e.contains("IDX header needs 16 bytes but the file holds 10"),
            "{e}"
        );
        let e = parse_labels(&mut &images(2, 2, 3, 12)[..]).unwrap_err();
        assert!(e.contains("bad magic number 0x00000803"), "{e}");
        let e = parse_images(&mut &images(u32::MAX, u32::MAX, u32::MAX, 0)[..]).unwrap_err();
        assert!(e.contains("too many to address"), "{e}");
        let e = parse_images(&mut &images(u32::MAX, 1 << 16, 1 << 16, 5)[..]).unwrap_err();
        assert!(e.contains("but only 5 bytes follow it"), "{e}");
    }
}
