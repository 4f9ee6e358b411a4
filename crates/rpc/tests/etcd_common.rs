//! A real etcd v3 (Debian's `etcd-server`) on loopback ports with a
//! temporary data directory, for the tests that need one.

// Test-only helpers, not an API: each test binary uses a subset.
#![allow(dead_code, missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fibrpc::channel::naming::EtcdClient;

const ETCD: &str = "/usr/bin/etcd";

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real etcd on 127.0.0.1; killed and its directory removed on drop.
pub struct Etcd {
    dir: PathBuf,
    port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    pub fn new(name: &str) -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (apt-get install -y etcd-server); \
             the etcd naming tests need a real etcd"
        );
        let dir = std::env::temp_dir().join(format!("fibrpc-etcd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut etcd = Etcd {
            dir,
            port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        etcd.start();
        etcd
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts etcd (again, on the same data directory and ports) and
    /// waits until it answers.
    pub fn start(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .unwrap();
        let child = Command::new(ETCD)
            .arg("--name=fibrpc-test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=fibrpc-test={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run etcd");
        self.child = Some(child);
        let client = EtcdClient::new(&self.endpoint()).unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || client.range_prefix("/").is_ok()),
            "etcd did not answer within 20 s; its log: {}",
            std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
        );
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
