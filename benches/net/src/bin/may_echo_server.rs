//! `may_echo_server`: the may peer of fibrpc's `tcp_echo_server`.
//!
//! ```text
//! may_echo_server [--port P (7002)] [--workers W (2)]
//! ```
//!
//! W may workers; one coroutine per connection reads up to 4 KiB and writes
//! it back, with TCP_NODELAY. may's `TcpListener::bind` already listens with
//! a backlog of 1024 (what fibrpc uses) and sets SO_REUSEPORT, so a stale
//! server left on the same port would share the load: `run.sh` waits for
//! each server to exit before starting the next. Prints `listening on ADDR`
//! once it accepts.

use fibrpc_bench_net::{announce_listening, server_flags, ECHO_BUF_SIZE};
use may::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};

const USAGE: &str = "usage: may_echo_server [--port P (7002)] [--workers W (2)]";

fn main() -> std::io::Result<()> {
    let (port, workers) = server_flags(USAGE, 7002);
    may::config().set_workers(workers);
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    announce_listening(listener.local_addr()?);
    // The accept loop runs in a coroutine so that, as with the other
    // servers, all work happens on the W workers.
    // SAFETY: may's `go!` is unsafe because a coroutine must not overflow
    // its stack nor hold thread-locals across a yield. The accept loop keeps
    // a few words on its stack and touches no thread-locals.
    let acceptor = unsafe { may::coroutine::spawn(move || accept_loop(&listener)) };
    acceptor
        .join()
        .map_err(|_| std::io::Error::other("accept loop panicked"))
}

fn accept_loop(listener: &TcpListener) {
    for stream in listener.incoming() {
        match stream {
            // SAFETY: as above; `echo` keeps its 4 KiB buffer on may's
            // default 32 KiB stack (0x1000 words) and uses no thread-locals.
            Ok(stream) => drop(unsafe { may::coroutine::spawn(move || echo(stream)) }),
            // EMFILE and friends: say so and keep serving the others.
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

fn echo(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = [0u8; ECHO_BUF_SIZE];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
