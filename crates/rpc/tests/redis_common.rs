//! What the redis tests share: fibrpc's redis server (the `redis_server`
//! example's key-value store), a real `redis-server` on a free loopback
//! port, and the real tools' paths. A missing binary fails the test
//! loudly: `.ci/run` installs redis-server and redis-tools.

// Test-only helpers, not an API: each test binary uses a subset.
#![allow(dead_code, missing_docs)]

#[path = "../examples/common/redis_kv.rs"]
pub mod redis_kv;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fibrpc::redis::RedisService;
use fibrpc::{Server, ServerOptions};

/// A fibrpc server answering redis with the example's store.
pub fn start_kv_server() -> Server {
    start_redis_server(redis_kv::Kv::default().service())
}

/// A fibrpc server answering redis with `service`.
pub fn start_redis_server(service: RedisService) -> Server {
    let mut server = Server::new(ServerOptions::default());
    server.add_redis_service(service).unwrap();
    server.start("127.0.0.1:0").unwrap();
    server
}

/// The path of a tool, or a loud failure.
pub fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: apt-get install redis-server redis-tools (see .ci/run)");
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real redis-server on a free loopback port with a temporary
/// directory, no persistence; stopped (and its directory removed) when
/// dropped.
pub struct RealRedis {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl RealRedis {
    pub fn start() -> RealRedis {
        let bin = tool("redis-server");
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("fibrpc-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let r = RealRedis { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(addr) {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return r;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server never answered on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` with `stdin`, waiting at most `limit`; returns (success,
/// stdout + stderr). A hung tool is killed and fails the test.
pub fn run_tool(mut cmd: Command, stdin: &[u8], limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the tool");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let mut text = reader.join().unwrap();
    text.push_str(&err_reader.join().unwrap());
    (status.success(), text)
}

/// A raw connection with a read timeout.
pub fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the peer closes (or `limit` bytes); `Err` on a read
/// error (a reset or the timeout).
pub fn read_to_close(s: &mut TcpStream, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 || out.len() > limit {
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Reads exactly `n` bytes.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Encodes a command as RESP.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}
