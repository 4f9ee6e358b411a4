//! A Python grpcio server from `tests/data/grpc/` as a child process,
//! on a free loopback port it reports (`LISTENING PORT`), killed (and
//! its temp dir removed) when dropped. Shared by the gRPC client suites.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The grpcio server, killed when dropped.
pub struct PyServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
}

impl PyServer {
    /// Runs `tests/data/grpc/SCRIPT` with the example protos, a temp dir
    /// named after `name`, and `extra` arguments (a certificate and key:
    /// TLS); fails loudly if python3 or grpcio is missing.
    pub fn start(script: &str, name: &str, extra: &[&Path]) -> PyServer {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = std::env::temp_dir().join(format!(
            "fibrpc-{}-{}-{name}",
            script.trim_end_matches(".py"),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("python3")
            .arg(here.join("tests/data/grpc").join(script))
            .arg(here.join("../example/proto"))
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 (is it installed?): {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("LISTENING ") {
                    let _ = tx.send(p.trim().parse::<u16>().unwrap());
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "the grpcio server did not start ({status:?}; is `pip install grpcio \
                     grpcio-tools` done?)"
                );
            }
        };
        PyServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
