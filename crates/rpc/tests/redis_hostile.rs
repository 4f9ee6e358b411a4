//! Bad input to fibrpc's redis server over raw sockets: each case gets
//! redis' error reply (or a close) and closes only its own connection,
//! while another connection keeps working.

mod redis_common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use fibrpc::redis::{RedisLimits, RedisReply, RedisService};
use redis_common::*;

/// A connection that pings before and after each hostile case.
struct Bystander(TcpStream);

impl Bystander {
    fn new(addr: SocketAddr) -> Bystander {
        Bystander(raw(addr))
    }

    fn ping(&mut self) {
        self.0.write_all(&resp(&[b"PING"])).unwrap();
        assert_eq!(read_n(&mut self.0, 7), b"+PONG\r\n");
    }
}

/// Sends `wire` on a fresh connection; returns what came back before the
/// server closed it.
fn hostile(addr: SocketAddr, wire: &[u8]) -> Vec<u8> {
    let mut s = raw(addr);
    s.write_all(wire).unwrap();
    read_to_close(&mut s, 1 << 20).expect("the server closes, it does not reset or hang")
}

#[test]
fn malformed_commands_get_redis_errors_and_close_their_own_connection() {
    let server = start_kv_server();
    let addr = server.listen_addr().unwrap();
    let mut other = Bystander::new(addr);
    let mut big_inline = vec![b'a'; (64 << 10) + 100];
    big_inline[0] = b'G';
    let cases: Vec<(Vec<u8>, &[u8])> =
        vec![
        (b"*1\r\n$2147483648\r\n".to_vec(), b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$-5\r\n".to_vec(), b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$-1\r\n".to_vec(), b"-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1000000000\r\n".to_vec(), b"-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$4\r\nPINGxx".to_vec(), b"-ERR Protocol error: expected CRLF after bulk data\r\n"),
        (b"*2\r\n$4\r\nECHO\r\n:1\r\n".to_vec(), b"-ERR Protocol error: expected '$', got ':'\r\n"),
        (big_inline, b"-ERR Protocol error: too big inline request\r\n"),
        (b"SET a \"b\r\n".to_vec(), b"-ERR Protocol error: unbalanced quotes in request\r\n"),
        // A valid command, then binary garbage: the command is answered,
        // the garbage is an error.
        (
            b"*1\r\n$4\r\nPING\r\n\x00\x01\x02garbage".to_vec(),
            b"+PONG\r\n-ERR Protocol error: expected '*' or an inline command, got byte 0x00\r\n",
        ),
        // Commands before the bad one are answered first.
        (
            b"*1\r\n$4\r\nPING\r\n*1\r\n$abc\r\n".to_vec(),
            b"+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
        ),
    ];
    for (wire, want) in cases {
        other.ping();
        let got = hostile(addr, &wire);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "for {:?}",
            String::from_utf8_lossy(&wire[..wire.len().min(40)])
        );
        other.ping();
    }
    // Printable garbage is an inline command, as in redis: an error reply,
    // and the connection stays.
    let mut s = raw(addr);
    s.write_all(b"garbage here\r\nPING\r\n").unwrap();
    let want = b"-ERR unknown command 'garbage', with args beginning with: 'here' \r\n+PONG\r\n";
    assert_eq!(read_n(&mut s, want.len()), want);
}

#[test]
fn limits_are_options_and_bound_what_a_command_holds() {
    let mut service = RedisService::new();
    service.set_limits(RedisLimits {
        max_bulk_len: 1 << 20,
        max_multibulk_len: 100,
        max_inline_len: 1000,
        max_command_bytes: 4 << 20,
    });
    service
        .add_command_handler("ping", |_: &[bytes::Bytes]| RedisReply::status("PONG"))
        .unwrap();
    let server = start_redis_server(service);
    let addr = server.listen_addr().unwrap();
    let mut other = Bystander::new(addr);
    let cases: Vec<(Vec<u8>, &[u8])> = vec![
        (
            b"*1\r\n$2000000\r\n".to_vec(),
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*101\r\n".to_vec(),
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            vec![b'x'; 1200],
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            b"*5\r\n$1000000\r\n"
                .iter()
                .chain(vec![b'a'; 1000000].iter())
                .chain(b"\r\n$1000000\r\n".iter())
                .chain(vec![b'a'; 1000000].iter())
                .chain(b"\r\n$1000000\r\n".iter())
                .chain(vec![b'a'; 1000000].iter())
                .chain(b"\r\n$1000000\r\n".iter())
                .chain(vec![b'a'; 1000000].iter())
                .chain(b"\r\n$1000000\r\n".iter())
                .copied()
                .collect(),
            b"-ERR Protocol error: command too big\r\n",
        ),
    ];
    for (wire, want) in cases {
        other.ping();
        assert_eq!(
            String::from_utf8_lossy(&hostile(addr, &wire)),
            String::from_utf8_lossy(want)
        );
        other.ping();
    }
    // At the limits, commands go through.
    let mut s = raw(addr);
    let mut wire = b"*100\r\n$4\r\nPING\r\n".to_vec();
    for _ in 0..99 {
        wire.extend_from_slice(b"$1\r\na\r\n");
    }
    s.write_all(&wire).unwrap();
    assert_eq!(read_n(&mut s, 7), b"+PONG\r\n");
}

#[test]
fn a_command_trickling_in_over_many_reads_is_answered_whole() {
    // 100k arguments in 700-byte writes: the parser resumes where each
    // read stopped (its unit tests check it does not start over).
    let server = start_kv_server();
    let addr = server.listen_addr().unwrap();
    let mut s = raw(addr);
    s.set_nodelay(true).unwrap();
    let n = 100_000;
    let mut wire = format!("*{}\r\n$4\r\nMGET\r\n", n + 1).into_bytes();
    for _ in 0..n {
        wire.extend_from_slice(b"$1\r\na\r\n");
    }
    let mut other = Bystander::new(addr);
    for chunk in wire.chunks(700) {
        s.write_all(chunk).unwrap();
    }
    other.ping();
    let want_head = format!("*{n}\r\n");
    let got = read_n(&mut s, want_head.len() + n * 5);
    assert_eq!(&got[..want_head.len()], want_head.as_bytes());
    assert!(got[want_head.len()..].chunks(5).all(|c| c == b"$-1\r\n"));
}

/// The process's resident memory in bytes (server and attacker share it).
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb << 10
}

#[test]
fn announced_sizes_cost_nothing_until_the_bytes_come() {
    // 300 connections each announce a command of 1024×1024 arguments and
    // a 512 MiB argument (both within redis' limits), and send 1 KiB of
    // it: the server holds what was sent, not what was announced.
    let server = start_kv_server();
    let addr = server.listen_addr().unwrap();
    let mut other = Bystander::new(addr);
    other.ping();
    let before = rss();
    let mut conns = Vec::new();
    for _ in 0..300 {
        let mut s = raw(addr);
        let mut wire = b"*1048576\r\n$536870912\r\n".to_vec();
        wire.extend_from_slice(&[b'v'; 1024]);
        s.write_all(&wire).unwrap();
        conns.push(s);
    }
    for _ in 0..500 {
        if server.connection_count() > 300 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(server.connection_count() > 300);
    other.ping();
    let grown = rss().saturating_sub(before);
    assert!(grown < 64 << 20, "RSS grew by {} MiB", grown >> 20);
    drop(conns);
    other.ping();
}
