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

/// Installs, as the process-wide `tracing` subscriber, one that writes
/// every event to stderr (`LEVEL target: message field=value ...`): what a
/// child process logs becomes part of its captured stderr.
pub fn log_to_stderr() {
    use std::fmt::Write as _;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    struct Line(String);
    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                let _ = write!(self.0, " {value:?}");
            } else {
                let _ = write!(self.0, " {}={value:?}", field.name());
            }
        }
    }

    struct Stderr;
    impl Subscriber for Stderr {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let m = event.metadata();
            let mut line = Line(format!("{} {}:", m.level(), m.target()));
            event.record(&mut line);
            eprintln!("{}", line.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    let _ = tracing::subscriber::set_global_default(Stderr);
}
