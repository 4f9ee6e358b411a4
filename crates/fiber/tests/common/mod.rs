//! Helpers shared by the integration tests.
// Each test binary uses a different subset.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Re-runs this test binary with only `test` selected and `env=1` set, so a
/// test can do in a child process what would kill or starve the parent
/// (abort on stack overflow, an address-space limit).
pub fn run_child(test: &str, env: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap()
}

/// Like [`run_child`] with several environment variables.
pub fn run_child_with(test: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}
