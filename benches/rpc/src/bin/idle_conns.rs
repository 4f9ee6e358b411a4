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

use fibrpc_bench_rpc::cli::Args;

const USAGE: &str =
    "usage: idle_conns --addr HOST:PORT [--conns N (10000)] [--hold SECS (5)] [--baidu-echo]";

fn main() {
    let mut args = Args::from_env(USAGE);
    let (mut addr, mut conns, mut hold) = (None::<SocketAddr>, 10_000usize, 5.0f64);
    let mut echo_first = false;
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--addr" | "-a" => addr = Some(args.value(&flag)),
            "--conns" | "-c" => conns = args.value(&flag),
            "--hold" | "-d" => hold = args.value(&flag),
            "--baidu-echo" => echo_first = true,
            other => args.unknown(other),
        }
    }
    let Some(addr) = addr else {
        args.fail("--addr is required");
    };
    if !(hold >= 0.0 && hold.is_finite()) {
        args.fail("--hold must be >= 0");
    }
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
    std::thread::sleep(Duration::from_secs_f64(hold));
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
