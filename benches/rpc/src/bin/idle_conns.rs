//! Opens `--conns` TCP connections to `--addr`, sends nothing on them, and
//! holds them for `--hold` seconds: the load of the idle-connection memory
//! measurement (`run.sh --idle`). It raises no limit itself; the shell's
//! `ulimit -n` must allow the connections (one descriptor each).
//!
//!     idle_conns --addr 127.0.0.1:8001 [--conns 10000] [--hold 5]
//!
//! Prints `HOLDING <connected> <failed>` once every connect has been tried,
//! then exits after the hold. Against a gRPC server these are raw TCP
//! connections without the HTTP/2 preface: the server keeps each waiting
//! for it.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fibrpc_bench_rpc::cli::Args;

const USAGE: &str = "usage: idle_conns --addr HOST:PORT [--conns N (10000)] [--hold SECS (5)]";

fn main() {
    let mut args = Args::from_env(USAGE);
    let (mut addr, mut conns, mut hold) = (None::<SocketAddr>, 10_000usize, 5.0f64);
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--addr" | "-a" => addr = Some(args.value(&flag)),
            "--conns" | "-c" => conns = args.value(&flag),
            "--hold" | "-d" => hold = args.value(&flag),
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
    for _ in 0..conns {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
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
