//! What the examples share: their command line (`--seed N`, `--epochs N`), the path of
//! the bundled data, and printing the per-epoch losses of a training run.
#![allow(dead_code)] // each example uses a part of it

use std::path::PathBuf;
use std::process::ExitCode;

/// The command line of an example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--seed N`: initialization and batch order (default 0).
    pub seed: u64,
    /// `--epochs N`: passes over the training set.
    pub epochs: usize,
}

/// Parses `--seed N` and `--epochs N` (also `--seed=N`), with `default_epochs` when
/// `--epochs` is not given. `--help` prints the usage and exits with 0; anything else
/// prints what is wrong and the usage to stderr and exits with 2.
pub fn parse_args(example: &str, default_epochs: usize) -> Args {
    let usage = format!(
        "usage: cargo run --release --example {example} -- [--seed N] [--epochs N]\n  \
         --seed N     the random seed: initial parameters, batch order (default 0)\n  \
         --epochs N   passes over the training set (default {default_epochs})"
    );
    match parse(std::env::args().skip(1), default_epochs) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{usage}");
            std::process::exit(0);
        }
        Err(message) => {
            eprintln!("error: {message}\n{usage}");
            std::process::exit(2);
        }
    }
}

/// The parser behind [`parse_args`]: `Ok(None)` for `--help`.
fn parse(
    mut args: impl Iterator<Item = String>,
    default_epochs: usize,
) -> Result<Option<Args>, String> {
    let mut out = Args {
        seed: 0,
        epochs: default_epochs,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Ok(None);
        }
        if flag != "--seed" && flag != "--epochs" {
            return Err(format!("unknown argument `{arg}`"));
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        let bad = || format!("`{flag}` needs a non-negative integer, found `{value}`");
        if flag == "--seed" {
            out.seed = value.parse().map_err(|_| bad())?;
        } else {
            out.epochs = value.parse().map_err(|_| bad())?;
            if out.epochs == 0 {
                return Err("`--epochs` must be at least 1".into());
            }
        }
    }
    Ok(Some(out))
}

/// A file of the bundled data sets, found from the repository root whatever the working
/// directory.
pub fn data_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// Prints the error of a failed run and gives the exit code 1.
pub fn fail(e: bp::Error) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// The last line of every example.
pub fn print_accuracy(accuracy: f64) {
    println!("test accuracy: {:.2}%", 100.0 * accuracy);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Option<Args>, String> {
        parse(args.iter().map(|s| s.to_string()), 5)
    }

    #[test]
    fn flags() {
        let a = |seed, epochs| Ok(Some(Args { seed, epochs }));
        assert_eq!(run(&[]), a(0, 5));
        assert_eq!(run(&["--seed", "3", "--epochs=7"]), a(3, 7));
        assert_eq!(run(&["--help"]), Ok(None));
        assert!(run(&["--sed", "3"])
            .unwrap_err()
            .contains("unknown argument"));
        assert!(run(&["--seed"]).unwrap_err().contains("needs a value"));
        assert!(run(&["--seed", "-1"]).is_err());
        assert!(run(&["--epochs", "0"]).is_err());
    }
}
