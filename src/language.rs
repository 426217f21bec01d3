// The language reference of `network!`: documentation only. It is written in
// `language.md` so that its tables read as plain markdown; its code blocks run as doctests
// of this module (`cargo test -p bp --doc`).
#![doc = include_str!("language.md")]
