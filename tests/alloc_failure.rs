//! Allocating a network never aborts the process: `try_new` returns a failed allocation
//! as an error naming the tensor, and `new` turns it into a panic with that message.
//!
//! A child process (this test binary run again on the ignored test `child_allocates`)
//! lowers its address-space limit to 1 GiB with `setrlimit` and builds a network whose
//! one weight needs 4 GiB, so the failure is certain on any machine, whatever its memory
//! and overcommit settings.
#![cfg(unix)]

use std::process::Command;

bp::network! {
    /// A 16,384 × 65,536 weight: 2^30 f32 values, 4 GiB.
    struct Huge {
        input x: [65536];
        let fc = linear(x, 16384);
        output fc;
    }
}

bp::network! {
    /// Small to build; its output for a batch of 8,192 needs 2 GiB.
    struct Wide {
        input x: [1];
        let fc = linear(x, 65536);
        output fc;
    }
}

bp::network! {
    struct Small {
        input x: [4];
        let fc = linear(x, 3);
        output fc;
    }
}

const CHILD_VAR: &str = "BP_ALLOC_TEST_CHILD";

#[test]
#[ignore = "the child process of huge_network_is_an_error_not_an_abort"]
fn child_allocates() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    let limit = libc::rlimit {
        rlim_cur: 1 << 30,
        rlim_max: 1 << 30,
    };
    // SAFETY: setrlimit reads the struct we pass and changes only this process's limit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let Err(e) = Huge::try_new(0) else {
        panic!("a 4 GiB weight allocated under a 1 GiB limit");
    };
    println!("try_new: {e}");
    let small = Small::try_new(0).expect("a small network still allocates");
    println!(
        "small: {} weights",
        bp::Network::param(&small, "fc.weight").unwrap().len()
    );
    let Err(panic) = std::panic::catch_unwind(|| Huge::new(0)) else {
        panic!("new did not panic");
    };
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    println!("new: {message}");
    // A batch too large for memory: forward and predict report it, and a batch that fits
    // still runs afterwards.
    let mut wide = Wide::try_new(0).expect("a small network");
    let x = bp::Tensor::<f32>::zeros(&[8192, 1]);
    println!("forward: {}", wide.forward(&x).unwrap_err());
    println!("predict: {}", wide.predict(&x).unwrap_err());
    let ok = wide.forward(&bp::Tensor::zeros(&[2, 1])).is_ok();
    println!("small batch: {ok}");
}

#[test]
fn huge_network_is_an_error_not_an_abort() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_allocates", "--ignored", "--nocapture"])
        .env(CHILD_VAR, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let expected = "could not allocate 4294967296 bytes for parameter `fc.weight` [16384, 65536]";
    assert!(stdout.contains(&format!("try_new: {expected}")), "{stdout}");
    assert!(stdout.contains("small: 12 weights"), "{stdout}");
    assert!(stdout.contains(&format!("new: {expected}")), "{stdout}");
    let batch = "could not allocate 2147483648 bytes for the value of `fc`";
    assert!(stdout.contains(&format!("forward: {batch}")), "{stdout}");
    assert!(stdout.contains(&format!("predict: {batch}")), "{stdout}");
    assert!(stdout.contains("small batch: true"), "{stdout}");
}
