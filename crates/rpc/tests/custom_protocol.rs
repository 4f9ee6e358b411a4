//! A protocol defined outside the crate, served on the same port as
//! baidu_std and HTTP, and called through the call engine: the steps of
//! "How to add a protocol" in `crates/rpc/README.md`.
//!
//! The protocol is line-based. A request is `> ID TEXT\n`; the server
//! passes TEXT to the echo service and answers `< ID N REPLY\n`, where N
//! counts the requests seen on this connection (the protocol's own
//! per-connection state).

mod rpc_common;

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc::channel::{CallEngine, ChannelOptions, ConnectionType};
use fibrpc::protocol::{ClientProtocol, Parsed, Protocol, ServerContext};
use fibrpc::socket::Socket;
use fibrpc::{codec, Controller, IOBuf, RpcError};
use rpc_common::{EchoResponse, SERVICE};

/// Step 1: the protocol.
struct Lines;

/// One line, without its `\n`, and its number on the connection (server
/// side).
struct Line(String, u64);

/// What the protocol keeps per connection.
#[derive(Default)]
struct LineConn {
    requests: AtomicU64,
}

/// Cuts one `\n`-terminated line whose first byte is `first`.
fn cut_line(input: &mut IOBuf, first: u8) -> Parsed<Line> {
    let mut head = [0u8; 1];
    if input.copy_to(&mut head, 0) == 0 {
        return Parsed::NeedMore;
    }
    if head[0] != first {
        return Parsed::NotMine;
    }
    let bytes = input.to_vec();
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
        return if bytes.len() > 1024 {
            Parsed::Bad("line over 1024 bytes".into())
        } else {
            Parsed::NeedMore
        };
    };
    input.pop_front(end + 1);
    match String::from_utf8(bytes[..end].to_vec()) {
        Ok(s) => Parsed::Message(Line(s, 0)),
        Err(_) => Parsed::Bad("not UTF-8".into()),
    }
}

impl Protocol for Lines {
    type Message = Line;

    fn name(&self) -> &'static str {
        "lines"
    }

    fn parse(&self, input: &mut IOBuf, conn: &Arc<Socket>, _eof: bool) -> Parsed<Line> {
        match cut_line(input, b'>') {
            // Numbered here: parsing runs in input order, one line at a
            // time per connection (processing runs in parallel fibers).
            Parsed::Message(Line(text, _)) => match conn.protocol_state::<LineConn>() {
                Some(state) => {
                    let n = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
                    Parsed::Message(Line(text, n))
                }
                None => Parsed::Bad("the connection spoke another protocol".into()),
            },
            other => other,
        }
    }

    fn process_request(&self, msg: Line, conn: &Arc<Socket>, server: &ServerContext) {
        let Some((id, text)) = msg.0[2..].split_once(' ') else {
            conn.set_failed(RpcError::new(fibrpc::errno::EREQUEST, "bad line"));
            return;
        };
        let n = msg.1;
        let id = id.to_string();
        let conn = conn.clone();
        let request = codec::encode(&rpc_common::req(text));
        server.call_method(SERVICE, "Echo", Controller::new(), request, move |_, r| {
            let reply = match r.and_then(|b| codec::decode_response::<EchoResponse>(&b)) {
                Ok(resp) => resp.message,
                Err(e) => format!("error {}", e.code),
            };
            let _ = conn.write(IOBuf::from(format!("< {id} {n} {reply}\n")));
        });
    }
}

/// Step 3: the client half. The client's view of a line: responses start
/// with `<`.
struct LinesClient;

impl Protocol for LinesClient {
    type Message = Line;

    fn name(&self) -> &'static str {
        "lines"
    }

    fn parse(&self, input: &mut IOBuf, _conn: &Arc<Socket>, _eof: bool) -> Parsed<Line> {
        cut_line(input, b'<')
    }
}

impl ClientProtocol for LinesClient {
    type Request = String;
    type Response = (u64, String);

    fn pack_request(
        &self,
        req: &mut String,
        correlation_id: u64,
        _cntl: &Controller,
        _conn: &Arc<Socket>,
    ) -> Result<IOBuf, RpcError> {
        Ok(IOBuf::from(format!("> {correlation_id} {req}\n")))
    }

    fn correlation_id(&self, msg: &Line, _conn: &Socket) -> Option<u64> {
        msg.0.get(2..)?.split(' ').next()?.parse().ok()
    }

    fn process_response(
        &self,
        msg: Line,
        _cntl: &mut Controller,
    ) -> Result<(u64, String), RpcError> {
        let mut parts = msg.0[2..].splitn(3, ' ');
        let _id = parts.next();
        let n = parts.next().and_then(|n| n.parse().ok());
        match (n, parts.next()) {
            (Some(n), Some(text)) => Ok((n, text.to_string())),
            _ => Err(RpcError::new(fibrpc::errno::ERESPONSE, "bad response line")),
        }
    }
}

#[test]
fn a_protocol_from_outside_the_crate_shares_the_port_with_baidu_std_and_http() {
    // Step 2: served next to the builtin protocols.
    let (mut server, calls) = start_server_with_lines();
    let addr = server.listen_addr().unwrap();

    // Through the call engine, on one multiplexed connection: the
    // per-connection count goes 1, 2, 3.
    let single = CallEngine::new(LinesClient, addr, ChannelOptions::default()).unwrap();
    for i in 1..=3u64 {
        let (n, text) = single
            .call(&mut Controller::new(), format!("hello {i}"))
            .unwrap();
        assert_eq!((n, text.as_str()), (i, format!("hello {i}").as_str()));
    }

    // Short connections: each is a fresh connection, detected anew, with
    // a fresh state.
    let options = ChannelOptions {
        connection_type: ConnectionType::Short,
        ..Default::default()
    };
    let short = CallEngine::new(LinesClient, addr, options).unwrap();
    for _ in 0..3 {
        let (n, text) = short.call(&mut Controller::new(), "again".into()).unwrap();
        assert_eq!((n, text.as_str()), (1, "again"));
    }

    // baidu_std and HTTP on the same port, at the same time.
    let ch = fibrpc::Channel::new(addr, Default::default()).unwrap();
    let resp = rpc_common::echo(&ch, &mut Controller::new(), &rpc_common::req("std")).unwrap();
    assert_eq!(resp.message, "std");
    let http = fibrpc::http::HttpChannel::new(&addr.to_string(), Default::default()).unwrap();
    assert_eq!(http.get("/health").unwrap().body().to_vec(), b"OK\n");

    // A raw client speaking the protocol by hand, pipelining two lines.
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(b"> 7 one\n> 8 two\n").unwrap();
    let mut lines = BufReader::new(raw.try_clone().unwrap()).lines();
    let mut got = vec![
        lines.next().unwrap().unwrap(),
        lines.next().unwrap().unwrap(),
    ];
    got.sort();
    assert_eq!(got, ["< 7 1 one", "< 8 2 two"]);

    // The console names the protocol of each connection.
    let page = http.get("/connections").unwrap().body().to_vec();
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("lines"), "{page}");
    assert!(page.contains("baidu_std"), "{page}");

    assert_eq!(calls.load(Ordering::Relaxed), 3 + 3 + 1 + 2);
    server.stop();
    server.join();
}

#[test]
fn the_protocol_callback_and_future_forms_come_from_the_engine() {
    let (_server, _) = start_server_with_lines();
    let addr = _server.listen_addr().unwrap();
    let engine = CallEngine::new(LinesClient, addr, ChannelOptions::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    engine.call_async(Controller::new(), "cb".into(), move |_, r| {
        tx.send(r.map(|(_, t)| t)).unwrap();
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(),
        "cb"
    );
    let (_, r) = fibrpc::fiber::block_on(engine.call_future(Controller::new(), "fut".into()));
    assert_eq!(r.unwrap().1, "fut");
}

#[test]
fn a_protocol_added_twice_or_after_start_is_refused() {
    let mut server = fibrpc::Server::new(Default::default());
    server.add_protocol(Lines).unwrap();
    let twice = server.add_protocol(Lines).unwrap_err();
    assert!(twice.text.contains("added twice"), "{twice}");
    server.start("127.0.0.1:0").unwrap();
    assert!(server.add_protocol(LinesClient).is_err());
}

fn start_server_with_lines() -> (fibrpc::Server, Arc<std::sync::atomic::AtomicUsize>) {
    let echo = rpc_common::Echo::default();
    let calls = echo.calls.clone();
    let mut server = fibrpc::Server::new(Default::default());
    server.add_service(echo).unwrap();
    server.add_protocol(Lines).unwrap();
    server.start("127.0.0.1:0").unwrap();
    (server, calls)
}
