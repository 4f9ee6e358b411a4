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
