//! Golden frames captured between bRPC 1.17's echo example client and
//! server (`tests/data/baidu_std_vectors.txt`): each parses to what its comment says, and fibrpc's encoder reproduces
//! each one byte for byte from the same fields.

use std::collections::HashMap;

use fibrpc::protocol::baidu_std::checksum::{self, CHECKSUM_CRC32C};
use fibrpc::protocol::baidu_std::{
    encode, parse, probe, Frame, ParseResult, Probe, RpcMeta, RpcRequestMeta, RpcResponseMeta,
    DEFAULT_MAX_BODY,
};
use fibrpc::IOBuf;
use prost::Message;

/// `example.EchoRequest` / `example.EchoResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct Echo {
    #[prost(string, required, tag = "1")]
    message: String,
}

struct Vector {
    kind: String,
    fields: HashMap<String, String>,
    bytes: Vec<u8>,
}

impl Vector {
    fn num(&self, key: &str) -> i64 {
        self.fields[key].parse().unwrap()
    }
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
        "/tests/data/baidu_std_vectors.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut pending: Option<(String, HashMap<String, String>)> = None;
    for line in text.lines() {
        if let Some(c) = line.strip_prefix("# ") {
            let Some((kind, rest)) = c.split_once(": ") else {
                continue;
            };
            if kind != "request" && kind != "response" {
                continue;
            }
            // Fields come before the parenthesised remark.
            let rest = rest.split('(').next().unwrap();
            let fields = rest
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            pending = Some((kind.to_string(), fields));
        } else if !line.trim().is_empty() {
            let (kind, fields) = pending.take().expect("a comment before each frame");
            out.push(Vector {
                kind,
                fields,
                bytes: unhex(line.trim()),
            });
        }
    }
    assert_eq!(out.len(), 8, "all eight captured frames");
    out
}

fn parse_all(bytes: &[u8]) -> Frame {
    let mut buf = IOBuf::from(bytes);
    assert_eq!(probe(&buf), Probe::Yes);
    match parse(&mut buf, DEFAULT_MAX_BODY) {
        ParseResult::Complete(f) => {
            assert!(buf.is_empty());
            f
        }
        r => panic!("{r:?}"),
    }
}

/// The meta bRPC 1.17 writes, built from the comment's fields only (plus
/// the checksum value, which for a response is the request's echoed).
fn expected_meta(v: &Vector, payload: &IOBuf, echoed_checksum: &[u8]) -> RpcMeta {
    let att = v.num("attachment_bytes") as i32;
    let ck = if v.kind == "request" {
        v.num("checksum_type") as i32
    } else {
        0
    };
    let mut meta = RpcMeta {
        compress_type: Some(0),
        correlation_id: Some(v.num("correlation_id")),
        attachment_size: (att > 0).then_some(att),
        content_type: Some(0),
        checksum_type: Some(ck),
        checksum_value: Some(Vec::new()),
        ..Default::default()
    };
    if v.kind == "request" {
        meta.request = Some(RpcRequestMeta {
            service_name: "example.EchoService".into(),
            method_name: "Echo".into(),
            log_id: Some(v.num("log_id")),
            ..Default::default()
        });
        if ck == CHECKSUM_CRC32C {
            checksum::fill_crc32c(&mut meta, payload, &IOBuf::new());
        }
    } else {
        meta.response = Some(RpcResponseMeta {
            error_code: Some(0),
            error_text: None,
        });
        meta.checksum_value = Some(echoed_checksum.to_vec());
    }
    meta
}

#[test]
fn every_frame_parses_to_its_fields() {
    for v in vectors() {
        let f = parse_all(&v.bytes);
        assert_eq!(f.meta.correlation_id(), v.num("correlation_id"));
        assert_eq!(f.attachment.len() as i64, v.num("attachment_bytes"));
        assert_eq!(f.meta.compress_type(), 0);
        if v.kind == "request" {
            let req = f.meta.request.as_ref().unwrap();
            assert_eq!(req.service_name, "example.EchoService");
            assert_eq!(req.method_name, "Echo");
            assert_eq!(req.log_id(), v.num("log_id"));
            assert!(f.meta.response.is_none());
        } else {
            assert_eq!(f.meta.response.as_ref().unwrap().error_code(), 0);
            assert!(f.meta.request.is_none());
        }
        assert_eq!(i64::from(f.meta.checksum_type()), v.num("checksum_type"));
        checksum::verify(&f.meta, &f.payload, &f.attachment).unwrap();
        let echo = Echo::decode(f.payload.clone()).unwrap();
        assert_eq!(echo.message, "hello world");
        if !f.attachment.is_empty() {
            assert_eq!(f.attachment, "hello");
        }
    }
}

#[test]
fn encoder_reproduces_every_frame() {
    let mut last_request_checksum = Vec::new();
    for v in vectors() {
        let payload = IOBuf::from(
            Echo {
                message: "hello world".into(),
            }
            .encode_to_vec(),
        );
        let attachment = if v.num("attachment_bytes") > 0 {
            IOBuf::from("hello")
        } else {
            IOBuf::new()
        };
        let meta = expected_meta(&v, &payload, &last_request_checksum);
        if v.kind == "request" {
            last_request_checksum = meta.checksum_value().to_vec();
        }
        let mut out = IOBuf::new();
        encode(&meta, &payload, &attachment, &mut out).unwrap();
        assert_eq!(out.to_vec(), v.bytes, "{} {:?}", v.kind, v.fields);
        // And the parsed meta re-encodes to the same bytes.
        let f = parse_all(&v.bytes);
        assert_eq!(f.meta, meta);
    }
}

#[test]
fn the_whole_capture_as_one_stream_byte_by_byte() {
    let vs = vectors();
    let stream: Vec<u8> = vs.iter().flat_map(|v| v.bytes.clone()).collect();
    let mut buf = IOBuf::new();
    let mut got = 0;
    for &b in &stream {
        buf.push_byte(b);
        match parse(&mut buf, DEFAULT_MAX_BODY) {
            ParseResult::NotEnoughData => {}
            ParseResult::Complete(f) => {
                assert_eq!(f.meta.correlation_id(), vs[got].num("correlation_id"));
                got += 1;
            }
            ParseResult::Error(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, vs.len());
    assert!(buf.is_empty());
}
