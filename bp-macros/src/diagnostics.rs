//! Collects every semantic error of one invocation so the user sees them all at once
//! (the habit of serde_derive's `Ctxt`).

use proc_macro2::{Span, TokenStream};
use std::cell::RefCell;
use std::fmt::Display;

/// The error sink of one `network!` invocation.
#[derive(Default)]
pub struct Diagnostics {
    errors: RefCell<Vec<syn::Error>>,
}

impl Diagnostics {
    /// Records an error at `span`.
    pub fn error(&self, span: Span, message: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new(span, message));
    }

    /// Records an error spanning the tokens of `tokens`.
    pub fn error_at(&self, tokens: &dyn quote::ToTokens, message: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens, message));
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    /// All recorded errors as `compile_error!` invocations.
    pub fn into_compile_errors(self) -> TokenStream {
        self.errors
            .into_inner()
            .into_iter()
            .map(syn::Error::into_compile_error)
            .collect()
    }
}

/// The known name closest to `name` by edit distance, if it is close enough to be a
/// likely typo.
pub fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|&(d, k)| d <= (k.len().max(name.len()) / 2).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// A `; did you mean `x`?` suffix, or nothing.
pub fn did_you_mean<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(name, known) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        assert_eq!(nearest("lienar", ["linear", "relu"]), Some("linear"));
        assert_eq!(nearest("fc", ["fc1", "h"]), Some("fc1"));
        assert_eq!(nearest("zzzzzz", ["linear", "relu"]), None);
    }
}
