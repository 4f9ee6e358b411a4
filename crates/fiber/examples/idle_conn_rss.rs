//! Resident memory per idle connection of the `tcp_echo_server` example.
//!
//! ```text
//! cargo build --release -p fibrpc-fiber --example tcp_echo_server --example idle_conn_rss
//! target/release/examples/idle_conn_rss --conns 5000
//! ```
//!
//! Starts `tcp_echo_server` (next to this binary, or `--server PATH`) on a
//! free loopback port, reads its `VmRSS` from `/proc/PID/status`, opens
//! `--conns` connections that each get a 1-byte probe echoed (so every
//! connection has been accepted and its fiber has run a read), and reads
//! `VmRSS` again. Prints the growth per connection. With `--hold SECS` it
//! samples again after holding the connections idle that long (memory an
//! idle server gives back over time). With `--burst N` it then opens N
//! more connections with a 4 KiB echo each, closes them, and samples
//! `VmRSS` once a second for up to 60 s, until it is back within 20 % of
//! its level before the burst (`--bursts K`: K such bursts in a row; the
//! first one also grows the fiber and readiness slabs, ~300 bytes per
//! connection at the peak, which the trimmer gives back a segment at a
//! time once the segment is empty; later bursts revive those segments).
//! Memory, not speed: a busy machine does not change the figure much.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut conns = 5000usize;
    let mut hold = 0u64;
    let mut burst = 0usize;
    let mut bursts = 1usize;
    let mut server = None;
    let mut extra: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--conns" => conns = args.next().and_then(|v| v.parse().ok()).expect("--conns N"),
            "--hold" => {
                hold = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--hold SECS")
            }
            "--burst" => burst = args.next().and_then(|v| v.parse().ok()).expect("--burst N"),
            "--bursts" => {
                bursts = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--bursts K")
            }
            "--server" => server = args.next(),
            "--" => extra.extend(args.by_ref()),
            other => panic!(
                "unknown argument {other}; use --conns N [--hold SECS] [--burst N [--bursts K]] \
                 [--server PATH] [-- server args]"
            ),
        }
    }
    let server = server.unwrap_or_else(|| {
        let me = std::env::current_exe().expect("current_exe");
        me.with_file_name("tcp_echo_server")
            .to_string_lossy()
            .into_owned()
    });
    let mut child = Command::new(&server)
        .args(["--port", "0", "--workers", "2"])
        .args(&extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {server}: {e}"));
    let addr = listening_addr(&mut child);
    let pid = child.id();
    let before = vm_rss_kib(pid);

    let started = Instant::now();
    let mut held = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.write_all(&[i as u8]).expect("probe write");
        let mut b = [0u8; 1];
        s.read_exact(&mut b).expect("probe echo");
        assert_eq!(b[0], i as u8, "echo mismatch");
        held.push(s);
    }
    let after = vm_rss_kib(pid);
    println!(
        "{conns} idle connections in {:.1}s: VmRSS {before} KiB -> {after} KiB, {:.2} KiB per connection",
        started.elapsed().as_secs_f64(),
        (after as f64 - before as f64) / conns as f64
    );
    if hold > 0 {
        std::thread::sleep(Duration::from_secs(hold));
        let later = vm_rss_kib(pid);
        println!(
            "after {hold}s idle: VmRSS {later} KiB, {:.2} KiB per connection",
            (later as f64 - before as f64) / conns as f64
        );
    }
    drop(held);
    for _ in 0..if burst > 0 { bursts } else { 0 } {
        burst_then_shrink(pid, &addr, burst);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Opens `n` more connections with a full 4 KiB message echoed on each,
/// closes them all, and samples `VmRSS` once a second for up to 60 s until
/// it is back within 20 % of the level before the burst.
fn burst_then_shrink(pid: u32, addr: &str, n: usize) {
    // Let the connections just closed finish first: the level to come back
    // to is the server's settled state.
    std::thread::sleep(Duration::from_secs(2));
    let before = vm_rss_kib(pid);
    let msg = [0x5au8; 4096];
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.write_all(&msg).expect("burst write");
        conns.push(s);
    }
    let mut back = [0u8; 4096];
    for s in &mut conns {
        s.read_exact(&mut back).expect("burst echo");
    }
    let peak = vm_rss_kib(pid);
    drop(conns);
    let ended = Instant::now();
    println!("burst of {n} connections: VmRSS {before} KiB -> {peak} KiB");
    let bound = before + before / 5;
    for _ in 0..60 {
        std::thread::sleep(Duration::from_secs(1));
        let now = vm_rss_kib(pid);
        if now <= bound {
            println!(
                "back to {now} KiB (within 20 % of {before} KiB) {:.0}s after the burst",
                ended.elapsed().as_secs_f64()
            );
            return;
        }
    }
    println!(
        "still {} KiB 60s after the burst (pre-burst {before} KiB)",
        vm_rss_kib(pid)
    );
}

/// Reads the server's `listening on ADDR` line.
fn listening_addr(child: &mut Child) -> String {
    let out = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("server stdout");
    // "listening on ADDR", maybe followed by more words (the I/O driver).
    line.trim()
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected server output {line:?}"))
        .to_string()
}

/// `VmRSS` of `pid` in KiB.
fn vm_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS line")
}
