//! A raw HTTP/2 client for the tests: frames written and read by hand
//! over a `TcpStream`, so that the tests can send what no well-behaved
//! client would. Header blocks are encoded with literals (and decoded
//! with fibrpc's decoder, which the HPACK unit tests check against RFC
//! 7541's examples).

#![allow(dead_code, missing_docs)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fibrpc::protocol::h2::frame::{flag, kind, PREFACE};
use fibrpc::protocol::h2::hpack::{encode_header, Decoder};

pub const GOAWAY: u8 = kind::GOAWAY;

/// One frame as read.
#[derive(Debug, Clone)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// A response as read.
#[derive(Debug, Default)]
pub struct Reply {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// The RST_STREAM code, if the stream was reset.
    pub reset: Option<u32>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .chain(&self.trailers)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn status(&self) -> u16 {
        self.header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

pub struct RawH2 {
    pub s: TcpStream,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    pos: usize,
    dec: Decoder,
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = (payload.len() as u32).to_be_bytes();
    let mut f = vec![l[1], l[2], l[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A request's header block.
pub fn request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    encode_header(b":method", method.as_bytes(), &mut b);
    encode_header(b":scheme", b"http", &mut b);
    encode_header(b":path", path.as_bytes(), &mut b);
    encode_header(b":authority", b"127.0.0.1", &mut b);
    for (n, v) in extra {
        encode_header(n.as_bytes(), v.as_bytes(), &mut b);
    }
    b
}

impl RawH2 {
    /// Connects and sends the preface and an empty SETTINGS.
    pub fn connect(addr: SocketAddr) -> RawH2 {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = RawH2 {
            s,
            buf: Vec::new(),
            pos: 0,
            dec: Decoder::default(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(kind::SETTINGS, 0, 0, &[]));
        c.send(&hello);
        c
    }

    /// A client on a stream already connected (nothing sent).
    pub fn wrap(s: TcpStream) -> RawH2 {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawH2 {
            s,
            buf: Vec::new(),
            pos: 0,
            dec: Decoder::default(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Sends a GET (END_STREAM on the HEADERS).
    pub fn get(&mut self, stream: u32, path: &str) {
        let block = request_block("GET", path, &[]);
        let f = frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            stream,
            &block,
        );
        self.send(&f);
    }

    /// The next frame; `None` at EOF, on a reset, or after 10 s.
    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            let b = &self.buf[self.pos..];
            if b.len() >= 9 {
                let len = u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
                if b.len() >= 9 + len {
                    let f = Frame {
                        kind: b[3],
                        flags: b[4],
                        stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
                        payload: b[9..9 + len].to_vec(),
                    };
                    self.pos += 9 + len;
                    return Some(f);
                }
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads until a GOAWAY: its last stream id and error code (`None`
    /// if the connection ended without one).
    pub fn goaway(&mut self) -> Option<(u32, u32)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let f = self.read_frame()?;
            if f.kind == GOAWAY {
                let p = &f.payload;
                return Some((
                    u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                    u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                ));
            }
        }
        None
    }

    /// Reads frames until `stream` ends (END_STREAM or RST_STREAM);
    /// other streams' frames are dropped, except that their ends are
    /// counted in `others_done` when given.
    pub fn response(&mut self, stream: u32) -> Reply {
        let mut r = Reply::default();
        let mut got_headers = false;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Some(f) = self.read_frame() else {
                panic!("the connection ended before stream {stream} did");
            };
            if f.kind == GOAWAY && f.payload.len() >= 8 && f.payload[7] != 0 {
                panic!("GOAWAY {:?} while waiting for stream {stream}", &f.payload);
            }
            if f.stream != stream {
                continue;
            }
            match f.kind {
                kind::HEADERS | kind::CONTINUATION => {
                    let mut fields = Vec::new();
                    self.dec
                        .decode(&f.payload, usize::MAX, |n, v| {
                            fields.push((
                                String::from_utf8_lossy(n).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            ))
                        })
                        .unwrap();
                    if got_headers {
                        r.trailers.extend(fields);
                    } else {
                        r.headers.extend(fields);
                        got_headers = true;
                    }
                    if f.flags & flag::END_STREAM != 0 {
                        return r;
                    }
                }
                kind::DATA => {
                    r.body.extend_from_slice(&f.payload);
                    if f.flags & flag::END_STREAM != 0 {
                        return r;
                    }
                }
                kind::RST_STREAM => {
                    r.reset = Some(u32::from_be_bytes([
                        f.payload[0],
                        f.payload[1],
                        f.payload[2],
                        f.payload[3],
                    ]));
                    return r;
                }
                _ => {}
            }
        }
        panic!("stream {stream} did not end within 30 s");
    }

    /// Whether the server closed the connection (reads until EOF, at
    /// most 10 s).
    pub fn closed(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.read_frame().is_none() {
                return true;
            }
        }
        false
    }
}

/// Runs a program with `args`, killing it after `secs`; panics if it
/// cannot start (the peer is not installed: the test fails loudly).
pub fn run_peer(program: &str, args: &[&str], secs: u64) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{program} {args:?} ran past {secs} s: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The generated echo service (with descriptors, so JSON works) and
/// test knobs in the message: `deadline` answers the handler's time
/// left until its deadline in ms (`none` without one), `fail:CODE`
/// fails with that error code, `sleep:MS` sleeps first.
pub struct GenEcho;

impl fibrpc_example::EchoService for GenEcho {
    fn echo(
        &self,
        cntl: &mut fibrpc::Controller,
        req: fibrpc_example::EchoRequest,
    ) -> Result<fibrpc_example::EchoResponse, fibrpc::RpcError> {
        let message = if req.message == "deadline" {
            match cntl.deadline() {
                Some(d) => format!(
                    "deadline {}",
                    d.saturating_duration_since(Instant::now()).as_millis()
                ),
                None => "deadline none".to_string(),
            }
        } else if let Some(code) = req.message.strip_prefix("fail:") {
            let code: i32 = code.parse().unwrap();
            return Err(fibrpc::RpcError::new(code, "asked to fail"));
        } else if let Some(ms) = req.message.strip_prefix("sleep:") {
            fibrpc::fiber::sleep(Duration::from_millis(ms.parse().unwrap())).unwrap();
            req.message
        } else {
            req.message
        };
        Ok(fibrpc_example::EchoResponse { message })
    }
}
