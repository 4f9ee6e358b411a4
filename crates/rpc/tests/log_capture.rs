//! Captures the library's `tracing` events into a string, for tests that
//! assert what was logged. Each test binary that uses it installs the
//! subscriber once (process-wide).

// Test-only helpers: each binary uses a subset.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Everything logged so far, one event per line.
static LOG: Mutex<String> = Mutex::new(String::new());

/// Appends what the formatter writes to [`LOG`].
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
        log.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the formatter, at `level` and above, as the process-wide
/// subscriber (the first call's level wins).
pub fn capture(level: tracing::Level) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .with_max_level(level)
            .init();
    });
}

/// Everything logged so far.
pub fn logged() -> String {
    LOG.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
