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

/// An event's fields in order, `message` included: `Debug` values
/// formatted, strings as they are.
#[derive(Clone, Debug)]
pub struct Fields(pub Vec<(&'static str, String)>);

impl Fields {
    /// The value of the field `name`, if the event has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name(), value.to_string()));
    }
}

/// Installs, as the process-wide `tracing` subscriber, one that hands every
/// event (its metadata and fields) to `f`; spans are ignored. Fails if a
/// global subscriber is already set.
pub fn on_event<F>(f: F) -> Result<(), tracing::subscriber::SetGlobalDefaultError>
where
    F: Fn(&'static tracing::Metadata<'static>, Fields) + Send + Sync + 'static,
{
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    struct OnEvent<F>(F);
    impl<F> Subscriber for OnEvent<F>
    where
        F: Fn(&'static Metadata<'static>, Fields) + Send + Sync + 'static,
    {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            (self.0)(event.metadata(), fields);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    tracing::subscriber::set_global_default(OnEvent(f))
}

/// Installs, as the process-wide `tracing` subscriber, one that writes
/// every event to stderr (`LEVEL target: message field=value ...`): what a
/// child process logs becomes part of its captured stderr.
pub fn log_to_stderr() {
    use std::fmt::Write as _;

    let _ = on_event(|m, fields| {
        let mut line = format!("{} {}:", m.level(), m.target());
        for (name, value) in fields.0 {
            let _ = if name == "message" {
                write!(line, " {value}")
            } else {
                write!(line, " {name}={value}")
            };
        }
        eprintln!("{line}");
    });
}

/// Reads `r` (non-blocking) until it would block or reaches the end,
/// passing each read's byte count to `on_read`.
pub fn drain(mut r: impl std::io::Read, mut on_read: impl FnMut(usize)) {
    use std::io::ErrorKind;

    let mut buf = [0u8; 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => on_read(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The name libtest knows the test `name` by, defined in the module
/// `module` (its `module_path!()`): the same file runs standalone
/// (`net_tcp::name` is `name`) and included in another test binary
/// (`net_drivers::net_tcp::name` is `net_tcp::name`).
pub fn test_path(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, within)) => format!("{within}::{name}"),
        None => name.to_string(),
    }
}

/// Makes the I/O driver `driver` (before any registration of this
/// process), and checks it runs. For epoll nothing is done: the default
/// (or the environment's choice) stands, as in the suites' own binaries.
pub fn use_driver(driver: fibrpc_fiber::io::IoDriver) {
    use fibrpc_fiber::io::{active_driver, configure, Config, IoDriver};
    if driver == IoDriver::Epoll {
        return;
    }
    // Err: an earlier test of this process configured it already.
    let _ = configure(Config {
        driver,
        ..Config::default()
    });
    assert_eq!(
        active_driver().expect("the I/O driver starts"),
        uring_outcome(),
        "io_uring was refused by this kernel (see the warning logged)"
    );
}

/// What asking for io_uring must give here: io_uring, unless the test
/// environment says this kernel has none (`FIBRPC_EXPECT_IO_URING=0`,
/// which `.ci/run` sets from its own probe of `io_uring_setup`), where
/// the fallback to epoll is what is tested.
pub fn uring_outcome() -> fibrpc_fiber::io::IoDriver {
    if std::env::var("FIBRPC_EXPECT_IO_URING").as_deref() == Ok("0") {
        eprintln!(
            "FIBRPC_EXPECT_IO_URING=0: this kernel has no io_uring; checking the fallback to epoll"
        );
        fibrpc_fiber::io::IoDriver::Epoll
    } else {
        fibrpc_fiber::io::IoDriver::Uring
    }
}
