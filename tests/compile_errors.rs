//! Every kind of wrong network is a compile error at the user's token. The expected
//! messages live beside each case in `tests/ui/*.stderr` and are reviewed like code;
//! they depend on the compiler version pinned in `rust-toolchain.toml`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
