//! fibrpc's redis server against real redis clients (`redis-cli`,
//! `redis-benchmark`) and raw sockets: commands, pipelining, inline
//! commands, HELLO, and detection next to baidu_std and HTTP.

mod redis_common;
mod rpc_common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use fibrpc::redis::{RedisReply, RedisService};
use fibrpc::Controller;
use redis_common::*;

fn cli(port: u16, args: &[&str]) -> String {
    let mut cmd = Command::new(tool("redis-cli"));
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    let (ok, out) = run_tool(cmd, b"", Duration::from_secs(30));
    assert!(ok, "redis-cli {args:?} failed: {out}");
    out.trim_end().to_string()
}

#[test]
fn redis_cli_pings_sets_and_gets() {
    let server = start_kv_server();
    let port = server.listen_addr().unwrap().port();
    assert_eq!(cli(port, &["PING"]), "PONG");
    assert_eq!(cli(port, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(port, &["GET", "greeting"]), "hello world");
    assert_eq!(cli(port, &["INCR", "n"]), "1");
    assert_eq!(cli(port, &["INCR", "n"]), "2");
    assert_eq!(
        cli(port, &["MGET", "greeting", "nope", "n"]),
        "hello world\n\n2"
    );
    assert_eq!(cli(port, &["DEL", "greeting", "nope"]), "1");
    assert_eq!(cli(port, &["GET", "greeting"]), "");
    let err = cli(port, &["NOSUCH", "a"]);
    assert!(err.contains("unknown command 'NOSUCH'"), "{err}");
}

#[test]
fn redis_cli_pipe_mode_gets_every_reply() {
    let server = start_kv_server();
    let port = server.listen_addr().unwrap().port();
    let mut input = Vec::new();
    for i in 0..5000 {
        input.extend(resp(&[
            b"SET",
            format!("k{i}").as_bytes(),
            format!("v{i}").as_bytes(),
        ]));
    }
    let mut cmd = Command::new(tool("redis-cli"));
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--pipe"]);
    let (ok, out) = run_tool(cmd, &input, Duration::from_secs(60));
    assert!(ok, "redis-cli --pipe failed: {out}");
    assert!(out.contains("errors: 0, replies: 5000"), "{out}");
    assert_eq!(cli(port, &["GET", "k4999"]), "v4999");
    assert_eq!(cli(port, &["DBSIZE"]), "5000");
}

#[test]
fn redis_benchmark_pipelined_gets_and_sets_all_succeed() {
    let server = start_kv_server();
    let port = server.listen_addr().unwrap().port();
    let mut cmd = Command::new(tool("redis-benchmark"));
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-n", "20000", "-c", "10", "-t", "get,set", "-P", "16", "-q"]);
    let (ok, out) = run_tool(cmd, b"", Duration::from_secs(120));
    assert!(ok, "redis-benchmark failed: {out}");
    for t in ["SET: ", "GET: "] {
        assert!(
            out.lines()
                .any(|l| l.contains(t) && l.contains("requests per second")),
            "no {t} result: {out}"
        );
    }
    let lower = out.to_ascii_lowercase();
    assert!(
        !lower.contains("error") && !lower.contains("warning"),
        "{out}"
    );
    // The sets landed: redis-benchmark's key and 3-byte value.
    assert_eq!(cli(port, &["GET", "key:__rand_int__"]).len(), 3);
}

#[test]
fn pipelined_commands_run_in_order_and_answer_in_order() {
    let server = start_kv_server();
    let mut s = raw(server.listen_addr().unwrap());
    // One write: each command sees the ones before it.
    let mut wire = Vec::new();
    for i in 0..300 {
        wire.extend(resp(&[b"SET", b"k", format!("{i}").as_bytes()]));
        wire.extend(resp(&[b"GET", b"k"]));
        wire.extend(resp(&[b"INCR", b"c"]));
    }
    s.write_all(&wire).unwrap();
    let mut want = Vec::new();
    for i in 0..300 {
        let v = i.to_string();
        want.extend_from_slice(format!("+OK\r\n${}\r\n{v}\r\n:{}\r\n", v.len(), i + 1).as_bytes());
    }
    assert_eq!(
        String::from_utf8(read_n(&mut s, want.len())).unwrap(),
        String::from_utf8(want).unwrap()
    );
}

#[test]
fn slow_commands_do_not_reorder_a_pipeline() {
    // A handler that sleeps longer for earlier commands: a server running
    // batches in parallel would answer out of order.
    let mut service = RedisService::new();
    service
        .add_command_handler("wait", |a: &[Bytes]| {
            let ms: u64 = std::str::from_utf8(&a[1]).unwrap().parse().unwrap();
            fibrpc::fiber::sleep(Duration::from_millis(ms)).unwrap();
            RedisReply::bulk(a[1].to_vec())
        })
        .unwrap();
    let server = start_redis_server(service);
    let mut s = raw(server.listen_addr().unwrap());
    let mut want = Vec::new();
    for ms in [40u64, 30, 20, 10, 0] {
        // Separate writes, so separate reads and batches.
        s.write_all(&resp(&[b"WAIT", ms.to_string().as_bytes()]))
            .unwrap();
        let v = ms.to_string();
        want.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(read_n(&mut s, want.len()), want);
}

#[test]
fn inline_commands_and_hello_as_redis_answers_them() {
    let server = start_kv_server();
    let mut s = raw(server.listen_addr().unwrap());
    s.write_all(b"PING\r\n\r\nSET k \"a b\"\nGET k\r\nHELLO 3\r\n")
        .unwrap();
    let want = b"+PONG\r\n+OK\r\n$3\r\na b\r\n-NOPROTO unsupported protocol version\r\n";
    assert_eq!(read_n(&mut s, want.len()), want);
    // HELLO 2: the RESP2 map, flat.
    s.write_all(&resp(&[b"HELLO", b"2"])).unwrap();
    let head = read_n(&mut s, 5);
    assert_eq!(&head, b"*14\r\n");
    let ch = fibrpc::redis::RedisChannel::new(server.listen_addr().unwrap(), Default::default())
        .unwrap();
    let hello = ch.command(&["HELLO"]).unwrap();
    let items = hello.as_array().unwrap();
    assert_eq!(items[4], RedisReply::bulk("proto"));
    assert_eq!(items[5], RedisReply::Integer(2));
}

#[test]
fn redis_shares_the_port_with_baidu_std_and_http() {
    let (mut server, _) = {
        let echo = rpc_common::Echo::default();
        let calls = echo.calls.clone();
        let mut server = fibrpc::Server::new(Default::default());
        server.add_service(echo).unwrap();
        server
            .add_redis_service(redis_kv::Kv::default().service())
            .unwrap();
        server.start("127.0.0.1:0").unwrap();
        (server, calls)
    };
    let addr = server.listen_addr().unwrap();
    let ch = fibrpc::Channel::new(addr, Default::default()).unwrap();
    let resp = rpc_common::echo(&ch, &mut Controller::new(), &rpc_common::req("std")).unwrap();
    assert_eq!(resp.message, "std");
    let http = fibrpc::http::HttpChannel::new(&addr.to_string(), Default::default()).unwrap();
    assert_eq!(http.get("/health").unwrap().body().to_vec(), b"OK\n");
    // A raw HTTP request is HTTP's, not an inline redis command.
    let mut s = raw(addr);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = read_n(&mut s, 15);
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    let redis = fibrpc::redis::RedisChannel::new(addr, Default::default()).unwrap();
    assert_eq!(
        redis.command(&["PING"]).unwrap(),
        RedisReply::status("PONG")
    );
    let page = http.get("/connections").unwrap().body().to_vec();
    assert!(String::from_utf8(page).unwrap().contains("redis"));
    server.stop();
    server.join();
}

#[test]
fn a_server_without_a_redis_service_does_not_speak_redis() {
    let mut server = fibrpc::Server::new(Default::default());
    server.start("127.0.0.1:0").unwrap();
    for wire in [&resp(&[b"PING"])[..], b"PING\r\n"] {
        let mut s = raw(server.listen_addr().unwrap());
        s.write_all(wire).unwrap();
        let got = read_to_close(&mut s, 1 << 20).unwrap_or_default();
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    }
    let mut twice = fibrpc::Server::new(Default::default());
    twice.add_redis_service(RedisService::new()).unwrap();
    assert!(twice.add_redis_service(RedisService::new()).is_err());
}
