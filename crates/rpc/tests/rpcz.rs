//! rpcz: spans of served and made calls, their ids on the wire (baidu_std's
//! meta at bRPC's field numbers, HTTP's `traceparent`), parent links
//! through a handler's fiber, the `/rpcz` page, the ring's bound, and
//! nothing recorded while off; gRPC's unary calls and streams, their
//! ids in `traceparent`.

mod h2_common;
mod log_capture;
mod rpc_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fibrpc::http::{HttpChannel, HttpContext, Request, StatusCode};
use fibrpc::protocol::baidu_std::{self, ParseResult, RpcMeta, RpcResponseMeta};
use fibrpc::rpcz::{self, Span, SpanKind, TraceContext};
use fibrpc::{
    codec, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions, Service,
};
use rpc_common::{echo, req, start_server, EchoRequest, EchoResponse, SERVICE};

/// rpcz's flags and ring are the process's: one test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    fibrpc::flags::set("rpcz_sample_rate", "1").unwrap();
    fibrpc::flags::set("rpcz_max_spans", "10000").unwrap();
    fibrpc::flags::set("rpcz_max_traces_per_second", "0").unwrap();
    rpcz::set_enabled(true);
    rpcz::clear();
    g
}

/// Polls `cond` until it holds or 10 s pass (a server span is kept
/// just after its response is written, so the caller may look first).
fn wait_for(cond: impl FnMut() -> bool) -> bool {
    rpc_common::wait_until(Duration::from_secs(10), cond)
}

fn spans_where(f: impl Fn(&Span) -> bool) -> Vec<Arc<Span>> {
    rpcz::spans().into_iter().filter(|s| f(s)).collect()
}

fn one(what: &str, f: impl Fn(&Span) -> bool) -> Arc<Span> {
    assert!(
        wait_for(|| spans_where(&f).len() == 1),
        "{what}: {:#?}",
        rpcz::spans()
    );
    spans_where(&f).pop().unwrap()
}

fn all_stamps(s: &Span) -> bool {
    s.stamps().iter().all(|(_, at)| at.is_some())
}

/// `example.RelayService.Relay`: calls B's Echo from its handler's fiber,
/// and remembers the trace context it ran under.
struct Relay {
    next: Channel,
    seen: Arc<Mutex<Vec<Option<TraceContext>>>>,
}

impl Service for Relay {
    fn service_name(&self) -> &'static str {
        "example.RelayService"
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Relay"]
    }
    fn call_method(
        &self,
        _: usize,
        cntl: &mut Controller,
        request: &IOBuf,
    ) -> Result<IOBuf, RpcError> {
        self.seen.lock().unwrap().push(rpcz::current());
        let r: EchoRequest = codec::decode_request(request)?;
        let mut down = Controller::new();
        down.set_log_id(cntl.log_id());
        let resp = echo(&self.next, &mut down, &r)?;
        Ok(codec::encode(&resp))
    }
}

fn relay_server(next: SocketAddr) -> (Server, Arc<Mutex<Vec<Option<TraceContext>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let relay = Relay {
        next: Channel::new(next, ChannelOptions::default()).unwrap(),
        seen: seen.clone(),
    };
    let mut a = Server::new(ServerOptions::default());
    a.add_service(relay).unwrap();
    a.start("127.0.0.1:0").unwrap();
    (a, seen)
}

#[test]
fn three_hops_link_client_server_client_server() {
    let _g = serial();
    let (b, _) = start_server(ServerOptions::default());
    let (a, seen) = relay_server(b.listen_addr().unwrap());
    let ch = Channel::new(a.listen_addr().unwrap(), ChannelOptions::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_log_id(0x3a11);
    let resp: EchoResponse = ch
        .call("example.RelayService", "Relay", &mut cntl, &req("hop"))
        .unwrap();
    assert_eq!(resp.message, "hop");

    let mine = |kind: SpanKind, method: &'static str| {
        move |s: &Span| s.log_id == 0x3a11 && s.kind == kind && &*s.method == method
    };
    let root = one("the caller's span", mine(SpanKind::Client, "Relay"));
    let a_server = one("A's server span", mine(SpanKind::Server, "Relay"));
    let a_client = one("A's client span", mine(SpanKind::Client, "Echo"));
    let b_server = one("B's server span", mine(SpanKind::Server, "Echo"));

    assert_eq!(root.parent_span_id, 0, "the caller's span is a root");
    assert_eq!(a_server.parent_span_id, root.span_id);
    assert_eq!(a_client.parent_span_id, a_server.span_id);
    assert_eq!(b_server.parent_span_id, a_client.span_id);
    for s in [&root, &a_server, &a_client, &b_server] {
        assert_eq!(s.trace_id, root.trace_id, "{s:#?}");
        assert!(all_stamps(s), "every stamp reached: {s:#?}");
        assert!(s.request_size > 0 && s.response_size > 0, "{s:#?}");
        assert_eq!(s.error_code, 0);
        assert_eq!(s.protocol, "baidu_std");
        assert!(s.peer.is_some());
    }
    let ids = [
        root.span_id,
        a_server.span_id,
        a_client.span_id,
        b_server.span_id,
    ];
    let mut unique = ids.to_vec();
    unique.dedup();
    assert_eq!(unique.len(), 4, "every span has an id of its own: {ids:x?}");
    assert_eq!(&*a_client.service, SERVICE);
    assert_eq!(
        a_client.peer,
        b.listen_addr(),
        "a client span's peer is the server"
    );
    assert_eq!(root.peer, a.listen_addr());
    // The handler ran under its own span.
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(TraceContext {
            trace_id: root.trace_id,
            span_id: a_server.span_id
        })]
    );
    // No context leaks out of the handler into this thread.
    assert_eq!(rpcz::current(), None);

    // The trace's tree, as /rpcz shows it to scripts.
    let page = get(
        a.listen_addr().unwrap(),
        &format!("/rpcz?trace={:x}&format=json", root.trace_id),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    let rows: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let tree: Vec<(u64, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["depth"].as_u64().unwrap(),
                r["span_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let hex = |id: u64| format!("{id:016x}");
    assert_eq!(
        tree,
        [
            (0, hex(root.span_id)),
            (1, hex(a_server.span_id)),
            (2, hex(a_client.span_id)),
            (3, hex(b_server.span_id))
        ]
    );
    // And to people: the text tree names every span.
    let text = get(
        a.listen_addr().unwrap(),
        &format!("/rpcz?trace={:x}", root.trace_id),
    );
    for id in ids {
        assert!(text.body.contains(&hex(id)), "{}", text.body);
    }
    assert!(
        text.body.contains("example.RelayService.Relay"),
        "{}",
        text.body
    );
}

/// Reads one baidu_std frame off `c`.
fn read_frame(c: &mut TcpStream) -> (Vec<u8>, baidu_std::Frame) {
    let mut head = [0u8; 12];
    c.read_exact(&mut head).unwrap();
    let body = u32::from_be_bytes(head[4..8].try_into().unwrap()) as usize;
    let mut raw = head.to_vec();
    raw.resize(12 + body, 0);
    c.read_exact(&mut raw[12..]).unwrap();
    let mut buf = IOBuf::from(raw.clone());
    let ParseResult::Complete(f) = baidu_std::parse(&mut buf, 64 << 20) else {
        panic!("not a frame")
    };
    (raw, f)
}

/// A server that answers one Echo call with a canned response and hands
/// back the request's bytes.
fn capture_one_request() -> (SocketAddr, std::thread::JoinHandle<(Vec<u8>, RpcMeta)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (raw, f) = read_frame(&mut c);
        let meta = RpcMeta {
            response: Some(RpcResponseMeta {
                error_code: Some(0),
                error_text: None,
            }),
            correlation_id: f.meta.correlation_id,
            ..Default::default()
        };
        let mut out = IOBuf::new();
        let payload = codec::encode(&EchoResponse {
            message: "canned".into(),
        });
        baidu_std::encode(&meta, &payload, &IOBuf::new(), &mut out).unwrap();
        c.write_all(&out.to_vec()).unwrap();
        (raw, f.meta)
    });
    (addr, t)
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn baidu_std_request_carries_ids_at_brpc_field_numbers() {
    let _g = serial();
    // Off: the meta carries no ids.
    rpcz::set_enabled(false);
    let (addr, t) = capture_one_request();
    let ch = Channel::new(addr, ChannelOptions::default()).unwrap();
    echo(&ch, &mut Controller::new(), &req("off")).unwrap();
    let (_, meta) = t.join().unwrap();
    let r = meta.request.unwrap();
    assert_eq!(
        (r.trace_id, r.span_id, r.parent_span_id),
        (None, None, None)
    );

    // On, as a child of a context: trace_id (4), span_id (5) and
    // parent_span_id (6) of RpcRequestMeta, varints, as bRPC sends them.
    rpcz::set_enabled(true);
    let (addr, t) = capture_one_request();
    let ch = Channel::new(addr, ChannelOptions::default()).unwrap();
    let parent = TraceContext {
        trace_id: 0x0123_4567_89ab_cdef,
        span_id: 0x42,
    };
    let mut cntl = Controller::new();
    cntl.set_log_id(0xb1d5);
    rpcz::with_parent(Some(parent), || echo(&ch, &mut cntl, &req("on"))).unwrap();
    let (raw, meta) = t.join().unwrap();
    let span = one("the call's span", |s| s.log_id == 0xb1d5);
    assert_eq!(span.trace_id, parent.trace_id);
    assert_eq!(span.parent_span_id, parent.span_id);
    let r = meta.request.unwrap();
    assert_eq!(r.trace_id, Some(parent.trace_id as i64));
    assert_eq!(r.span_id, Some(span.span_id as i64));
    assert_eq!(r.parent_span_id, Some(0x42));
    for (tag, v) in [
        (0x20u8, parent.trace_id),
        (0x28, span.span_id),
        (0x30, 0x42),
    ] {
        let mut field = vec![tag];
        field.extend(varint(v));
        assert!(
            contains(&raw, &field),
            "field {:#x} = {v:#x} in {raw:02x?}",
            tag >> 3
        );
    }
}

#[test]
fn a_brpc_style_frame_with_ids_makes_a_child_server_span() {
    let _g = serial();
    // Even at sample rate 0: the caller traced it, so the server does.
    fibrpc::flags::set("rpcz_sample_rate", "0").unwrap();
    let (server, _) = start_server(ServerOptions::default());
    // RpcMeta { request { service_name, method_name, log_id = 77,
    // trace_id = 1001, span_id = 2002, parent_span_id = 3003 },
    // correlation_id = 5 } and EchoRequest { message: "hi" }, encoded by
    // hand with bRPC's field numbers.
    let mut req_meta = vec![0x0a, 0x13];
    req_meta.extend(b"example.EchoService");
    req_meta.extend([0x12, 0x04]);
    req_meta.extend(b"Echo");
    req_meta.extend([
        0x18, 0x4d, 0x20, 0xe9, 0x07, 0x28, 0xd2, 0x0f, 0x30, 0xbb, 0x17,
    ]);
    let mut meta = vec![0x0a, req_meta.len() as u8];
    meta.extend(&req_meta);
    meta.extend([0x20, 0x05]);
    let payload = [0x0a, 0x02, b'h', b'i'];
    let mut frame = b"PRPC".to_vec();
    frame.extend(((meta.len() + payload.len()) as u32).to_be_bytes());
    frame.extend((meta.len() as u32).to_be_bytes());
    frame.extend(&meta);
    frame.extend(payload);

    let mut c = TcpStream::connect(server.listen_addr().unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&frame).unwrap();
    let (_, resp) = read_frame(&mut c);
    assert_eq!(resp.meta.correlation_id, Some(5));
    assert_eq!(resp.meta.response.unwrap().error_code(), 0);

    let s = one("the server span", |s| s.trace_id == 1001);
    assert_eq!(s.kind, SpanKind::Server);
    assert_eq!(s.parent_span_id, 2002, "a child of the caller's span");
    assert!(s.span_id != 2002 && s.span_id != 0);
    assert_eq!(s.log_id, 77);
    assert_eq!((&*s.service, &*s.method), (SERVICE, "Echo"));
    assert_eq!(s.request_size as usize, frame.len());
    assert!(all_stamps(&s), "{s:#?}");

    // A root call at rate 0 is not recorded.
    let ch = Channel::new(server.listen_addr().unwrap(), ChannelOptions::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_log_id(0x5a5a);
    echo(&ch, &mut cntl, &req("unsampled")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(spans_where(|s| s.log_id == 0x5a5a).is_empty());
}

/// An HTTP server whose `/hop` calls `/leaf` on `next` and whose `/leaf`
/// answers with the `traceparent` it got.
fn http_server(next: Option<SocketAddr>) -> Server {
    let mut s = Server::new(ServerOptions::default());
    s.add_http_handler("/leaf", |req: Request<IOBuf>, _: &HttpContext| {
        let tp = req
            .headers()
            .get("traceparent")
            .map_or(String::from("none"), |v| v.to_str().unwrap().to_string());
        fibrpc::http::text(StatusCode::OK, tp)
    })
    .unwrap();
    if let Some(next) = next {
        let ch = HttpChannel::new(&next.to_string(), ChannelOptions::default()).unwrap();
        s.add_http_handler("/hop", move |_: Request<IOBuf>, _: &HttpContext| {
            let r = ch.get("/leaf").unwrap();
            fibrpc::http::text(StatusCode::OK, r.body().to_vec())
        })
        .unwrap();
    }
    s.start("127.0.0.1:0").unwrap();
    s
}

#[test]
fn http_traceparent_round_trips_and_a_bad_one_is_ignored() {
    let _g = serial();
    let b = http_server(None);
    let a = http_server(b.listen_addr());
    let ch = HttpChannel::new(
        &a.listen_addr().unwrap().to_string(),
        ChannelOptions::default(),
    )
    .unwrap();
    let r = ch.get("/hop").unwrap();
    assert_eq!(r.status(), 200);
    let sent = String::from_utf8(r.body().to_vec()).unwrap();

    let a_client = one("A's call to /leaf", |s| {
        s.kind == SpanKind::Client && &*s.method == "/leaf"
    });
    let b_server = one("B's /leaf", |s| {
        s.kind == SpanKind::Server && &*s.method == "/leaf"
    });
    let a_server = one("A's /hop", |s| {
        s.kind == SpanKind::Server && &*s.method == "/hop"
    });
    let root = one("the caller's span", |s| {
        s.kind == SpanKind::Client && &*s.method == "/hop"
    });
    assert_eq!(
        sent,
        format!("00-{:032x}-{:016x}-01", root.trace_id, a_client.span_id),
        "the header on the wire"
    );
    assert_eq!(a_server.parent_span_id, root.span_id);
    assert_eq!(a_client.parent_span_id, a_server.span_id);
    assert_eq!(b_server.parent_span_id, a_client.span_id);
    for s in [&a_server, &a_client, &b_server] {
        assert_eq!(s.trace_id, root.trace_id);
        assert_eq!(s.protocol, "http");
        assert!(all_stamps(s), "{s:#?}");
    }
    assert_eq!(&*root.service, "GET");

    // A malformed traceparent: answered as usual, and the server's span
    // starts a trace of its own.
    rpcz::clear();
    let mut cntl = Controller::new();
    let bad = Request::get("/leaf")
        .header("traceparent", "00-zz-not-a-trace")
        .body(IOBuf::new())
        .unwrap();
    let bch = HttpChannel::new(
        &b.listen_addr().unwrap().to_string(),
        ChannelOptions::default(),
    )
    .unwrap();
    let r = bch.request(&mut cntl, bad).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.body().to_vec(),
        b"00-zz-not-a-trace",
        "the user's header is kept"
    );
    let s = one("B's span", |s| s.kind == SpanKind::Server);
    assert_eq!(s.parent_span_id, 0);
    let caller = one("the caller's span", |s| s.kind == SpanKind::Client);
    assert_ne!(s.trace_id, caller.trace_id);
}

struct Reply {
    status: u16,
    body: String,
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Reply { status, body }
}

fn json_spans(addr: SocketAddr, query: &str) -> Vec<serde_json::Value> {
    let r = get(addr, &format!("/rpcz?format=json&{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str::<serde_json::Value>(&r.body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn rpcz_page_lists_newest_first_and_filters() {
    let _g = serial();
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let ch = Channel::new(addr, ChannelOptions::default()).unwrap();
    let call = |log_id: u64, r: EchoRequest| {
        let mut cntl = Controller::new();
        cntl.set_log_id(log_id);
        let _ = echo(&ch, &mut cntl, &r);
    };
    call(101, req("fast"));
    call(
        102,
        EchoRequest {
            fail_code: Some(1234),
            ..req("failing")
        },
    );
    call(
        103,
        EchoRequest {
            sleep_ms: Some(40),
            ..req("slow")
        },
    );
    // Client and server span of each.
    assert!(
        wait_for(|| rpcz::spans().len() == 6),
        "{:#?}",
        rpcz::spans()
    );

    let all = json_spans(addr, "");
    let logs: Vec<u64> = all.iter().map(|s| s["log_id"].as_u64().unwrap()).collect();
    let mut newest_first = logs.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(logs, newest_first, "newest first");
    let starts: Vec<u64> = all
        .iter()
        .map(|s| s["start_ns"].as_u64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");

    let errors = json_spans(addr, "error_only");
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors
        .iter()
        .all(|s| s["error_code"] == 1234 && s["log_id"] == 102));

    let slow = json_spans(addr, "min_latency=30000");
    assert_eq!(slow.len(), 2, "{slow:#?}");
    assert!(slow.iter().all(|s| s["log_id"] == 103));

    let one_call = json_spans(addr, "log_id=101&max=1");
    assert_eq!(one_call.len(), 1);

    // By peer: the client spans name the server, the server spans the
    // channel's connection; a host alone matches every port.
    let to_server = json_spans(addr, &format!("peer={addr}"));
    assert_eq!(to_server.len(), 3, "{to_server:#?}");
    assert!(
        to_server.iter().all(|s| s["kind"] == "client"),
        "{to_server:#?}"
    );
    assert_eq!(json_spans(addr, "peer=127.0.0.1").len(), 6);
    assert!(json_spans(addr, "peer=10.9.9.9:1").is_empty());

    let trace = all[0]["trace_id"].as_str().unwrap().to_string();
    let by_trace = get(addr, &format!("/rpcz?trace={trace}&format=json"));
    let rows: serde_json::Value = serde_json::from_str(&by_trace.body).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        2,
        "the call's client and server spans"
    );

    // Text for curl, HTML for browsers; bad filters are 400.
    let text = get(addr, "/rpcz");
    assert!(text.body.contains("6 of 6 spans"), "{}", text.body);
    assert!(text.body.contains(&trace));
    let html = get(addr, "/rpcz?format=html");
    assert!(
        html.body.contains(&format!("/rpcz?trace={trace}")),
        "links to the trace"
    );
    assert_eq!(get(addr, "/rpcz?min_latency=soon").status, 400);
    assert_eq!(get(addr, "/rpcz?trace=xyz").status, 400);
}

#[test]
fn the_ring_is_bounded() {
    let _g = serial();
    fibrpc::flags::set("rpcz_max_spans", "5").unwrap();
    let (server, _) = start_server(ServerOptions::default());
    let ch = Channel::new(server.listen_addr().unwrap(), ChannelOptions::default()).unwrap();
    for i in 0..20 {
        let mut cntl = Controller::new();
        cntl.set_log_id(500 + i);
        echo(&ch, &mut cntl, &req("x")).unwrap();
    }
    assert!(wait_for(|| spans_where(|s| s.log_id == 519).len() == 2));
    let kept = rpcz::spans();
    assert_eq!(kept.len(), 5, "{kept:#?}");
    assert!(kept.iter().all(|s| s.log_id >= 517), "the newest are kept");
    // Shrinking drops the oldest at once; out-of-range sizes are refused.
    fibrpc::flags::set("rpcz_max_spans", "2").unwrap();
    assert_eq!(rpcz::spans().len(), 2);
    assert!(fibrpc::flags::set("rpcz_max_spans", "0").is_err());
    assert!(fibrpc::flags::set("rpcz_sample_rate", "1.5").is_err());
    assert!(fibrpc::flags::set("enable_rpcz", "yes").is_err());
}

/// `rpcz_max_traces_per_second` caps the traces started per second;
/// their server halves (a traced caller's) are still recorded.
#[test]
fn traces_started_per_second_are_capped() {
    let _g = serial();
    assert!(fibrpc::flags::set("rpcz_max_traces_per_second", "many").is_err());
    fibrpc::flags::set("rpcz_max_traces_per_second", "5").unwrap();
    let (server, _) = start_server(ServerOptions::default());
    let ch = Channel::new(server.listen_addr().unwrap(), ChannelOptions::default()).unwrap();
    let started = std::time::Instant::now();
    let calls = 200;
    for i in 0..calls {
        let mut cntl = Controller::new();
        cntl.set_log_id(700 + i);
        echo(&ch, &mut cntl, &req("x")).unwrap();
    }
    let seconds = started.elapsed().as_secs();
    fibrpc::flags::set("rpcz_max_traces_per_second", "0").unwrap();
    let client = |s: &Span| s.kind == SpanKind::Client;
    let roots = spans_where(client).len() as u64;
    // Each second (coarse clock, so a run spans at most `seconds + 2`
    // of them) starts at most 5.
    assert!(roots >= 1, "nothing traced");
    assert!(roots <= 5 * (seconds + 2), "{roots} traces in {seconds} s");
    assert!(roots < calls, "no cap: {roots} of {calls} traced");
    // Every trace started is whole: a server span for each client span.
    assert!(
        wait_for(|| spans_where(|s| s.kind == SpanKind::Server).len() as u64 == roots),
        "{:#?}",
        rpcz::spans()
    );
}

#[test]
fn off_records_nothing() {
    let _g = serial();
    fibrpc::flags::set("enable_rpcz", "false").unwrap();
    assert_eq!(fibrpc::flags::get("enable_rpcz").as_deref(), Some("false"));
    let (b, _) = start_server(ServerOptions::default());
    let (a, seen) = relay_server(b.listen_addr().unwrap());
    let ch = Channel::new(a.listen_addr().unwrap(), ChannelOptions::default()).unwrap();
    let _: EchoResponse = ch
        .call(
            "example.RelayService",
            "Relay",
            &mut Controller::new(),
            &req("quiet"),
        )
        .unwrap();
    let h = http_server(None);
    let hch = HttpChannel::new(
        &h.listen_addr().unwrap().to_string(),
        ChannelOptions::default(),
    )
    .unwrap();
    let r = hch.get("/leaf").unwrap();
    assert_eq!(r.body().to_vec(), b"none", "no traceparent sent");
    // Even a context set by hand is not seen while off.
    rpcz::with_parent(
        Some(TraceContext {
            trace_id: 1,
            span_id: 2,
        }),
        || {
            assert_eq!(rpcz::current(), None);
            echo(&ch_to(&b), &mut Controller::new(), &req("ctx")).unwrap();
        },
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(rpcz::spans().is_empty(), "{:#?}", rpcz::spans());
    assert_eq!(*seen.lock().unwrap(), [None]);
    let page = get(a.listen_addr().unwrap(), "/rpcz");
    assert!(page.body.contains("rpcz is off"), "{}", page.body);
}

fn ch_to(s: &Server) -> Channel {
    Channel::new(s.listen_addr().unwrap(), ChannelOptions::default()).unwrap()
}

/// `example.RelayService.Relay`, deferred: calls B's Echo asynchronously
/// from its handler and answers in the callback.
struct DeferredRelay {
    next: Channel,
}

impl Service for DeferredRelay {
    fn service_name(&self) -> &'static str {
        "example.RelayService"
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Relay"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        unreachable!("deferred")
    }
    fn defers(&self, _: usize) -> bool {
        true
    }
    fn call_method_deferred(&self, _: usize, request: IOBuf, done: fibrpc::Responder) {
        let r: EchoRequest = codec::decode_request(&request).unwrap();
        let mut down = Controller::new();
        down.set_log_id(done.controller().log_id());
        self.next.call_async(
            SERVICE,
            "Echo",
            down,
            &r,
            move |_, resp: Result<EchoResponse, RpcError>| {
                done.send(resp.map(|m| codec::encode(&m)));
            },
        );
    }
}

#[test]
fn a_deferred_handler_and_an_asynchronous_call_are_traced() {
    let _g = serial();
    let (b, _) = start_server(ServerOptions::default());
    // Connected now, so the asynchronous call goes out at once on the
    // connection at hand (no fiber carries it).
    let next = Channel::connect(b.listen_addr().unwrap()).unwrap();
    let mut a = Server::new(ServerOptions::default());
    a.add_service(DeferredRelay { next }).unwrap();
    a.start("127.0.0.1:0").unwrap();
    let ch = ch_to(&a);
    let mut cntl = Controller::new();
    cntl.set_log_id(0xdef);
    let resp: EchoResponse = ch
        .call("example.RelayService", "Relay", &mut cntl, &req("later"))
        .unwrap();
    assert_eq!(resp.message, "later");
    let mine = |kind: SpanKind, method: &'static str| {
        move |s: &Span| s.log_id == 0xdef && s.kind == kind && &*s.method == method
    };
    let root = one("the caller's span", mine(SpanKind::Client, "Relay"));
    let a_server = one("A's server span", mine(SpanKind::Server, "Relay"));
    let a_client = one("A's asynchronous call", mine(SpanKind::Client, "Echo"));
    let b_server = one("B's server span", mine(SpanKind::Server, "Echo"));
    assert_eq!(a_server.parent_span_id, root.span_id);
    assert_eq!(a_client.parent_span_id, a_server.span_id);
    assert_eq!(b_server.parent_span_id, a_client.span_id);
    for s in [&root, &a_server, &a_client, &b_server] {
        assert_eq!(s.trace_id, root.trace_id);
        assert!(all_stamps(s), "{s:#?}");
    }
    // The deferred handler ended when it answered: after its call came
    // back.
    let end = |s: &Span, i: usize| s.start_ns + s.stamps()[i].1.unwrap().as_nanos() as u64;
    assert!(
        end(&a_server, 3) >= end(&a_client, 4),
        "{a_server:#?} {a_client:#?}"
    );
}

#[test]
fn a_pb_method_over_http_takes_the_traceparent_and_spans_reach_tracing() {
    let _g = serial();
    log_capture::capture(tracing::Level::DEBUG);
    let (server, _) = start_server(ServerOptions::default());
    let ch = HttpChannel::new(
        &server.listen_addr().unwrap().to_string(),
        ChannelOptions::default(),
    )
    .unwrap();
    let body = codec::encode(&req("over http"));
    let call = Request::post(format!("/{SERVICE}/Echo"))
        .header("content-type", "application/proto")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .body(body)
        .unwrap();
    let r = ch.request(&mut Controller::new(), call).unwrap();
    assert_eq!(r.status(), 200);
    let s = one("the method's span", |s| s.kind == SpanKind::Server);
    assert_eq!(
        (&*s.service, &*s.method, s.protocol),
        (SERVICE, "Echo", "http")
    );
    assert_eq!(
        s.trace_id, 0xa3ce929d0e0e4736,
        "the low half of the W3C trace id"
    );
    assert_eq!(s.parent_span_id, 0x00f067aa0ba902b7);
    assert!(all_stamps(&s), "{s:#?}");
    assert!(s.request_size > 0 && s.response_size > 0);
    // The same span as a `tracing` event, for a subscriber to export.
    let want = format!("span_id={:016x}", s.span_id);
    assert!(
        wait_for(|| log_capture::logged()
            .lines()
            .any(|l| l.contains("fibrpc::rpcz") && l.contains("rpcz span") && l.contains(&want))),
        "{}",
        log_capture::logged()
    );
}

/// A traced unary gRPC call over `GrpcChannel`: the client's span and
/// the server's, linked through the `traceparent` the call carried,
/// with the fields a baidu_std call's spans have; a failed call's and an
/// unknown method's spans carry their error codes.
#[test]
fn grpc_unary_calls_are_traced_and_linked_by_traceparent() {
    let _g = serial();
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let ch = fibrpc::GrpcChannel::new(addr, ChannelOptions::default()).unwrap();
    let request = req("over grpc");
    let resp: EchoResponse = ch
        .call(SERVICE, "Echo", &mut Controller::new(), &request)
        .unwrap();
    assert_eq!(resp.message, "over grpc");

    let grpc = |kind: SpanKind| move |s: &Span| s.kind == kind && s.protocol == "grpc";
    let client = one("the gRPC client's span", grpc(SpanKind::Client));
    let server_span = one("the gRPC server's span", grpc(SpanKind::Server));
    assert_eq!(
        (&*server_span.service, &*server_span.method),
        (SERVICE, "Echo")
    );
    assert_eq!((&*client.service, &*client.method), (SERVICE, "Echo"));
    assert_eq!(server_span.trace_id, client.trace_id, "one trace");
    assert_eq!(server_span.parent_span_id, client.span_id, "a child");
    assert_ne!(server_span.span_id, client.span_id);
    assert!(server_span.peer.is_some_and(|p| p.ip().is_loopback()));
    assert_eq!(client.peer, Some(addr));
    assert!(all_stamps(&server_span), "{server_span:#?}");
    assert!(all_stamps(&client), "{client:#?}");
    // The length-prefixed messages each way.
    assert_eq!(
        server_span.request_size as usize,
        5 + codec::encode(&request).len()
    );
    assert_eq!(
        server_span.response_size as usize,
        5 + codec::encode(&resp).len()
    );
    assert_eq!((server_span.error_code, client.error_code), (0, 0));

    rpcz::clear();
    let failing = EchoRequest {
        fail_code: Some(2001),
        ..req("fail")
    };
    let e = ch
        .call::<_, EchoResponse>(SERVICE, "Echo", &mut Controller::new(), &failing)
        .unwrap_err();
    assert_eq!(e.code, 2001);
    let s = one("a failed call's server span", grpc(SpanKind::Server));
    assert_eq!((s.error_code, s.response_size), (2001, 0));
    assert!(all_stamps(&s), "{s:#?}");
    assert_eq!(
        one("a failed call's client span", grpc(SpanKind::Client)).error_code,
        2001
    );

    rpcz::clear();
    let e = ch
        .call::<_, EchoResponse>(SERVICE, "Nope", &mut Controller::new(), &request)
        .unwrap_err();
    let s = one("an unknown method's server span", grpc(SpanKind::Server));
    assert_eq!((&*s.service, &*s.method), (SERVICE, "Nope"));
    assert_eq!(s.error_code, fibrpc::errno::ENOMETHOD, "{e}");
}

/// The streaming echo service: `Chat` answers each request and
/// remembers the trace context its handler ran under.
struct TracedChat(Arc<Mutex<Vec<Option<TraceContext>>>>);

impl fibrpc_example::StreamEchoService for TracedChat {
    fn echo(
        &self,
        _: &mut Controller,
        req: fibrpc_example::StreamRequest,
    ) -> Result<fibrpc_example::StreamResponse, RpcError> {
        Ok(fibrpc_example::StreamResponse {
            message: req.message,
            ..Default::default()
        })
    }

    fn expand(
        &self,
        _: &mut Controller,
        _: fibrpc_example::StreamRequest,
        _: fibrpc::protocol::grpc::ServerStreamWriter<fibrpc_example::StreamResponse>,
    ) -> Result<(), RpcError> {
        Ok(())
    }

    fn collect(
        &self,
        _: &mut Controller,
        _: fibrpc::protocol::grpc::ClientStreamReader<fibrpc_example::StreamRequest>,
    ) -> Result<fibrpc_example::StreamResponse, RpcError> {
        Ok(Default::default())
    }

    fn chat(
        &self,
        _: &mut Controller,
        stream: fibrpc::protocol::grpc::BidiStream<
            fibrpc_example::StreamRequest,
            fibrpc_example::StreamResponse,
        >,
    ) -> Result<(), RpcError> {
        self.0.lock().unwrap().push(rpcz::current());
        while let Some(r) = stream.recv()? {
            if r.message == "fail" {
                return Err(RpcError::new(2002, "asked to fail"));
            }
            stream.send(&fibrpc_example::StreamResponse {
                message: r.message,
                ..Default::default()
            })?;
        }
        Ok(())
    }
}

/// One gRPC message, framed.
fn grpc_framed(msg: &impl prost::Message) -> Vec<u8> {
    let body = msg.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend(body);
    out
}

/// A bidirectional gRPC stream is one server span: the caller's ids
/// from its `traceparent`, the bytes of the messages each way, the
/// handler's fiber under the span's context, and the status it ended
/// with.
#[test]
fn a_grpc_stream_is_one_server_span_under_its_callers_traceparent() {
    use fibrpc::protocol::h2::frame::{flag, kind};
    use h2_common::{frame, request_block, RawH2};

    let _g = serial();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(fibrpc_example::StreamEchoServiceServer::new(TracedChat(
            seen.clone(),
        )))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let path = format!("/{}/Chat", fibrpc_example::STREAM_ECHO_SERVICE_NAME);
    let call = |stream: u32, messages: &[&str]| {
        let mut c = RawH2::connect(server.listen_addr().unwrap());
        let block = request_block(
            "POST",
            &path,
            &[
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            ],
        );
        c.send(&frame(kind::HEADERS, flag::END_HEADERS, stream, &block));
        let mut body = Vec::new();
        for m in messages {
            body.extend(grpc_framed(&fibrpc_example::StreamRequest {
                message: m.to_string(),
                ..Default::default()
            }));
        }
        c.send(&frame(kind::DATA, flag::END_STREAM, stream, &body));
        (c.response(stream), body.len())
    };

    let (reply, sent) = call(1, &["one", "two", "three"]);
    assert_eq!(reply.header("grpc-status"), Some("0"), "{reply:?}");
    let s = one("the stream's span", |s| s.kind == SpanKind::Server);
    assert_eq!(
        (&*s.service, &*s.method, s.protocol),
        (fibrpc_example::STREAM_ECHO_SERVICE_NAME, "Chat", "grpc")
    );
    assert_eq!(s.trace_id, 0xa3ce929d0e0e4736);
    assert_eq!(s.parent_span_id, 0x00f067aa0ba902b7);
    assert!(s.peer.is_some());
    assert_eq!(s.request_size as usize, sent, "the three requests' bytes");
    assert_eq!(
        s.response_size as usize,
        reply.body.len(),
        "the three answers"
    );
    assert_eq!(s.error_code, 0);
    assert!(all_stamps(&s), "{s:#?}");
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[Some(TraceContext {
            trace_id: s.trace_id,
            span_id: s.span_id
        })],
        "the handler ran under the stream's span"
    );

    rpcz::clear();
    let (reply, _) = call(1, &["fail"]);
    let status = reply.header("grpc-status");
    assert!(status.is_some_and(|s| s != "0"), "{reply:?}");
    let s = one("a failed stream's span", |s| s.kind == SpanKind::Server);
    assert_eq!(s.error_code, 2002);
    assert!(all_stamps(&s), "{s:#?}");
}
