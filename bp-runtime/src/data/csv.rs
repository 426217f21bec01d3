//! Numeric CSV: one sample per line, every field a number, one field the class label.
//! No quoting (a numeric table needs none).
#![forbid(unsafe_code)]

use super::{read_maybe_gz, Dataset};
use crate::{Error, Float, Tensor};
use std::path::Path;

/// How to read a CSV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The column holding the label, counted from 0; `None` is the last column.
    pub label_column: Option<usize>,
    /// Whether the first non-empty line is a header to skip.
    pub has_header: bool,
    /// The field separator.
    pub delimiter: u8,
}

impl Default for CsvOptions {
    /// Label in the last column, no header, comma-separated.
    fn default() -> Self {
        CsvOptions {
            label_column: None,
            has_header: false,
            delimiter: b',',
        }
    }
}

/// Reads a numeric CSV file (gzip or plain) into a data set: `x` is `[N, F]` with the
/// `F` non-label columns in their order, `y` the labels (non-negative integers, `3` or
/// `3.0`). Blank lines are skipped; fields may be padded with spaces.
///
/// Features must be finite: `nan`, `inf` and a number beyond the range of `T` (`1e39` for
/// `f32`) are refused, not read, since one NaN in a batch turns every gradient into NaN.
///
/// Errors name the file, the line and the column: a field that is not a number, a feature
/// that is not finite in `T`, a label that is not a non-negative integer, a line with a
/// different number of fields than the first, rows of one field (a label and no feature),
/// a label column past the last column, a file with no row.
pub fn read_csv<T: Float>(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Dataset<T>, Error> {
    let path = path.as_ref();
    let bytes = read_maybe_gz(path)?;
    let file = path.display().to_string();
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Error::format(&file, format!("not UTF-8 text: {e}")))?;
    let (x, y, features) = parse(text, opts).map_err(|m| Error::format(&file, m))?;
    let x = Tensor::from_vec(&[y.len(), features], x)?;
    Dataset::new(x, y)
}

type Parsed<T> = (Vec<T>, Vec<usize>, usize);

fn parse<T: Float>(text: &str, opts: &CsvOptions) -> Result<Parsed<T>, String> {
    let delimiter = char::from(opts.delimiter);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    if opts.has_header {
        lines.next();
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut width = None;
    for (i, line) in lines {
        let line_no = i + 1;
        let fields = line.split(delimiter).count();
        if fields < 2 {
            return Err(format!(
                "line {line_no} has one field: a row needs at least one feature and the label"
            ));
        }
        let width = *width.get_or_insert(fields);
        if fields != width {
            return Err(format!(
                "line {line_no} has {fields} fields but the first row has {width}"
            ));
        }
        let label_col = opts.label_column.unwrap_or(width - 1);
        if label_col >= width {
            return Err(format!(
                "the label column is {label_col} but rows have only {width} fields (columns 0..{})",
                width - 1
            ));
        }
        for (col, field) in line.split(delimiter).enumerate() {
            let field = field.trim();
            let value: f64 = field
                .parse()
                .map_err(|_| format!("line {line_no}, column {col}: `{field}` is not a number"))?;
            if col == label_col {
                y.push(label(value).ok_or_else(|| {
                    format!(
                        "line {line_no}, column {col}: the label `{field}` is not a non-negative integer below 10^15"
                    )
                })?);
            } else {
                x.push(feature(value).ok_or_else(|| {
                    format!(
                        "line {line_no}, column {col}: the feature `{field}` is not a finite {} number",
                        T::DTYPE.to_lowercase()
                    )
                })?);
            }
        }
    }
    match width {
        Some(w) => Ok((x, y, w - 1)),
        None => Err("no data row".to_string()),
    }
}

/// `v` in `T` if it is finite there (an `f64` like `1e39` is not, in `f32`).
fn feature<T: Float>(v: f64) -> Option<T> {
    let t = T::from_f64(v);
    t.is_finite().then_some(t)
}

fn label(v: f64) -> Option<usize> {
    (v >= 0.0 && v.fract() == 0.0 && v < 1e15).then_some(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_in_any_column_and_header() {
        let opts = CsvOptions {
            label_column: Some(0),
            has_header: true,
            delimiter: b';',
        };
        let (x, y, f) = parse::<f64>("l;a;b\n\n1; 0.5;2\n0;3;4e0\n", &opts).unwrap();
        assert_eq!((x, y, f), (vec![0.5, 2.0, 3.0, 4.0], vec![1, 0], 2));
    }

    #[test]
    fn errors_name_line_and_column() {
        let opts = CsvOptions::default();
        let e = parse::<f32>("1,2,3\n1,x,3\n", &opts).unwrap_err();
        assert_eq!(e, "line 2, column 1: `x` is not a number");
        let e = parse::<f32>("1,2,3\n1,2\n", &opts).unwrap_err();
        assert!(e.contains("line 2 has 2 fields"), "{e}");
        let e = parse::<f32>("1,2,-3\n", &opts).unwrap_err();
        assert!(e.contains("not a non-negative integer"), "{e}");
        let e = parse::<f32>("1,2,2.5\n", &opts).unwrap_err();
        assert!(e.contains("column 2"), "{e}");
        let bad = CsvOptions {
            label_column: Some(5),
            ..CsvOptions::default()
        };
        assert!(parse::<f32>("1,2\n", &bad)
            .unwrap_err()
            .contains("label column is 5"));
        assert_eq!(parse::<f32>("\n\n", &opts).unwrap_err(), "no data row");
        let e = parse::<f32>("1,2\n3\n", &opts).unwrap_err();
        assert!(e.contains("line 2 has one field"), "{e}");
    }

    #[test]
    fn non_finite_features_are_refused() {
        let opts = CsvOptions::default();
        let e = parse::<f64>("1,2,0\n3,NaN,1\n", &opts).unwrap_err();
        assert_eq!(
            e,
            "line 2, column 1: the feature `NaN` is not a finite f64 number"
        );
        let e = parse::<f64>("-inf,2,0\n", &opts).unwrap_err();
        assert!(e.starts_with("line 1, column 0: the feature `-inf`"), "{e}");
        // Finite in f64, infinite in f32.
        assert!(parse::<f64>("1e39,2,0\n", &opts).is_ok());
        let e = parse::<f32>("1e39,2,0\n", &opts).unwrap_err();
        assert!(e.ends_with("is not a finite f32 number"), "{e}");
    }
}
