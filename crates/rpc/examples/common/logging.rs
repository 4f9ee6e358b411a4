//! The examples print the library's log events: fibrpc logs through
//! `tracing`, and shows nothing until a subscriber is installed.

/// Installs a subscriber writing to stderr; `RUST_LOG` sets the level
/// (warnings and errors by default).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
