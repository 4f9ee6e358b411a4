//! The classic non-blocking-I/O teaching server: reads lines and answers
//! each complete line ROT13-encoded.
//!
//! ```text
//! cargo run --release -p fibrpc-fiber --example rot13_server -- --port 7001
//! printf 'Hello, world\n' | nc -q1 127.0.0.1 7001      # Uryyb, jbeyq
//! ```
//!
//! In the C original this is a state machine per connection over `select`
//! or libevent callbacks. Here it is a loop in a fiber: reads suspend the
//! fiber, and thousands of connections share two workers.

use fiber::net::{TcpListener, TcpStream};
use fibrpc_fiber as fiber;
use std::io::{BufRead, BufReader, Read, Write};

/// Longest line accepted; a peer sending more without a newline is cut off.
const MAX_LINE: usize = 16 * 1024;

fn main() -> std::io::Result<()> {
    let mut port = 7001u16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            other => panic!("unknown argument {other}; use --port N"),
        }
    }
    fiber::Runtime::global().block_on(move || {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (conn, _) = listener.accept()?;
            drop(fiber::spawn(move || {
                if let Err(e) = serve(conn) {
                    eprintln!("rot13: connection ended: {e}");
                }
            }));
        }
    })
}

fn serve(conn: TcpStream) -> std::io::Result<()> {
    let (r, mut w) = conn.into_split();
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            if n >= MAX_LINE {
                return Err(std::io::Error::other("line too long"));
            }
            return Ok(()); // EOF in the middle of a line: nothing to answer
        }
        rot13(&mut line);
        w.write_all(&line)?;
    }
}

/// Rotates ASCII letters by 13 places, in place.
fn rot13(bytes: &mut [u8]) {
    for b in bytes {
        *b = match *b {
            b'a'..=b'z' => (*b - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (*b - b'A' + 13) % 26 + b'A',
            other => other,
        };
    }
}
