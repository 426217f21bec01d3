//! Crash-safe checkpoints: a child process saves versions of a network in a loop and is
//! killed (SIGKILL on Unix) at varying moments, 60 times; after every kill the checkpoint
//! must load, and hold one complete version: every parameter filled with the same number.
//!
//! The child is this test binary run again on the ignored test `child_saves_in_a_loop`,
//! told where to write by the environment variable `BP_KILL_TEST_PATH`.

use bp::Network;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

bp::network! {
    /// About 66,000 parameters, so that one save takes long enough to be interrupted.
    struct Saver {
        input x: [128];
        let fc1 = linear(x, 256);
        let h = relu(fc1);
        let fc2 = linear(h, 128);
        output fc2;
    }
}

const PATH_VAR: &str = "BP_KILL_TEST_PATH";
const KILLS: usize = 60;

/// Fills every parameter with `version`.
fn set_version(net: &mut Saver, version: f32) {
    for name in Saver::new(0).param_names() {
        net.param_mut(name).unwrap().fill(version);
    }
}

/// The single version the loaded network holds, or a description of what is wrong.
fn version_of(net: &Saver) -> Result<f32, String> {
    let mut version = None;
    for name in net.param_names() {
        for &v in net.param(name).unwrap().iter() {
            match version {
                None => version = Some(v),
                Some(first) if first != v => {
                    return Err(format!("`{name}` holds {v} beside {first}: versions mixed"))
                }
                Some(_) => {}
            }
        }
    }
    version.ok_or_else(|| "no parameters".to_string())
}

#[test]
#[ignore = "the child process of checkpoint_survives_kills; runs only when that test starts it"]
fn child_saves_in_a_loop() {
    let Some(path) = std::env::var_os(PATH_VAR) else {
        return;
    };
    let mut net = Saver::new(0);
    for version in 1.. {
        set_version(&mut net, version as f32);
        net.save(&path).unwrap();
    }
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child wrote no checkpoint in 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn checkpoint_survives_kills() {
    // One directory per process: two test runs at once (two `cargo test` in one target
    // directory) must not remove each other's checkpoint.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("checkpoint_kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("net.safetensors");
    let exe = std::env::current_exe().unwrap();
    let mut seen = Vec::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64; // xorshift: kill delays of 0–40 ms
    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_saves_in_a_loop",
                "--ignored",
                "--nocapture",
            ])
            .env(PATH_VAR, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(&path);
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        std::thread::sleep(Duration::from_micros(state % 40_000));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "kill {kill}: the child ended by itself");

        let mut net = Saver::new(1);
        net.load(&path)
            .unwrap_or_else(|e| panic!("kill {kill}: the checkpoint does not load: {e}"));
        let version = version_of(&net).unwrap_or_else(|e| panic!("kill {kill}: {e}"));
        assert!(version >= 1.0, "kill {kill}: version {version}");
        seen.push(version);
    }
    // The kills fell at different moments: more than one version was read back.
    seen.sort_by(f32::total_cmp);
    seen.dedup();
    assert!(seen.len() > 1, "every kill read the same version {seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
