//! Bad stream frames from a raw-socket peer: each affects only its
//! stream, or the connection where bRPC closes it, and says so in the
//! log.

#[path = "log_capture.rs"]
mod log_capture;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use fibrpc::protocol::baidu_std::{self, RpcMeta, RpcRequestMeta, StreamSettings};
use fibrpc::protocol::streaming::{
    self as strm, FrameType, Stream, StreamFrameMeta, StreamOptions,
};
use fibrpc::{Controller, IOBuf, RpcError, Server, ServerOptions};
use fibrpc_example::{EchoRequest, EchoResponse, EchoService, EchoServiceServer};

const WINDOW: usize = 1024;

/// Accepts the request's stream with a small window and never reads it.
struct Accepting(Mutex<mpsc::Sender<Stream>>);

impl EchoService for Accepting {
    fn echo(&self, cntl: &mut Controller, r: EchoRequest) -> Result<EchoResponse, RpcError> {
        if r.message == "plain" {
            return Ok(EchoResponse { message: r.message });
        }
        let s = Stream::accept(
            cntl,
            StreamOptions {
                max_buf_size: WINDOW,
                ..Default::default()
            },
        )?;
        self.0.lock().unwrap().send(s).unwrap();
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    }
}

fn read_frame(t: &mut TcpStream) -> Vec<u8> {
    let mut header = [0u8; 12];
    t.read_exact(&mut header).unwrap();
    let body = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    let mut frame = header.to_vec();
    frame.resize(12 + body, 0);
    t.read_exact(&mut frame[12..]).unwrap();
    frame
}

fn strm_meta(frame: &[u8]) -> (StreamFrameMeta, IOBuf) {
    match strm::parse(&mut IOBuf::from(frame), 64 << 20) {
        strm::ParseResult::Complete(f) => (f.meta, f.payload),
        r => panic!("{r:?}"),
    }
}

fn request(correlation_id: i64, message: &str, stream: Option<i64>) -> Vec<u8> {
    let meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: "example.EchoService".into(),
            method_name: "Echo".into(),
            ..Default::default()
        }),
        correlation_id: Some(correlation_id),
        stream_settings: stream.map(|id| StreamSettings {
            stream_id: id,
            need_feedback: Some(true),
            writable: Some(true),
            extra_stream_ids: Vec::new(),
        }),
        ..Default::default()
    };
    let body = fibrpc::codec::encode(&EchoRequest {
        message: message.into(),
    });
    let mut out = IOBuf::new();
    baidu_std::encode(&meta, &body, &IOBuf::new(), &mut out).unwrap();
    out.to_vec()
}

fn frame(meta: &StreamFrameMeta, payload: &[u8]) -> Vec<u8> {
    let mut out = IOBuf::new();
    strm::encode(meta, &IOBuf::from(payload), &mut out);
    out.to_vec()
}

#[test]
fn bad_frames_hit_only_their_stream_or_close_the_connection() {
    log_capture::capture(tracing::Level::WARN);
    let (tx, rx) = mpsc::channel();
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(EchoServiceServer::new(Accepting(Mutex::new(tx))))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let mut t = TcpStream::connect(server.listen_addr().unwrap()).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    // Two streams, 5 and 6, each opened by a call.
    let mut theirs = Vec::new();
    for (cid, mine) in [(1, 5), (2, 6)] {
        t.write_all(&request(cid, "open", Some(mine))).unwrap();
        let (meta, _) = strm_meta(&read_frame(&mut t));
        assert_eq!(meta.stream_id, mine);
        theirs.push(meta.source_stream_id.unwrap());
    }
    let server_streams: Vec<Stream> = (0..2).map(|_| rx.recv().unwrap()).collect();

    // DATA for an unknown stream: RST to its source, and a log line.
    t.write_all(&frame(&StreamFrameMeta::data(999_999, 7, false), b"lost"))
        .unwrap();
    let (meta, _) = strm_meta(&read_frame(&mut t));
    assert_eq!((meta.stream_id, meta.kind()), (7, FrameType::Rst));
    assert_eq!(meta.source_stream_id, None);
    assert!(log_capture::logged().contains("unknown stream"));

    // A meta that does not parse: the frame is skipped, logged.
    let mut bad = b"STRM".to_vec();
    bad.extend_from_slice(&4u32.to_be_bytes());
    bad.extend_from_slice(&2u32.to_be_bytes());
    bad.extend_from_slice(&[0x0a, 0x05, b'x', b'y']);
    t.write_all(&bad).unwrap();

    // Stream 5 overruns the server's window (nobody reads there; the
    // server holds at least bRPC's default window, 2 MiB, unconsumed):
    // past it, the server resets stream 5 and logs why.
    let chunk = vec![b'a'; 1536 << 10];
    for _ in 0..3 {
        t.write_all(&frame(&StreamFrameMeta::data(theirs[0], 5, false), &chunk))
            .unwrap();
    }
    let (meta, _) = strm_meta(&read_frame(&mut t));
    assert_eq!((meta.stream_id, meta.kind()), (5, FrameType::Rst));
    assert!(server_streams[0].is_closed());
    let logged = log_capture::logged();
    assert!(logged.contains("does not parse"), "{logged}");
    assert!(logged.contains("broke its flow control"), "{logged}");

    // Stream 6 and the connection go on: DATA on 6 is read, and its
    // FEEDBACK comes back; a plain call is answered.
    t.write_all(&frame(&StreamFrameMeta::data(theirs[1], 6, false), b"fine"))
        .unwrap();
    assert_eq!(
        server_streams[1]
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap(),
        b"fine".to_vec()
    );
    let (meta, _) = strm_meta(&read_frame(&mut t));
    assert_eq!((meta.stream_id, meta.kind()), (6, FrameType::Feedback));
    assert_eq!(meta.feedback.unwrap().consumed_size(), 4);
    t.write_all(&request(3, "plain", None)).unwrap();
    let answer = read_frame(&mut t);
    assert!(answer.starts_with(b"PRPC"));
    assert!(!server_streams[1].is_closed());

    // meta_size > body_size cannot be resynchronised: the connection
    // closes, and its streams fail.
    let mut broken = b"STRM".to_vec();
    broken.extend_from_slice(&2u32.to_be_bytes());
    broken.extend_from_slice(&9u32.to_be_bytes());
    broken.extend_from_slice(&[0, 0]);
    t.write_all(&broken).unwrap();
    let mut rest = Vec::new();
    let _ = t.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed without an answer");
    let closed = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        server_streams[1].is_closed()
    });
    assert!(closed, "the connection's streams failed");
    assert!(server_streams[1].recv().is_err());
    assert!(log_capture::logged().contains("meta_size=9 is larger than body_size=2"));
}
