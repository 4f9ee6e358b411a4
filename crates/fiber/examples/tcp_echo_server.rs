//! Raw TCP echo server: one fiber per connection, plain blocking code.
//!
//! ```text
//! cargo run --release -p fibrpc-fiber --example tcp_echo_server -- --port 7000 --workers 2
//! ```
//!
//! Each connection gets a fiber that reads up to 4 KiB and writes it back
//! until the peer closes. `benches/net/run.sh` drives it against tokio and
//! may servers with the same semantics.

use fiber::net::{TcpListener, TcpStream};
use fibrpc_fiber as fiber;
use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    let mut port = 7000u16;
    let mut workers = None;
    let mut stats = false;
    let mut migratable = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--workers" => workers = args.next().and_then(|v| v.parse().ok()),
            "--stats" => stats = true,
            "--migratable" => migratable = true,
            other => panic!(
                "unknown argument {other}; use --port N --workers N [--stats] [--migratable]"
            ),
        }
    }
    let mut builder = fiber::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    if stats {
        let rt = rt.clone();
        std::thread::spawn(move || print_stats(&rt));
    }
    rt.block_on(move || {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            // Out of descriptors is handled inside `accept` (it backs off);
            // anything else ends this accept, not the server.
            match listener.accept() {
                Ok((conn, _)) => spawn_conn(conn, migratable),
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
}

/// One fiber per connection. With `--migratable` the fiber may resume on
/// any worker (measured in BENCHMARKS.md against the pinned default).
fn spawn_conn(conn: TcpStream, migratable: bool) {
    let mut b = fiber::Builder::new();
    if migratable {
        // SAFETY: `serve` holds nothing tied to its OS thread across its
        // blocking reads and writes: a stack buffer and the stream.
        b = unsafe { b.migratable() };
    }
    if let Err(e) = b.spawn(move || serve(conn)) {
        eprintln!("cannot start a connection fiber: {e}");
    }
}

/// Echoes until EOF or an error (a reset peer ends only this connection).
fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    // On the heap, like the peers' task-owned buffers: the fiber's stack stays
    // one page deep, so resuming it touches less cold memory.
    let mut buf = vec![0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Once a second: per-worker fiber switches, parks and steals (`--stats`).
fn print_stats(rt: &fiber::Runtime) {
    let mut last = rt.stats();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let now = rt.stats();
        let line: Vec<String> = now
            .workers
            .iter()
            .zip(&last.workers)
            .enumerate()
            .map(|(i, (n, l))| {
                format!(
                    "w{i}: {} switches {} parks {} steals",
                    n.switches - l.switches,
                    n.parks - l.parks,
                    n.steals - l.steals
                )
            })
            .collect();
        eprintln!("{}", line.join(" | "));
        last = now;
    }
}
