//! Golden frames of bRPC's streaming RPC, captured from bRPC 1.17's
//! `example/streaming_echo_c++` and helpers
//! (`tests/data/brpc_streaming_vectors.txt`): every frame parses to what
//! its comment says; fibrpc's encoder reproduces every frame bRPC wrote
//! from the same fields; and fibrpc's server and client, facing a peer
//! that replays the capture, write the captured frames byte for byte
//! (with fibrpc's stream ids and correlation ids put back to the
//! captured ones).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use fibrpc::protocol::baidu_std::{self, RpcMeta, RpcRequestMeta, StreamSettings};
use fibrpc::protocol::streaming::{
    self as strm, encode_message, FrameType, Stream, StreamFrameMeta, StreamInput,
    StreamInputHandler, StreamOptions,
};
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

struct Vector {
    id: String,
    comments: Vec<String>,
    bytes: Vec<u8>,
}

impl Vector {
    /// The `key=value` pairs of the comment line starting with `label`
    /// (before its parenthesised remark), nested `{...}` kept as values.
    fn fields(&self, label: &str) -> Option<HashMap<String, String>> {
        let line = self
            .comments
            .iter()
            .find_map(|c| c.trim().strip_prefix(label))?;
        let line = line.split("  (").next().unwrap();
        Some(kv(line))
    }

    fn harness(&self) -> bool {
        self.comments[0].contains("harness-crafted")
    }

    fn strm(&self) -> bool {
        self.bytes.starts_with(b"STRM")
    }
}

/// `a=1 b {c=2 d=3} e=x` → {a: 1, b: "c=2 d=3", e: x}.
fn kv(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let key_end = rest.find(['=', ' ']).unwrap_or(rest.len());
        let key = rest[..key_end].to_string();
        rest = rest[key_end..].trim_start();
        if let Some(r) = rest.strip_prefix('{') {
            let end = r.find('}').unwrap();
            out.insert(key, r[..end].to_string());
            rest = r[end + 1..].trim_start();
        } else if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            if let Some(r2) = r.strip_prefix('{') {
                let end = r2.find('}').unwrap();
                out.insert(key, r2[..end].to_string());
                rest = r2[end + 1..].trim_start();
            } else if let Some(r2) = r.strip_prefix('"') {
                let end = r2.find('"').unwrap();
                out.insert(key, r2[..end].to_string());
                rest = r2[end + 1..].trim_start();
            } else {
                let end = r.find(' ').unwrap_or(r.len());
                out.insert(key, r[..end].to_string());
                rest = r[end..].trim_start();
            }
        } else {
            out.insert(key, String::new());
        }
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn vectors() -> Vec<Vector> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/brpc_streaming_vectors.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            if c.starts_with('S') && c.as_bytes().get(1).is_some_and(u8::is_ascii_digit) {
                comments = vec![c.to_string()];
            } else if !comments.is_empty() {
                comments.push(c.to_string());
            }
        } else if !line.trim().is_empty() {
            let id = comments[0].split_whitespace().next().unwrap().to_string();
            out.push(Vector {
                id,
                comments: std::mem::take(&mut comments),
                bytes: unhex(line.trim()),
            });
        }
    }
    assert_eq!(out.len(), 16 + 4 + 15 + 16 + 16, "every captured frame");
    out
}

fn vector(all: &[Vector], id: &str) -> Vec<u8> {
    all.iter().find(|v| v.id == id).unwrap().bytes.clone()
}

fn parse_strm(bytes: &[u8]) -> strm::StreamFrame {
    let mut buf = IOBuf::from(bytes);
    match strm::parse(&mut buf, 64 << 20) {
        strm::ParseResult::Complete(f) => {
            assert!(buf.is_empty(), "exactly one frame");
            f
        }
        r => panic!("{r:?}"),
    }
}

fn parse_prpc(bytes: &[u8]) -> baidu_std::Frame {
    let mut buf = IOBuf::from(bytes);
    match baidu_std::parse(&mut buf, 64 << 20) {
        baidu_std::ParseResult::Complete(f) => {
            assert!(buf.is_empty(), "exactly one frame");
            f
        }
        r => panic!("{r:?}"),
    }
}

fn settings_from(text: &str) -> StreamSettings {
    let f = kv(text);
    StreamSettings {
        stream_id: f["stream_id"].parse().unwrap(),
        need_feedback: f.get("need_feedback").map(|v| v == "true"),
        writable: f.get("writable").map(|v| v == "true"),
        extra_stream_ids: f
            .get("extra_stream_ids")
            .map(|v| vec![v.parse().unwrap()])
            .unwrap_or_default(),
    }
}

fn frame_type(name: &str) -> FrameType {
    match name {
        "DATA" => FrameType::Data,
        "FEEDBACK" => FrameType::Feedback,
        "CLOSE" => FrameType::Close,
        "RST" => FrameType::Rst,
        other => panic!("frame type {other}"),
    }
}

/// The STRM meta a comment describes, built with fibrpc's constructors
/// (which set the fields bRPC sets for each type).
fn meta_from(f: &HashMap<String, String>) -> StreamFrameMeta {
    let stream: i64 = f["stream_id"].parse().unwrap();
    let source: Option<i64> = f.get("source_stream_id").map(|v| v.parse().unwrap());
    match frame_type(&f["frame_type"]) {
        FrameType::Data => {
            StreamFrameMeta::data(stream, source.unwrap(), f["has_continuation"] == "true")
        }
        FrameType::Feedback => {
            let consumed = kv(&f["feedback"])["consumed_size"].parse().unwrap();
            StreamFrameMeta::feedback(stream, source.unwrap(), consumed)
        }
        FrameType::Close => StreamFrameMeta::close(stream, source.unwrap()),
        FrameType::Rst => StreamFrameMeta::rst(stream),
        FrameType::Unknown => unreachable!(),
    }
}

#[test]
fn every_frame_parses_to_its_comment() {
    for v in vectors() {
        if v.strm() {
            let frame = parse_strm(&v.bytes);
            let f = v.fields("StreamFrameMeta:").unwrap();
            let m = &frame.meta;
            assert_eq!(m.stream_id.to_string(), f["stream_id"], "{}", v.id);
            assert_eq!(
                m.source_stream_id.map(|s| s.to_string()),
                f.get("source_stream_id").cloned(),
                "{}",
                v.id
            );
            assert_eq!(m.kind(), frame_type(&f["frame_type"]), "{}", v.id);
            if let Some(c) = f.get("has_continuation") {
                assert_eq!(m.has_continuation.unwrap().to_string(), *c, "{}", v.id);
            }
            if let Some(fb) = f.get("feedback") {
                assert_eq!(
                    m.feedback.as_ref().unwrap().consumed_size().to_string(),
                    kv(fb)["consumed_size"],
                    "{}",
                    v.id
                );
            }
            if let Some(nested) = v.fields("nested RpcMeta:") {
                // The call's response, inside the DATA frame.
                let inner = parse_prpc(&frame.payload.to_vec());
                assert!(inner.meta.response.is_some(), "{}", v.id);
                assert_eq!(
                    inner.meta.stream_settings,
                    nested.get("stream_settings").map(|s| settings_from(s)),
                    "{}",
                    v.id
                );
            } else if let Some(p) = v.comments.iter().find_map(|c| {
                c.trim()
                    .strip_prefix("payload (")
                    .and_then(|r| r.split(' ').next())
            }) {
                assert_eq!(frame.payload.len().to_string(), p, "{}", v.id);
            } else {
                assert!(frame.payload.is_empty(), "{}", v.id);
            }
        } else {
            let frame = parse_prpc(&v.bytes);
            let f = v.fields("RpcMeta:").unwrap();
            assert_eq!(
                frame.meta.stream_settings,
                f.get("stream_settings").map(|s| settings_from(s)),
                "{}",
                v.id
            );
        }
    }
}

/// A request meta as fibrpc's client writes one (bRPC's presence).
fn request_meta(method: &str, correlation_id: i64, settings: StreamSettings) -> RpcMeta {
    RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: "example.EchoService".into(),
            method_name: method.into(),
            ..Default::default()
        }),
        compress_type: Some(0),
        correlation_id: Some(correlation_id),
        stream_settings: Some(settings),
        content_type: Some(0),
        checksum_type: Some(0),
        checksum_value: Some(Vec::new()),
        ..Default::default()
    }
}

#[test]
fn the_encoder_reproduces_every_frame_brpc_wrote() {
    let all = vectors();
    let mut checked = 0;
    for v in all.iter().filter(|v| !v.harness()) {
        if v.strm() {
            let frame = parse_strm(&v.bytes);
            let meta = meta_from(&v.fields("StreamFrameMeta:").unwrap());
            let mut out = IOBuf::new();
            strm::encode(&meta, &frame.payload, &mut out);
            assert_eq!(out.to_vec(), v.bytes, "{}", v.id);
            if v.fields("nested RpcMeta:").is_some() {
                // The nested response re-encodes to itself too.
                let bytes = frame.payload.to_vec();
                let inner = parse_prpc(&bytes);
                let mut out = IOBuf::new();
                baidu_std::encode(&inner.meta, &inner.payload, &inner.attachment, &mut out)
                    .unwrap();
                assert_eq!(out.to_vec(), bytes, "{} nested", v.id);
            }
        } else {
            let frame = parse_prpc(&v.bytes);
            let f = v.fields("RpcMeta:").unwrap();
            if !f.contains_key("request") {
                // A plain error response (S5.14): its meta re-encodes to
                // itself.
                let mut out = IOBuf::new();
                baidu_std::encode(&frame.meta, &frame.payload, &IOBuf::new(), &mut out).unwrap();
                assert_eq!(out.to_vec(), v.bytes, "{}", v.id);
                checked += 1;
                continue;
            }
            let meta = request_meta(
                &kv(&f["request"])["method_name"],
                f["correlation_id"].parse().unwrap(),
                settings_from(&f["stream_settings"]),
            );
            let mut out = IOBuf::new();
            baidu_std::encode(&meta, &frame.payload, &IOBuf::new(), &mut out).unwrap();
            assert_eq!(out.to_vec(), v.bytes, "{}", v.id);
        }
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");

    // A 26-byte message in segments of 10 (S2.01-S2.03).
    let mut out = IOBuf::new();
    encode_message(
        0,
        0,
        &IOBuf::from("abcdefghijklmnopqrstuvwxyz"),
        10,
        &mut out,
    );
    let expected = [
        vector(&all, "S2.01"),
        vector(&all, "S2.02"),
        vector(&all, "S2.03"),
    ]
    .concat();
    assert_eq!(out.to_vec(), expected);
}

// ---- fibrpc's server and client against the capture ----

/// Reads one PRPC or STRM frame.
fn read_frame(t: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 12];
    t.read_exact(&mut header).unwrap();
    let body = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    let mut frame = header.to_vec();
    frame.resize(12 + body, 0);
    t.read_exact(&mut frame[12..]).unwrap();
    frame
}

/// `frame` with its stream ids mapped by `ids` (ours → captured) and
/// the nested response's correlation id set to `correlation_id`.
fn normalize(frame: &[u8], ids: &[(i64, i64)], correlation_id: Option<i64>) -> Vec<u8> {
    let map = |id: i64| ids.iter().find(|(a, _)| *a == id).map_or(id, |&(_, b)| b);
    if frame.starts_with(b"PRPC") {
        let mut f = parse_prpc(frame);
        if let Some(s) = &mut f.meta.stream_settings {
            s.stream_id = map(s.stream_id);
            s.extra_stream_ids.iter_mut().for_each(|i| *i = map(*i));
        }
        if correlation_id.is_some() {
            f.meta.correlation_id = correlation_id;
        }
        let mut out = IOBuf::new();
        baidu_std::encode(&f.meta, &f.payload, &f.attachment, &mut out).unwrap();
        return out.to_vec();
    }
    let mut f = parse_strm(frame);
    f.meta.stream_id = map(f.meta.stream_id);
    f.meta.source_stream_id = f.meta.source_stream_id.map(map);
    let payload = if f.payload.to_vec().starts_with(b"PRPC") {
        IOBuf::from(normalize(&f.payload.to_vec(), ids, correlation_id))
    } else {
        f.payload
    };
    let mut out = IOBuf::new();
    strm::encode(&f.meta, &payload, &mut out);
    out.to_vec()
}

/// Consumes what it receives, like the example server's `StreamReceiver`.
struct Consume;

impl StreamInputHandler for Consume {
    fn on_received_messages(&self, _: &Stream, _: &mut [IOBuf]) {}
}

struct Accepting;

impl EchoService for Accepting {
    fn echo(&self, cntl: &mut Controller, _: EchoRequest) -> Result<EchoResponse, RpcError> {
        Stream::accept(
            cntl,
            StreamOptions::with_handler(std::sync::Arc::new(Consume)),
        )?;
        Ok(EchoResponse {
            message: "Accepted stream".into(),
        })
    }
}

#[test]
fn fibrpcs_server_writes_what_brpcs_server_wrote() {
    let all = vectors();
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(EchoServiceServer::new(Accepting))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let mut t = TcpStream::connect(server.listen_addr().unwrap()).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // bRPC's client opens client stream 0 (S1.01).
    t.write_all(&vector(&all, "S1.01")).unwrap();
    let response = read_frame(&mut t);
    let ours = parse_strm(&response).meta.source_stream_id.unwrap();
    let ids = [(ours, 146)];
    assert_eq!(normalize(&response, &ids, None), vector(&all, "S1.02"));
    // The client's DATA, addressed to our stream; our FEEDBACK answers
    // each (S1.03-S1.06).
    let to_ours = |id: &str| normalize(&vector(&all, id), &[(146, ours)], None);
    for (data, feedback) in [("S1.03", "S1.05"), ("S1.04", "S1.06")] {
        t.write_all(&to_ours(data)).unwrap();
        assert_eq!(
            normalize(&read_frame(&mut t), &ids, None),
            vector(&all, feedback),
            "{feedback}"
        );
    }
    // CLOSE is answered with CLOSE (S1.15, S1.16)...
    t.write_all(&to_ours("S1.15")).unwrap();
    assert_eq!(
        normalize(&read_frame(&mut t), &ids, None),
        vector(&all, "S1.16")
    );
    // ...and a CLOSE for the stream now gone with RST to its source
    // (S5.11, S5.12: RST{stream_id=5}).
    t.write_all(&vector(&all, "S5.11")).unwrap();
    assert_eq!(read_frame(&mut t), vector(&all, "S5.12"));
}

#[test]
fn fibrpcs_client_writes_what_brpcs_client_wrote() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer_all = vectors();
    // A peer replaying bRPC's server side of S1.
    let peer = std::thread::spawn(move || {
        let all = peer_all;
        let (mut t, _) = listener.accept().unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let request = read_frame(&mut t);
        let f = parse_prpc(&request);
        let ours = f.meta.stream_settings.as_ref().unwrap().stream_id;
        let cid = f.meta.correlation_id.unwrap();
        let ids = [(ours, 0)];
        assert_eq!(
            normalize(&request, &ids, Some(4294967298)),
            vector(&all, "S1.01")
        );
        let to_client = |id: &str| normalize(&vector(&all, id), &[(0, ours)], Some(cid));
        t.write_all(&to_client("S1.02")).unwrap();
        for id in ["S1.03", "S1.04"] {
            assert_eq!(
                normalize(&read_frame(&mut t), &ids, None),
                vector(&all, id),
                "{id}"
            );
        }
        t.write_all(&to_client("S1.05")).unwrap();
        // The client closes (S1.15); bRPC's server answers CLOSE (S1.16);
        // the client's stream is gone and answers RST{146}.
        assert_eq!(
            normalize(&read_frame(&mut t), &ids, None),
            vector(&all, "S1.15")
        );
        t.write_all(&to_client("S1.16")).unwrap();
        assert_eq!(read_frame(&mut t), vector(&all, "S4.16"));
    });
    let channel = Channel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            // A default bRPC client sends no `timeout_ms`.
            deliver_timeout: false,
            ..Default::default()
        },
    )
    .unwrap();
    let client = EchoServiceClient::new(channel);
    let mut cntl = Controller::new();
    // The example client's stream: no handler (writable=false).
    let stream = Stream::create(
        &mut cntl,
        StreamOptions {
            input: StreamInput::Discard,
            ..Default::default()
        },
    );
    let resp = client
        .echo(
            &mut cntl,
            &EchoRequest {
                message: "I'm a RPC to connect stream".into(),
            },
        )
        .unwrap();
    assert_eq!(resp.message, "Accepted stream");
    assert_eq!(stream.remote_id(), 146);
    stream
        .write(IOBuf::from("abcdefghijklmnopqrstuvwxyz"))
        .unwrap();
    stream.write(IOBuf::from("0123456789")).unwrap();
    assert!(
        (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(5));
            stream.stats().remote_consumed == 26
        }),
        "the FEEDBACK arrived"
    );
    stream.close();
    peer.join().unwrap();
}
