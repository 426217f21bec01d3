//! The IDX format of MNIST: a big-endian header (magic, then one u32 per dimension) and
//! unsigned bytes. Only the two kinds MNIST uses are read: images (`0x00000803`: count,
//! rows, cols) and labels (`0x00000801`: count).
#![forbid(unsafe_code)]

use super::read_maybe_gz;
use crate::Error;
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
/// a bad magic number, a truncated header or body, or bytes left after the last image.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages, Error> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_images(&bytes).map_err(|m| Error::format(path.display().to_string(), m))
}

/// Reads an IDX1 label file (gzip or plain). Errors as for [`read_idx_images`].
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    parse_labels(&bytes).map_err(|m| Error::format(path.display().to_string(), m))
}

/// The header's u32 number `i` (0 is the magic), or a message saying the header is cut.
fn header_u32(bytes: &[u8], i: usize, header_len: usize) -> Result<u32, String> {
    match bytes.get(4 * i..4 * i + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(format!(
            "truncated: the IDX header needs {header_len} bytes but the file holds {}",
            bytes.len()
        )),
    }
}

fn check_magic(bytes: &[u8], expected: u32, what: &str, header_len: usize) -> Result<(), String> {
    let magic = header_u32(bytes, 0, header_len)?;
    if magic != expected {
        return Err(format!(
            "bad magic number 0x{magic:08x}: an IDX file of {what} starts with 0x{expected:08x}"
        ));
    }
    Ok(())
}

/// Checks that the body after a header of `header_len` bytes holds exactly `expected`
/// bytes.
fn check_body(bytes: &[u8], header_len: usize, expected: usize, what: &str) -> Result<(), String> {
    let found = bytes.len() - header_len;
    if found < expected {
        return Err(format!(
            "truncated: the header announces {what} ({expected} bytes) but only {found} bytes follow it"
        ));
    }
    if found > expected {
        return Err(format!(
            "{} bytes left over after {what} the header announces",
            found - expected
        ));
    }
    Ok(())
}

fn parse_images(bytes: &[u8]) -> Result<IdxImages, String> {
    const HEADER: usize = 16;
    check_magic(bytes, IMAGES_MAGIC, "u8 images (IDX3)", HEADER)?;
    let count = header_u32(bytes, 1, HEADER)? as usize;
    let rows = header_u32(bytes, 2, HEADER)? as usize;
    let cols = header_u32(bytes, 3, HEADER)? as usize;
    let what = format!("{count} images of {rows}x{cols}");
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| format!("the header announces {what}, too many to address"))?;
    check_body(bytes, HEADER, expected, &what)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[HEADER..].to_vec(),
    })
}

fn parse_labels(bytes: &[u8]) -> Result<Vec<u8>, String> {
    const HEADER: usize = 8;
    check_magic(bytes, LABELS_MAGIC, "u8 labels (IDX1)", HEADER)?;
    let count = header_u32(bytes, 1, HEADER)? as usize;
    check_body(bytes, HEADER, count, &format!("{count} labels"))?;
    Ok(bytes[HEADER..].to_vec())
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
        let img = parse_images(&images(2, 2, 3, 12)).unwrap();
        assert_eq!(
            (img.count, img.rows, img.cols, img.pixels.len()),
            (2, 2, 3, 12)
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let e = parse_images(&images(2, 2, 3, 11)).unwrap_err();
        assert!(
            e.contains("truncated") && e.contains("2 images of 2x3"),
            "{e}"
        );
        let e = parse_images(&images(2, 2, 3, 13)).unwrap_err();
        assert!(e.contains("1 bytes left over"), "{e}");
        let e = parse_images(&images(2, 2, 3, 12)[..10]).unwrap_err();
        assert!(e.contains("IDX header needs 16 bytes"), "{e}");
        let e = parse_labels(&images(2, 2, 3, 12)).unwrap_err();
        assert!(e.contains("bad magic number 0x00000803"), "{e}");
        let e = parse_images(&images(u32::MAX, u32::MAX, u32::MAX, 0)).unwrap_err();
        assert!(e.contains("truncated") || e.contains("too many"), "{e}");
    }
}
