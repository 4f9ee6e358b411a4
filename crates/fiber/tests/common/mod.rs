//! Helpers shared by the integration tests.

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
