//! fibrpc's `RedisChannel` against a real `redis-server` and against
//! fibrpc's own redis server: every reply type, pipelined requests,
//! concurrent callers sharing one connection, timeouts.

mod redis_common;

use std::time::Duration;

use bytes::Bytes;
use fibrpc::redis::{RedisChannel, RedisReply, RedisRequest, RedisService};
use fibrpc::{errno, ChannelOptions, ConnectionType, Controller, IOBuf};
use redis_common::*;

fn options() -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    }
}

/// What both servers answer alike.
fn exercise(ch: &RedisChannel, real: bool) {
    let mut req = RedisRequest::new();
    req.add_command(&["DEL", "t:k", "t:n", "t:bin", "t:big"])
        .add_command(&["SET", "t:k", "v"])
        .add_command(&["GET", "t:k"])
        .add_command(&["GET", "t:missing"])
        .add_command(&["INCR", "t:n"])
        .add_command(&["INCR", "t:k"])
        .add_command(&["MGET", "t:k", "t:missing", "t:n"])
        .add_command(&["SET", "t:k", "w", "EX", "100"])
        .add_command(&["EXPIRE", "t:k", "50"]);
    req.add_command_line("PING").unwrap();
    let resp = ch.call(&mut Controller::new(), &req).unwrap();
    assert_eq!(resp.reply_size(), 10);
    let r = resp.replies();
    assert!(r[0].as_integer().is_some());
    assert_eq!(r[1], RedisReply::ok());
    assert_eq!(r[2], RedisReply::bulk("v"));
    assert_eq!(r[3], RedisReply::Nil);
    assert_eq!(r[4], RedisReply::Integer(1));
    assert!(r[5].is_error(), "{:?}", r[5]);
    assert!(r[5]
        .as_str()
        .unwrap()
        .starts_with("ERR value is not an integer"));
    assert_eq!(
        r[6],
        RedisReply::Array(vec![
            RedisReply::bulk("v"),
            RedisReply::Nil,
            RedisReply::bulk("1")
        ])
    );
    assert_eq!(r[7], RedisReply::ok());
    assert_eq!(r[8], RedisReply::Integer(1));
    assert_eq!(r[9], RedisReply::status("PONG"));

    // Binary-safe values, and a large one that goes out and comes back
    // by reference.
    let bin = b"a\r\nb\0c$-1\r\n".to_vec();
    assert_eq!(
        ch.command(&[&b"SET"[..], b"t:bin", &bin]).unwrap(),
        RedisReply::ok()
    );
    assert_eq!(
        ch.command(&[&b"GET"[..], b"t:bin"]).unwrap(),
        RedisReply::bulk(bin)
    );
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let mut set = RedisRequest::new();
    set.add_command_bufs(&[
        IOBuf::from("SET"),
        IOBuf::from("t:big"),
        IOBuf::from(big.clone()),
    ]);
    set.add_command(&["GET", "t:big"]);
    let resp = ch.call(&mut Controller::new(), &set).unwrap();
    assert_eq!(resp.reply(0), Some(&RedisReply::ok()));
    assert_eq!(resp.reply(1).unwrap().as_bulk().unwrap().to_vec(), big);

    // An unknown command is an error reply, not a failed call.
    let unknown = ch.command(&["NOSUCHCOMMAND", "x"]).unwrap();
    assert!(
        unknown.as_str().unwrap().starts_with("ERR unknown command"),
        "{unknown:?}"
    );
    if real {
        // A reply type fibrpc's store does not produce: nested arrays.
        let r = ch.command(&["COMMAND", "INFO", "get"]).unwrap();
        assert!(
            matches!(&r.as_array().unwrap()[0], RedisReply::Array(_)),
            "{r:?}"
        );
    }
}

/// 16 callers pipelining on one connection: every reply reaches its own
/// call.
fn concurrent_callers_share_one_connection(ch: &RedisChannel) {
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                for i in 0..200 {
                    let key = format!("c:{t}:{i}");
                    let mut req = RedisRequest::new();
                    req.add_command(&["SET", &key, &format!("{t}-{i}")])
                        .add_command(&["GET", &key]);
                    let resp = ch.call(&mut Controller::new(), &req).unwrap();
                    assert_eq!(resp.reply(1), Some(&RedisReply::bulk(format!("{t}-{i}"))));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn redis_channel_talks_to_a_real_redis_server() {
    let redis = RealRedis::start();
    let ch = RedisChannel::new(redis.addr, options()).unwrap();
    exercise(&ch, true);
    concurrent_callers_share_one_connection(&ch);
}

#[test]
fn redis_channel_talks_to_fibrpc_redis_server() {
    let server = start_kv_server();
    let ch = RedisChannel::new(server.listen_addr().unwrap(), options()).unwrap();
    exercise(&ch, false);
    concurrent_callers_share_one_connection(&ch);
}

/// The server-side id of the connection that carries `ch`'s calls from
/// here (`HELLO`'s `id`).
fn connection_id(ch: &RedisChannel) -> i64 {
    let r = ch.command(&["HELLO"]).unwrap();
    r.as_array().unwrap()[7].as_integer().unwrap()
}

#[test]
fn a_per_worker_channel_keeps_each_workers_calls_on_its_own_connection() {
    let server = start_kv_server();
    let options = ChannelOptions {
        connection_type: ConnectionType::PerWorker,
        ..options()
    };
    let ch = RedisChannel::new(server.listen_addr().unwrap(), options).unwrap();
    let seen: Vec<(usize, Vec<i64>)> = (0..32)
        .map(|_| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                let worker = fibrpc::fiber::current_worker().unwrap();
                (worker, (0..5).map(|_| connection_id(&ch)).collect())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let mut by_worker = std::collections::HashMap::new();
    for (worker, ids) in &seen {
        assert!(
            ids.iter().all(|&i| i == ids[0]),
            "one fiber, two connections: {ids:?}"
        );
        let first = *by_worker.entry(*worker).or_insert(ids[0]);
        assert_eq!(first, ids[0], "worker {worker} used two connections");
    }
    let mut ids: Vec<i64> = by_worker.values().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        by_worker.len(),
        "two workers shared a connection"
    );
    // A plain thread's calls take a connection of their own.
    let outside = connection_id(&ch);
    assert!(!ids.contains(&outside), "{outside} in {ids:?}");
    assert_eq!(connection_id(&ch), outside);
    concurrent_callers_share_one_connection(&ch);
}

#[test]
fn async_and_future_calls_get_their_replies() {
    let server = start_kv_server();
    let ch = RedisChannel::new(server.listen_addr().unwrap(), options()).unwrap();
    let mut req = RedisRequest::new();
    req.add_command(&["ECHO", "cb"]);
    let (tx, rx) = std::sync::mpsc::channel();
    ch.call_async(Controller::new(), &req, move |_, r| {
        tx.send(r).unwrap();
    });
    let r = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(r.reply(0), Some(&RedisReply::bulk("cb")));
    let mut req = RedisRequest::new();
    req.add_command(&["ECHO", "fut"]);
    let (_, r) = fibrpc::fiber::block_on(ch.call_future(Controller::new(), &req));
    assert_eq!(r.unwrap().reply(0), Some(&RedisReply::bulk("fut")));
}

#[test]
fn a_timed_out_call_leaves_later_replies_matched() {
    let mut service = RedisService::new();
    service
        .add_command_handler("slow", |a: &[Bytes]| {
            fibrpc::fiber::sleep(Duration::from_millis(300)).unwrap();
            RedisReply::bulk(a[1].to_vec())
        })
        .unwrap();
    service
        .add_command_handler("echo", |a: &[Bytes]| RedisReply::bulk(a[1].to_vec()))
        .unwrap();
    let server = start_redis_server(service);
    let ch = RedisChannel::new(server.listen_addr().unwrap(), options()).unwrap();
    let mut slow = RedisRequest::new();
    slow.add_command(&["SLOW", "late"]);
    let mut cntl = Controller::new();
    cntl.set_timeout(Duration::from_millis(50));
    let e = ch.call(&mut cntl, &slow).unwrap_err();
    assert_eq!(e.code, errno::ERPCTIMEDOUT, "{e}");
    // The late reply comes first on the connection and goes nowhere.
    for i in 0..5 {
        let msg = format!("m{i}");
        assert_eq!(ch.command(&["ECHO", &msg]).unwrap(), RedisReply::bulk(msg));
    }
}

#[test]
fn a_refused_connection_fails_the_call() {
    let port = free_port();
    let ch = RedisChannel::new(("127.0.0.1", port), options()).unwrap();
    let e = ch.command(&["PING"]).unwrap_err();
    assert_eq!(e.code, libc::ECONNREFUSED, "{e}");
}

#[test]
fn a_request_with_no_command_is_refused() {
    let server = start_kv_server();
    let ch = RedisChannel::new(server.listen_addr().unwrap(), options()).unwrap();
    let empty = ch
        .call(&mut Controller::new(), &RedisRequest::new())
        .unwrap_err();
    assert_eq!(empty.code, errno::EREQUEST, "{empty}");
    assert_eq!(ch.command(&["PING"]).unwrap(), RedisReply::status("PONG"));
}

/// The redis client protocol with a fiber switch inside `pack_request`,
/// between recording the call and the engine queueing its bytes: where
/// another caller on the same connection could slip its request in.
struct YieldingPack(fibrpc::redis::RedisClientProtocol);

impl fibrpc::protocol::Protocol for YieldingPack {
    type Message = fibrpc::redis::RedisReplies;

    fn name(&self) -> &'static str {
        "redis"
    }

    fn parse(
        &self,
        input: &mut IOBuf,
        conn: &std::sync::Arc<fibrpc::socket::Socket>,
        eof: bool,
    ) -> fibrpc::protocol::Parsed<Self::Message> {
        self.0.parse(input, conn, eof)
    }
}

impl fibrpc::protocol::ClientProtocol for YieldingPack {
    type Request = RedisRequest;
    type Response = fibrpc::redis::RedisResponse;

    fn responses_in_request_order(&self) -> bool {
        self.0.responses_in_request_order()
    }

    fn pack_request(
        &self,
        req: &mut RedisRequest,
        correlation_id: u64,
        cntl: &Controller,
        conn: &std::sync::Arc<fibrpc::socket::Socket>,
    ) -> Result<IOBuf, fibrpc::RpcError> {
        let wire = self.0.pack_request(req, correlation_id, cntl, conn);
        fibrpc::fiber::yield_now();
        wire
    }

    fn correlation_id(&self, msg: &Self::Message, conn: &fibrpc::socket::Socket) -> Option<u64> {
        self.0.correlation_id(msg, conn)
    }

    fn process_response(
        &self,
        msg: Self::Message,
        cntl: &mut Controller,
    ) -> Result<Self::Response, fibrpc::RpcError> {
        self.0.process_response(msg, cntl)
    }
}

#[test]
fn requests_enter_the_connection_in_the_order_they_were_recorded() {
    use fibrpc::protocol::ClientProtocol;
    let server = start_kv_server();
    let engine = fibrpc::channel::CallEngine::new(
        YieldingPack(fibrpc::redis::RedisClientProtocol),
        server.listen_addr().unwrap(),
        options(),
    )
    .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let engine = engine.clone();
            fibrpc::fiber::spawn(move || {
                for i in 0..50 {
                    let msg = format!("{t}-{i}");
                    let mut req = RedisRequest::new();
                    req.add_command(&["ECHO", &msg]);
                    let resp = engine.call(&mut Controller::new(), req).unwrap();
                    assert_eq!(resp.reply(0), Some(&RedisReply::bulk(msg)));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(engine.protocol().responses_in_request_order());
}
