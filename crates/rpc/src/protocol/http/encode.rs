//! Writing HTTP/1.1 messages into an [`IOBuf`]: the head is formatted into
//! the buffer's tail block, the body is appended by reference.
//!
//! The framing headers are ours: `Content-Length` is always the body's
//! length (a user's `Content-Length` or `Transfer-Encoding` is dropped),
//! and `Connection: close` is added when the connection closes after this
//! message.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fibrpc_iobuf::IOBuf;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Response, StatusCode, Uri, Version};

/// Appends `resp`'s head, then its body unless `head_only` (a `HEAD`
/// request: `Content-Length` still says what a `GET` would get).
pub fn encode_response(resp: &Response<IOBuf>, head_only: bool, close: bool, out: &mut IOBuf) {
    let body = resp.body();
    // A small body is copied right behind the head in the scratch buffer,
    // so the response enters `out` in one append (one block, one buffer:
    // written with `send(2)` instead of a two-iovec `sendmsg(2)`, and no
    // block reference is taken). Appending head and body separately cost
    // a second pass through the IOBuf's tail per response.
    let inline_body = !head_only && body.len() <= COPY_BODY_MAX;
    encode_head(resp, Some(body.len()), close, out, |head| {
        if inline_body {
            for s in body.slices() {
                head.extend_from_slice(s);
            }
        }
    });
    if !head_only && !inline_body {
        out.append_buf(body);
    }
}

/// Bodies up to this size are copied behind the head rather than
/// referenced (see `encode_response`): copying a few hundred bytes costs
/// less than the second iovec and the reference it saves.
const COPY_BODY_MAX: usize = 512;

/// Appends the head of a response whose body follows in chunks
/// (`Transfer-Encoding: chunked`, a progressive response): `resp`'s
/// body is ignored.
pub fn encode_chunked_head<B>(resp: &Response<B>, close: bool, out: &mut IOBuf) {
    encode_head(resp, None, close, out, |_| {});
}

/// Appends one chunk of a chunked body (nothing for an empty `data`,
/// which would end the body).
pub fn encode_chunk(data: IOBuf, out: &mut IOBuf) {
    if data.is_empty() {
        return;
    }
    let mut size = [0u8; 18];
    let n = {
        let mut w = &mut size[..];
        let _ = write!(w, "{:x}\r\n", data.len());
        18 - w.len()
    };
    out.append(&size[..n]);
    out.append_owned(data);
    out.append(b"\r\n");
}

/// The last chunk of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A response's status line and headers; `len`: its `Content-Length`,
/// or `None` for a chunked body. `then` appends to the head before it
/// goes into `out` (a small body).
fn encode_head<B>(
    resp: &Response<B>,
    len: Option<usize>,
    close: bool,
    out: &mut IOBuf,
    then: impl FnOnce(&mut Vec<u8>),
) {
    with_scratch(|head| {
        let status = resp.status();
        if status == StatusCode::OK {
            // Most responses: one copy of a constant line.
            head.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        } else {
            head.extend_from_slice(b"HTTP/1.1 ");
            head.extend_from_slice(status.as_str().as_bytes());
            head.push(b' ');
            head.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        let has_date = write_headers(head, resp.headers());
        if !has_date {
            with_http_date(|d| head.extend_from_slice(d));
        }
        if len.is_none() {
            head.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        finish_head(head, len, close);
        then(head);
        out.append(head);
    });
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
    with_scratch(|head| {
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let _ = write!(head, "{method} {target} HTTP/1.1\r\n");
        if let Some(h) = host.filter(|_| !headers.contains_key(http::header::HOST)) {
            let _ = write!(head, "Host: {h}\r\n");
        }
        write_headers(head, headers);
        let len = body.len();
        let needs_length = len > 0 || matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        finish_head(head, needs_length.then_some(len), false);
        out.append(head);
    });
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

/// Runs `f` with this thread's cleared scratch buffer for a head (no
/// allocation per message once it has grown).
fn with_scratch(f: impl FnOnce(&mut Vec<u8>)) {
    use std::cell::RefCell;
    thread_local! {
        static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut v) => {
            v.clear();
            f(&mut v);
            if v.capacity() > 64 << 10 {
                // One huge head must not pin memory on this thread.
                *v = Vec::new();
            }
        }
        // Re-entered (cannot happen today): a buffer of its own.
        Err(_) => f(&mut Vec::new()),
    });
}

/// The user's headers but the framing ones, which are ours. Returns
/// whether there was a `Date` (found on the way rather than by a lookup).
fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) -> bool {
    let mut has_date = false;
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        has_date |= name == DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    has_date
}

/// `Content-Length`, `Connection: close` and the empty line.
fn finish_head(out: &mut Vec<u8>, len: Option<usize>, close: bool) {
    if let Some(len) = len {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Calls `f` with the header line `Date: <now>\r\n` (RFC 9110
/// IMF-fixdate), formatted at most once a second per thread: the whole
/// line is cached, so a response copies it in one piece.
fn with_http_date(f: impl FnOnce(&[u8])) {
    use std::cell::RefCell;
    thread_local! {
        static CACHE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
    }
    let secs = unix_secs();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            c.0 = secs;
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            c.1.clear();
            c.1.extend_from_slice(b"Date: ");
            c.1.extend_from_slice(httpdate::fmt_http_date(now).as_bytes());
            c.1.extend_from_slice(b"\r\n");
        }
        f(&c.1);
    });
}

/// Seconds since the Unix epoch from the coarse real-time clock: a date
/// needs whole seconds, and `CLOCK_REALTIME_COARSE` reads the kernel's
/// last tick (a few ms old at most) without the TSC read `SystemTime::now`
/// makes, which on a VM is the dearer part of a per-response clock read.
fn unix_secs() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`, the only memory
    // `clock_gettime` writes.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        return u64::try_from(ts.tv_sec).unwrap_or(0);
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: IOBuf) -> Response<IOBuf> {
        let mut r = Response::new(body);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
        r
    }

    #[test]
    fn a_small_body_follows_its_head_in_one_buffer() {
        let resp = response(IOBuf::from("Hello, World!"));
        let mut out = IOBuf::new();
        encode_response(&resp, false, false, &mut out);
        // One contiguous buffer: written with send(2), no iovec array.
        assert_eq!(out.slices().count(), 1);
        let text = out.to_vec();
        assert!(text.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert!(text.ends_with(b"Content-Length: 13\r\n\r\nHello, World!"));
    }

    #[test]
    fn the_status_line_and_date_are_written_for_every_status() {
        for (status, line) in [
            (http::StatusCode::OK, &b"HTTP/1.1 200 OK\r\n"[..]),
            (http::StatusCode::NOT_FOUND, b"HTTP/1.1 404 Not Found\r\n"),
            (
                http::StatusCode::from_u16(599).unwrap(),
                b"HTTP/1.1 599 Unknown\r\n",
            ),
        ] {
            let mut resp = response(IOBuf::from("x"));
            *resp.status_mut() = status;
            let mut out = IOBuf::new();
            encode_response(&resp, false, true, &mut out);
            let text = out.to_vec();
            assert!(text.starts_with(line), "{}", String::from_utf8_lossy(&text));
            let text = String::from_utf8(text).unwrap();
            let date = text.lines().find(|l| l.starts_with("Date: ")).unwrap();
            assert!(httpdate::parse_http_date(&date["Date: ".len()..]).is_ok());
            assert!(text.ends_with("Connection: close\r\n\r\nx"));
        }
        // A small body of a HEAD response is not written.
        let mut head = IOBuf::new();
        encode_response(&response(IOBuf::from("abc")), true, false, &mut head);
        assert!(head.to_vec().ends_with(b"Content-Length: 3\r\n\r\n"));
    }

    #[test]
    fn a_large_body_is_referenced_not_copied() {
        let body = IOBuf::from(vec![b'x'; 4096]);
        let resp = response(body.clone());
        let mut out = IOBuf::new();
        encode_response(&resp, false, false, &mut out);
        assert!(out.shares_block_with(out.backing_block_num() - 1, &body, 0));
        assert!(out.to_vec().ends_with(&[b'x'; 4096]));
        // A HEAD response has no body at all.
        let mut head = IOBuf::new();
        encode_response(&resp, true, false, &mut head);
        assert!(head.to_vec().ends_with(b"Content-Length: 4096\r\n\r\n"));
    }
}
