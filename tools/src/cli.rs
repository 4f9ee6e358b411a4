//! A minimal `--flag VALUE` parser: the binaries take a handful of numeric
//! flags, which is not worth a dependency.

use std::fmt::Display;
use std::str::FromStr;

/// The arguments after the program name, consumed flag by flag.
pub struct Args {
    rest: std::vec::IntoIter<String>,
    usage: &'static str,
}

impl Args {
    /// Takes the process arguments; `usage` is printed on any error.
    pub fn from_env(usage: &'static str) -> Self {
        let rest: Vec<String> = std::env::args().skip(1).collect();
        Self {
            rest: rest.into_iter(),
            usage,
        }
    }

    /// The next flag, or `None` when all are consumed.
    pub fn next_flag(&mut self) -> Option<String> {
        self.rest.next()
    }

    /// Parses the value that follows `flag`; exits with the usage on error.
    pub fn value<T: FromStr>(&mut self, flag: &str) -> T
    where
        T::Err: Display,
    {
        let Some(raw) = self.rest.next() else {
            self.fail(&format!("{flag} needs a value"));
        };
        raw.parse()
            .unwrap_or_else(|e| self.fail(&format!("bad value {raw:?} for {flag}: {e}")))
    }

    /// Handles a flag the caller does not know: `--help`/`-h` prints the
    /// usage and exits 0, anything else is an error.
    pub fn unknown(&self, flag: &str) -> ! {
        if flag == "--help" || flag == "-h" {
            println!("{}", self.usage);
            std::process::exit(0);
        }
        self.fail(&format!("unknown flag {flag:?}"))
    }

    /// Prints `msg` and the usage to stderr and exits with status 2.
    pub fn fail(&self, msg: &str) -> ! {
        eprintln!("error: {msg}\n{}", self.usage);
        std::process::exit(2);
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

/// Parses `--port P` and `--workers W` for a peer server of the benches,
/// with defaults (`--port 0` = any free port, reported by
/// [`announce_listening`]; 2 workers).
pub fn server_flags(usage: &'static str, default_port: u16) -> (u16, usize) {
    let mut args = Args::from_env(usage);
    let (mut port, mut workers) = (default_port, 2);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--port" | "-p" => port = args.value(&flag),
            "--workers" | "-w" => workers = args.value(&flag),
            other => args.unknown(other),
        }
    }
    if workers == 0 {
        args.fail("--workers must be at least 1");
    }
    (port, workers)
}
