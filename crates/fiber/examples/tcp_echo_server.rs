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
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--workers" => workers = args.next().and_then(|v| v.parse().ok()),
            other => panic!("unknown argument {other}; use --port N --workers N"),
        }
    }
    let mut builder = fiber::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    rt.block_on(move || {
        let listener = TcpListener::bind(("0.0.0.0", port))?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (conn, _) = listener.accept()?;
            drop(fiber::spawn(move || serve(conn)));
        }
    })
}

/// Echoes until EOF or an error (a reset peer ends only this connection).
fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut buf = [0u8; 4096];
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
