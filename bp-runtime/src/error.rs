//! The one error type of the runtime and of generated code.
#![forbid(unsafe_code)]

use std::fmt;

/// Everything that can go wrong at run time, each variant naming the thing that is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A tensor handed to a network or a function has the wrong shape.
    Shape {
        /// What was checked, e.g. "input `x`" or "gradient of output `fc2`".
        what: String,
        /// The shape that was expected (batch dimension first where there is one).
        expected: Vec<usize>,
        /// The shape that was received.
        found: Vec<usize>,
    },
    /// Data whose length does not fit the shape it is given.
    Length {
        /// What was built.
        what: String,
        /// Elements the shape asks for.
        expected: usize,
        /// Elements received.
        found: usize,
    },
    /// An argument out of its domain (a class index ≥ the number of classes, a bad
    /// hyperparameter, `backward` before `forward`, …).
    Invalid(String),
    /// A file could not be read or written.
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Memory for a tensor could not be allocated (reported by the fallible constructors,
    /// such as a network's `try_new`, instead of aborting the process).
    Alloc {
        /// The tensor, e.g. "parameter `fc1.weight` [1000000, 4096]".
        what: String,
        /// The bytes asked for (`usize::MAX` when the size itself overflows).
        bytes: usize,
    },
    /// A NaN or an infinity, found by a network's finite-value check
    /// (`set_check_finite(true)`): the first in the order the pass computes.
    NonFinite {
        /// The pass: "forward", "backward" or "predict".
        pass: String,
        /// The tensor in the user's terms: "`h`", "the residual of `h`", "the gradient of
        /// `fc1.weight`".
        what: String,
        /// The element, batch index first.
        index: Vec<usize>,
        /// The value found (NaN, inf or -inf).
        value: f64,
    },
    /// A file was read but its content is malformed or does not fit the network.
    Format {
        /// The path or a description of the source.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// A shape error; `what` names the tensor in the user's terms.
    pub fn shape(what: impl Into<String>, expected: &[usize], found: &[usize]) -> Error {
        Error::Shape {
            what: what.into(),
            expected: expected.to_vec(),
            found: found.to_vec(),
        }
    }

    /// An invalid-argument error.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::Invalid(message.into())
    }

    /// A malformed-file error.
    pub fn format(path: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Shape {
                what,
                expected,
                found,
            } => write!(
                f,
                "{what} has shape {found:?} but {expected:?} was expected"
            ),
            Error::Length {
                what,
                expected,
                found,
            } => write!(
                f,
                "{what}: the shape holds {expected} elements but {found} were given"
            ),
            Error::Invalid(message) => f.write_str(message),
            Error::Io { path, source } => write!(f, "{path}: {source}"),
            Error::Alloc { what, bytes } => {
                write!(f, "could not allocate {bytes} bytes for {what}")
            }
            Error::NonFinite {
                pass,
                what,
                index,
                value,
            } => write!(
                f,
                "{pass}: {what} is {value} at {index:?}, the first non-finite value of the pass"
            ),
            Error::Format { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
