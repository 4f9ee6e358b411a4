//! A server child process for the bench smoke tests: started with its
//! stdout piped, its first line (the address it announces) read, killed
//! when dropped however the test ends.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// See the module docs.
pub struct ServerChild {
    child: Child,
    first_line: String,
}

impl ServerChild {
    /// Starts `exe` with `args` and reads the first line it prints.
    ///
    /// # Panics
    /// If it cannot start or exits before printing a line.
    pub fn start(exe: &str, args: &[&str]) -> ServerChild {
        let mut child = Command::new(exe)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {exe}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .expect("reading the server's first line");
        ServerChild { child, first_line }
    }

    /// The first line after `prefix` (`"listening on "` gives the address).
    ///
    /// # Panics
    /// If the line does not start with `prefix`.
    pub fn announced(&self, prefix: &str) -> &str {
        self.first_line
            .trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("unexpected first line {:?}", self.first_line))
    }

    /// The process id (for `--server-pid`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
