//! Writing HTTP/1.1 messages into an [`IOBuf`]: the head is formatted into
//! the buffer's tail block, the body is appended by reference.
//!
//! The framing headers are ours: `Content-Length` is always the body's
//! length (a user's `Content-Length` or `Transfer-Encoding` is dropped),
//! and `Connection: close` is added when the connection closes after this
//! message.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use fibrpc_iobuf::IOBuf;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Response, Uri, Version};

/// Appends `resp`'s head, then its body unless `head_only` (a `HEAD`
/// request: `Content-Length` still says what a `GET` would get).
pub fn encode_response(resp: &Response<IOBuf>, head_only: bool, close: bool, out: &mut IOBuf) {
    let mut head = HeadWriter::default();
    let status = resp.status();
    let _ = write!(
        head.0,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Unknown")
    );
    head.headers(resp.headers());
    if !resp.headers().contains_key(DATE) {
        head.0.extend_from_slice(b"Date: ");
        with_http_date(|d| head.0.extend_from_slice(d));
        head.0.extend_from_slice(b"\r\n");
    }
    head.finish(resp.body().len(), close, out);
    if !head_only {
        out.append_buf(resp.body());
    }
}

/// Appends a request: `method target HTTP/1.1`, the headers (with `Host`
/// first when given), `Content-Length` (for bodies, and for POST/PUT even
/// when empty), then the body.
pub fn encode_request(
    method: &Method,
    uri: &Uri,
    host: Option<&str>,
    headers: &HeaderMap,
    body: &IOBuf,
    out: &mut IOBuf,
) {
    let mut head = HeadWriter::default();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let _ = write!(head.0, "{method} {target} HTTP/1.1\r\n");
    if let Some(h) = host.filter(|_| !headers.contains_key(http::header::HOST)) {
        let _ = write!(head.0, "Host: {h}\r\n");
    }
    head.headers(headers);
    let len = body.len();
    let needs_length = len > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    head.finish_request(needs_length.then_some(len), out);
    out.append_buf(body);
}

/// Whether the connection closes after this exchange, from the version
/// and the `Connection` header (HTTP/1.0 closes unless keep-alive).
pub fn wants_close(version: Version, headers: &HeaderMap) -> bool {
    let mut close = version == Version::HTTP_10;
    for v in headers.get_all(CONNECTION) {
        for token in v.as_bytes().split(|&b| b == b',') {
            let t = token.trim_ascii();
            if t.eq_ignore_ascii_case(b"close") {
                return true;
            }
            if t.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    close
}

#[derive(Default)]
struct HeadWriter(Vec<u8>);

impl HeadWriter {
    fn headers(&mut self, headers: &HeaderMap) {
        for (name, value) in headers {
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
                continue;
            }
            self.0.extend_from_slice(name.as_str().as_bytes());
            self.0.extend_from_slice(b": ");
            self.0.extend_from_slice(value.as_bytes());
            self.0.extend_from_slice(b"\r\n");
        }
    }

    fn finish(mut self, len: usize, close: bool, out: &mut IOBuf) {
        let _ = write!(self.0, "Content-Length: {len}\r\n");
        if close {
            self.0.extend_from_slice(b"Connection: close\r\n");
        }
        self.0.extend_from_slice(b"\r\n");
        out.append(&self.0);
    }

    fn finish_request(mut self, len: Option<usize>, out: &mut IOBuf) {
        if let Some(len) = len {
            let _ = write!(self.0, "Content-Length: {len}\r\n");
        }
        self.0.extend_from_slice(b"\r\n");
        out.append(&self.0);
    }
}

/// Calls `f` with the current time as an HTTP date (RFC 9110 IMF-fixdate),
/// formatted at most once a second per thread.
fn with_http_date(f: impl FnOnce(&[u8])) {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            c.0 = secs;
            c.1 = httpdate::fmt_http_date(now).into_bytes();
        }
        f(&c.1);
    });
}
