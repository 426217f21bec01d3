//! The proptest configuration of the crate's property tests: a fixed number of cases and
//! a fixed seed, so a run takes the same few seconds and a failure replays by running the
//! test again. `PROPTEST_CASES` and `PROPTEST_RNG_SEED`, when set, still take precedence
//! (a longer or differently seeded run by hand). No regression files are written.
#![forbid(unsafe_code)]

use proptest::test_runner::{Config, RngSeed};

/// The seed of every property test that the environment does not override.
pub(crate) const SEED: u64 = 0x6270_5f70_726f_7073; // "bp_props"

/// `cases` cases from the fixed seed, unless the environment says otherwise.
pub(crate) fn config(cases: u32) -> Config {
    let env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            cases
        },
        rng_seed: match env.rng_seed {
            RngSeed::Random => RngSeed::Fixed(SEED),
            fixed => fixed,
        },
        failure_persistence: None,
        ..env
    }
}
