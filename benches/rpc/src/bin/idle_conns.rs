//! Opens `--conns` TCP connections to `--addr`, sends nothing on them, and
//! holds them for `--hold` seconds: the load of the idle-connection memory
//! measurement (`run.sh --idle`). It raises no limit itself; the shell's
//! `ulimit -n` must allow the connections (one descriptor each).
//!
//!     idle_conns --addr 127.0.0.1:8001 [--conns 10000] [--hold 5]
//!
//! With `--baidu-echo`, each connection first makes one baidu_std
//! `example.EchoService.Echo` call (and reads the answer), so the figure
//! covers connections that did work and went idle (fibrpc servers only).
//!
//! Prints `HOLDING <connected> <failed>` once every connect has been tried,
//! then exits after the hold. Against a gRPC server these are raw TCP
//! connections without the HTTP/2 preface: the server keeps each waiting
//! for it.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fibrpc_bench_rpc::cli::parse_secs;

/// Holds N idle TCP connections to a server.
#[derive(clap::Parser)]
#[command(name = "idle_conns")]
struct Flags {
    /// The server, HOST:PORT.
    #[arg(short, long)]
    addr: SocketAddr,
    /// Connections to open.
    #[arg(short, long, default_value_t = 10_000)]
    conns: usize,
    /// Seconds to hold them.
    #[arg(short = 'd', long, default_value = "5", value_parser = parse_secs)]
    hold: Duration,
    /// Make one baidu_std echo call on each first.
    #[arg(long)]
    baidu_echo: bool,
}

fn main() {
    let flags = <Flags as clap::Parser>::parse();
    let (addr, conns, hold, echo_first) = (flags.addr, flags.conns, flags.hold, flags.baidu_echo);
    let started = Instant::now();
    let mut held = Vec::with_capacity(conns);
    let mut failed = 0usize;
    let request = echo_first.then(echo_frame);
    for _ in 0..conns {
        let connected =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(
                |s| match &request {
                    Some(frame) => call_once(s, frame),
                    None => Ok(s),
                },
            );
        match connected {
            Ok(stream) => held.push(stream),
            Err(e) => {
                if failed < 5 {
                    eprintln!("connect {} failed: {e}", held.len() + failed);
                }
                failed += 1;
            }
        }
    }
    println!(
        "HOLDING {} {failed} (connected in {:.2} s)",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::thread::sleep(hold);
    drop(held);
}

/// One baidu_std Echo request, encoded by fibrpc.
fn echo_frame() -> Vec<u8> {
    use fibrpc::protocol::baidu_std::{encode, RpcMeta, RpcRequestMeta};
    use fibrpc_example::EchoRequest;
    let meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: "example.EchoService".into(),
            method_name: "Echo".into(),
            ..Default::default()
        }),
        correlation_id: Some(1),
        ..Default::default()
    };
    let payload = fibrpc::codec::encode(&EchoRequest {
        message: "hi".into(),
    });
    let mut out = fibrpc::IOBuf::new();
    encode(&meta, &payload, &fibrpc::IOBuf::new(), &mut out).expect("a small frame encodes");
    out.to_vec()
}

/// Sends `frame` and waits for the first bytes of the answer.
fn call_once(mut s: TcpStream, frame: &[u8]) -> std::io::Result<TcpStream> {
    use std::io::{Read, Write};
    s.write_all(frame)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut answer = [0u8; 64];
    if s.read(&mut answer)? == 0 {
        return Err(std::io::Error::other("closed without an answer"));
    }
    Ok(s)
}
