//! Command-line helpers shared by the tools and the bench binaries, which
//! parse their flags with clap: value parsers for seconds and counts, the
//! `--port`/`--workers` flags of the peer servers, and the line the bench
//! scripts wait for.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

/// Parses seconds (fractions allowed: `--warmup 0.5`); negative, NaN or
/// huge values are errors.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}

/// Parses a count that must be at least 1.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>().map_err(|e| format!("{e}"))? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// Prints the line the bench scripts and smoke tests wait for
/// (`listening on ADDR`) and flushes it: stdout is a pipe or file there,
/// so it would otherwise sit in a buffer.
pub fn announce_listening(addr: std::net::SocketAddr) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout only means nobody waits for the line; keep serving.
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
}

/// The flags of a peer server of the benches.
#[derive(Parser, Debug)]
struct ServerFlags {
    /// The port (0: any free port, printed as `listening on ADDR`).
    #[arg(short, long)]
    port: Option<u16>,
    /// Worker threads.
    #[arg(short, long, default_value_t = 2, value_parser = at_least_one)]
    workers: usize,
}

/// Parses `--port P` and `--workers W` for a peer server of the benches,
/// with defaults (`--port 0` = any free port, reported by
/// [`announce_listening`]; 2 workers). `usage` is shown by `--help` and
/// on errors, which exit with status 2.
pub fn server_flags(usage: &'static str, default_port: u16) -> (u16, usize) {
    let usage = usage.strip_prefix("usage: ").unwrap_or(usage);
    let name = usage.split_whitespace().next().unwrap_or("server");
    let matches = ServerFlags::command()
        .name(name)
        .override_usage(usage)
        .get_matches();
    let flags = ServerFlags::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    (flags.port.unwrap_or(default_port), flags.workers)
}
