//! The code shown in README.md, compiled and run by `cargo test`.
//!
//! The lines between `README-BEGIN` and `README-END` are the README's first code block,
//! character for character (`readme_shows_this_code` checks it), so the README's example
//! always compiles and works. Likewise the `cargo expand` excerpt of the README must still
//! be part of the macro's snapshot of the same network
//! (`bp-macros/tests/snapshots/xor.rs`), and the compile errors it shows must be those of
//! `tests/ui/three-errors.rs`.

// README-BEGIN
use bp::loss::binary_cross_entropy_with_logits;
use bp::optim::{Adam, Optimizer};
use bp::Tensor;

bp::network! {
    /// The XOR network: 2 inputs → 8 tanh units → 1 logit.
    pub struct Xor {
        input x: [2];
        let fc1 = linear(x, 8);    // fc1.weight [8, 2], fc1.bias [8]
        let h = tanh(fc1);
        let fc2 = linear(h, 1);    // fc2.weight [1, 8], fc2.bias [1]
        output fc2;
    }
}

fn main() -> Result<(), bp::Error> {
    let x = Tensor::from_vec(&[4, 2], vec![0., 0., 0., 1., 1., 0., 1., 1.])?;
    let y = Tensor::from_vec(&[4, 1], vec![0., 1., 1., 0.])?;
    let mut net = Xor::new(0); // seeded, PyTorch's default initialization
    let mut opt = Adam::new(0.05);
    let mut d_logits = Tensor::default(); // ∂J/∂logits, written by the loss
    for _ in 0..500 {
        let logits = net.forward(&x)?; // keeps what backward needs
        binary_cross_entropy_with_logits(logits, &y, &mut d_logits)?;
        net.backward(&d_logits)?; // the gradient of every parameter
        opt.step(&mut net)?;
    }
    let logits = net.predict(&x)?; // inference with `&self` only
    let class: Vec<bool> = logits.iter().map(|&l| l > 0.0).collect();
    assert_eq!(class, [false, true, true, false]);
    Ok(())
}
// README-END

#[test]
fn readme_example_learns_xor() {
    main().expect("the README example runs");
}

/// The text between two marker lines of `text` (the markers excluded).
fn between<'a>(text: &'a str, begin: &str, end: &str) -> &'a str {
    let start = text.find(begin).expect("begin marker") + begin.len();
    let len = text[start..].find(end).expect("end marker");
    text[start..start + len].trim_start_matches('\n')
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    std::fs::read_to_string(path).expect("README.md at the repository root")
}

#[test]
fn readme_shows_this_code() {
    let this = include_str!("readme_example.rs");
    let code = between(this, "// README-BEGIN\n", "// README-END\n");
    let block = format!("```rust\n{code}```\n");
    assert!(
        readme().contains(&block),
        "README.md's first code block differs from the code between the markers of \
         tests/readme_example.rs; copy that code into the README"
    );
}

#[test]
fn readme_expand_excerpt_is_current() {
    let readme = readme();
    let excerpt = between(&readme, "<!-- expand-begin -->\n", "<!-- expand-end -->");
    // Four backticks: the excerpt holds the ``` fences of the generated doc comment.
    let excerpt = between(excerpt, "````rust\n", "````");
    let snapshot = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bp-macros/tests/snapshots/xor.rs"
    );
    let snapshot = std::fs::read_to_string(snapshot).expect("the macro's xor snapshot");
    for line in excerpt.lines().map(str::trim) {
        assert!(
            snapshot.contains(line),
            "the README's `cargo expand` excerpt has the line\n{line}\nwhich the code \
             generated for the XOR network no longer contains; run `cargo expand --example \
             xor` and update the excerpt"
        );
    }
}

#[test]
fn readme_compile_errors_are_current() {
    let readme = readme();
    let shown = between(&readme, "<!-- ui-begin -->\n", "<!-- ui-end -->");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/three-errors");
    let stderr = std::fs::read_to_string(format!("{dir}.stderr")).expect("the .stderr");
    let source = std::fs::read_to_string(format!("{dir}.rs")).expect("the case");
    let network = source
        .trim_end()
        .trim_end_matches("fn main() {}")
        .trim_end();
    assert!(
        shown.contains(&format!("```rust\n{network}\n```"))
            && shown.contains(&format!("```text\n{}\n```", stderr.trim_end())),
        "the README's compile-error example differs from tests/ui/three-errors.{{rs,stderr}}; \
         copy them into the README"
    );
}
