//! Cutting HTTP/1.1 messages out of a connection's input (bRPC's
//! `ParseHttpMessage`), with `httparse` for the head.
//!
//! Parsing is restartable and consumes nothing until a whole message is
//! there: the head is re-parsed when more bytes arrive (it is small), and
//! a chunked body is scanned chunk header by chunk header — the chunk data
//! is skipped, never copied. The scan can resume where the last read left
//! it (a `ChunkScan` kept by the caller between reads; a server keeps one
//! per connection), so that a body sent in 1-byte chunks costs work
//! linear in its size; a fresh one rescans from the start. The body is then cut out of the input by
//! reference.
//!
//! Limits: the head, and with it a chunked body's trailers, within
//! `max_header` (431); a chunk-size line within 1 KiB and a message's
//! chunk extensions within `max_header` bytes (400); the body within
//! `max_body` (413). A request with both `Transfer-Encoding` and
//! `Content-Length` is refused (400).

use std::mem::MaybeUninit;

use bytes::Bytes;
use fibrpc_iobuf::IOBuf;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};

/// Most headers a message may have (more → 431).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line or trailer line.
const MAX_LINE: usize = 1024;

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of the head (request line and headers); more → 431.
    pub max_header: usize,
    /// Bytes of the body; more → 413.
    pub max_body: usize,
}

/// Why a message cannot be parsed: the status a server answers with
/// before closing the connection, and a reason for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// 400, 413, 431 or 501.
    pub status: StatusCode,
    /// What was wrong.
    pub reason: String,
}

impl HttpError {
    fn new(status: StatusCode, reason: impl Into<String>) -> HttpError {
        HttpError {
            status,
            reason: reason.into(),
        }
    }

    fn bad(reason: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, reason)
    }
}

/// What [`parse_request`] and [`parse_response`] found.
#[derive(Debug)]
pub enum HttpParse<T> {
    /// A whole message, cut from the input.
    Complete(T),
    /// Incomplete: read more (nothing consumed).
    NeedMore,
    /// The input does not start like this kind of message.
    NotMine,
    /// Malformed or over a limit: answer and close.
    Error(HttpError),
}

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
];

/// Whether the input starts like an HTTP request: `Some(true)` yes,
/// `Some(false)` no, `None` too few bytes to tell.
pub(crate) fn probe_request(buf: &IOBuf) -> Option<bool> {
    // The first block holds the first 8 bytes but for a tiny first read:
    // look at them there, without a copy.
    let mut copy = [0u8; 8];
    let head = match buf.slices().next() {
        Some(first) if first.len() >= copy.len() => &first[..copy.len()],
        _ => {
            let n = buf.copy_to(&mut copy, 0);
            &copy[..n]
        }
    };
    let n = head.len();
    let mut maybe = false;
    for m in METHODS {
        let k = n.min(m.len());
        if head[..k] == m[..k] {
            if k == m.len() {
                return Some(true);
            }
            maybe = true;
        }
    }
    if maybe {
        None
    } else {
        Some(false)
    }
}

/// Whether the input starts like an HTTP response (`HTTP/1.`).
pub(crate) fn probe_response(buf: &IOBuf) -> Option<bool> {
    const PREFIX: &[u8] = b"HTTP/1.";
    let mut head = [0u8; 7];
    let n = buf.copy_to(&mut head, 0);
    if head[..n] != PREFIX[..n] {
        Some(false)
    } else if n < PREFIX.len() {
        None
    } else {
        Some(true)
    }
}

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// Responses only: the body runs until the connection closes.
    UntilClose,
}

/// Cuts one request (head and whole body) off the front of `buf`.
pub fn parse_request(buf: &mut IOBuf, limits: Limits) -> HttpParse<Request<IOBuf>> {
    let probe = probe_request(buf);
    match parse_request_expecting(buf, probe, limits, &mut ChunkScan::default()).0 {
        HttpParse::Complete(r) => HttpParse::Complete(*r),
        HttpParse::NeedMore => HttpParse::NeedMore,
        HttpParse::NotMine => HttpParse::NotMine,
        HttpParse::Error(e) => HttpParse::Error(e),
    }
}

/// What a server needs to know of a request besides the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestFlags {
    /// The answer is `NeedMore` for a whole head that asks `Expect:
    /// 100-continue` (the client waits for an interim `100 Continue`
    /// before it sends the body).
    pub waiting: bool,
    /// The connection closes after the response: what [`wants_close`]
    /// says of the request's version and `Connection` headers, read off
    /// the raw head rather than looked up in the header map.
    ///
    /// [`wants_close`]: super::wants_close
    pub close: bool,
}

/// [`parse_request`], boxed, with the [`RequestFlags`]. Boxed where it is
/// built: the request is large (~250 bytes), and each move of it from the
/// parser to the handler's fiber was a `memcpy` call. `probe`:
/// [`probe_request`] of `buf`. `scan`: the scan of a chunked body so far,
/// kept by the caller between reads of one connection (a fresh one
/// rescans from the start).
pub(crate) fn parse_request_expecting(
    buf: &mut IOBuf,
    probe: Option<bool>,
    limits: Limits,
    scan: &mut ChunkScan,
) -> (HttpParse<Box<Request<IOBuf>>>, RequestFlags) {
    let mut flags = RequestFlags::default();
    let r = parse_request_inner(buf, probe, limits, &mut flags, scan);
    flags.waiting &= matches!(r, HttpParse::NeedMore);
    (r, flags)
}

fn parse_request_inner(
    buf: &mut IOBuf,
    probe: Option<bool>,
    limits: Limits,
    flags: &mut RequestFlags,
    scan: &mut ChunkScan,
) -> HttpParse<Box<Request<IOBuf>>> {
    if let Some(early) = probed(probe) {
        return early;
    }
    let mut spill = Vec::new();
    let Some(bytes) = head_bytes(buf, limits.max_header, &mut spill) else {
        return HttpParse::NeedMore;
    };
    // Uninitialized: initializing 100 headers costs more than parsing a
    // small request.
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(bytes, &mut headers);
    let head_len = match head_len(parsed, buf, limits, "request") {
        Ok(n) => n,
        Err(early) => return early,
    };
    let framing = match request_framing(req.headers, limits) {
        Ok(f) => f,
        Err(e) => {
            scan.reset();
            return HttpParse::Error(e);
        }
    };
    *flags = request_flags(req.version, req.headers);
    let end = match body_end(buf, head_len, framing, limits, scan) {
        Ok(Some(end)) => end,
        Ok(None) => return HttpParse::NeedMore,
        Err(e) => return HttpParse::Error(e),
    };
    let parts = (|| -> Result<_, HttpError> {
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| HttpError::bad("bad method"))?;
        let head = SharedHead::new(&bytes[..head_len]);
        let uri = Uri::from_maybe_shared(head.slice(req.path.unwrap_or_default().as_bytes()))
            .map_err(|e| HttpError::bad(format!("bad request target: {e}")))?;
        Ok((
            method,
            uri,
            version(req.version),
            header_map(req.headers, &head)?,
        ))
    })();
    let (method, uri, version, headers) = match parts {
        Ok(p) => p,
        Err(e) => {
            scan.reset();
            return HttpParse::Error(e);
        }
    };
    let body = cut_body(buf, head_len, end, framing, scan);
    // Boxed first, then filled in place: one move of the request.
    let mut r = super::recycle::box_request(Request::new(body));
    *r.method_mut() = method;
    *r.version_mut() = version;
    *r.uri_mut() = uri;
    // `Request::new`'s empty map owns no memory (`HeaderMap::new` does
    // not allocate): forgetting it skips its drop glue, 52 of a plain
    // request's ~8,000 instructions under callgrind.
    std::mem::forget(std::mem::replace(r.headers_mut(), headers));
    HttpParse::Complete(r)
}

/// Cuts one response off the front of `buf`. `no_body`: the request was
/// `HEAD` (the response has headers only). A response delimited by the
/// connection's close is complete only at `eof`.
pub fn parse_response(
    buf: &mut IOBuf,
    limits: Limits,
    no_body: bool,
    eof: bool,
) -> HttpParse<Response<IOBuf>> {
    if let Some(early) = probed(probe_response(buf)) {
        return early;
    }
    let mut spill = Vec::new();
    let Some(bytes) = head_bytes(buf, limits.max_header, &mut spill) else {
        return HttpParse::NeedMore;
    };
    // httparse has no uninitialized variant for responses.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let parsed = resp.parse(bytes);
    let head_len = match head_len(parsed, buf, limits, "response") {
        Ok(n) => n,
        Err(early) => return early,
    };
    let code = resp.code.unwrap_or_default();
    let Ok(status) = StatusCode::from_u16(code) else {
        return HttpParse::Error(HttpError::bad(format!("bad status {code}")));
    };
    let bodiless = no_body
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::Length(0)
    } else {
        match response_framing(resp.headers, limits) {
            Ok(f) => f,
            Err(e) => return HttpParse::Error(e),
        }
    };
    // A fresh scan per call: a client reads few chunked responses.
    let mut scan = ChunkScan::default();
    let end = if framing == Framing::UntilClose {
        // Checked on every read, not only at the close: a peer that never
        // closes must not grow the input past the limit.
        if buf.len() - head_len > limits.max_body {
            return HttpParse::Error(body_too_large(buf.len() - head_len, limits));
        }
        if !eof {
            return HttpParse::NeedMore;
        }
        buf.len()
    } else {
        match body_end(buf, head_len, framing, limits, &mut scan) {
            Ok(Some(end)) => end,
            Ok(None) => return HttpParse::NeedMore,
            Err(e) => return HttpParse::Error(e),
        }
    };
    let head = SharedHead::new(&bytes[..head_len]);
    let headers = match header_map(resp.headers, &head) {
        Ok(h) => h,
        Err(e) => return HttpParse::Error(e),
    };
    let version = version(resp.version);
    let body = cut_body(buf, head_len, end, framing, &mut scan);
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.version_mut() = version;
    *r.headers_mut() = headers;
    HttpParse::Complete(r)
}

/// The first bytes of `buf` (at most `max`) contiguous: borrowed when they
/// sit in one block, else copied into `spill`. `None` when empty.
fn head_bytes<'a>(buf: &'a IOBuf, max: usize, spill: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let n = buf.len().min(max);
    if n == 0 {
        return None;
    }
    let first = buf.slices().next().unwrap_or_default();
    if first.len() >= n {
        return Some(&first[..n]);
    }
    spill.resize(n, 0);
    buf.copy_to(spill, 0);
    Some(spill)
}

/// What a probe's verdict means for the parse: go on (`None`), or return
/// `NotMine` / `NeedMore`.
fn probed<T>(probe: Option<bool>) -> Option<HttpParse<T>> {
    match probe {
        Some(true) => None,
        Some(false) => Some(HttpParse::NotMine),
        None => Some(HttpParse::NeedMore),
    }
}

/// The head's length, or what to return when httparse found no whole,
/// valid head (`what`: "request" or "response", for the error).
fn head_len<T>(
    parsed: httparse::Result<usize>,
    buf: &IOBuf,
    limits: Limits,
    what: &str,
) -> Result<usize, HttpParse<T>> {
    match parsed {
        Ok(httparse::Status::Complete(n)) => Ok(n),
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_header => {
            Err(too_large(&format!("head over {} bytes", limits.max_header)))
        }
        Ok(httparse::Status::Partial) => Err(HttpParse::NeedMore),
        Err(httparse::Error::TooManyHeaders) => Err(too_large("more than 100 headers")),
        Err(e) => Err(HttpParse::Error(HttpError::bad(format!(
            "malformed {what}: {e}"
        )))),
    }
}

fn too_large<T>(why: &str) -> HttpParse<T> {
    HttpParse::Error(HttpError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        why,
    ))
}

fn body_too_large(len: usize, limits: Limits) -> HttpError {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("body of {len} bytes over the limit {}", limits.max_body),
    )
}

fn version(minor: Option<u8>) -> Version {
    if minor == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    }
}

/// A message head as one shared [`Bytes`], so that the request target
/// and the header values are slices of it rather than copies: no
/// allocation per header, and usually none per message (the head is
/// copied into a per-thread arena, see `recycle::shared_head`).
struct SharedHead<'a> {
    bytes: Bytes,
    /// The parsed head the slices come from.
    parsed: &'a [u8],
}

impl<'a> SharedHead<'a> {
    fn new(parsed: &'a [u8]) -> SharedHead<'a> {
        SharedHead {
            bytes: super::recycle::shared_head(parsed),
            parsed,
        }
    }

    /// `part`, a subslice of the parsed head, as a slice of the shared
    /// bytes.
    fn slice(&self, part: &[u8]) -> Bytes {
        let start = (part.as_ptr() as usize).wrapping_sub(self.parsed.as_ptr() as usize);
        if start > self.parsed.len() || part.len() > self.parsed.len() - start {
            // Not from the head (cannot happen with httparse).
            return Bytes::copy_from_slice(part);
        }
        self.bytes.slice(start..start + part.len())
    }
}

fn header_map(raw: &[httparse::Header<'_>], head: &SharedHead<'_>) -> Result<HeaderMap, HttpError> {
    let mut map = super::recycle::header_map(raw.len());
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HttpError::bad(format!("bad header name {:?}", h.name)))?;
        let value = header_value(head.slice(h.value))
            .ok_or_else(|| HttpError::bad(format!("bad value of header {}", h.name)))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A header value httparse accepted, without `HeaderValue`'s byte-by-byte
/// check when the value is ASCII (one word-at-a-time scan instead): most
/// values are, and httparse already refused every byte `HeaderValue`
/// refuses (controls but tab, and DEL; see
/// `header_values_with_control_bytes_are_refused`). Other values take the
/// checked path. (`HeaderValue::from_shared`'s loop was ~80 of a plain
/// request's ~8,500 instructions, for one short `Host`.)
fn header_value(bytes: Bytes) -> Option<HeaderValue> {
    if bytes.is_ascii() {
        debug_assert!(HeaderValue::from_maybe_shared(bytes.clone()).is_ok());
        // SAFETY: the function's contract is that the bytes hold no byte
        // a header value may not (controls but tab, and DEL); httparse
        // refused those before this value was cut (pinned by
        // `header_values_with_control_bytes_are_refused`), and ASCII is
        // valid UTF-8 for the value's `to_str`.
        return Some(unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) });
    }
    HeaderValue::from_maybe_shared(bytes).ok()
}

/// A request's [`RequestFlags`] from its raw head (`waiting` says only
/// whether it asks `Expect: 100-continue`), in one pass over the headers.
fn request_flags(minor: Option<u8>, raw: &[httparse::Header<'_>]) -> RequestFlags {
    let mut flags = RequestFlags {
        waiting: false,
        close: version(minor) == Version::HTTP_10,
    };
    let mut said_close = false;
    for h in raw {
        if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let t = token.trim_ascii();
                if t.eq_ignore_ascii_case(b"close") {
                    said_close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") {
                    flags.close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            flags.waiting |= h.value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    flags.close |= said_close;
    flags
}

/// RFC 9112 §6.3 for requests: chunked if `Transfer-Encoding` ends in
/// chunked (any other coding is refused), else `Content-Length`, else no
/// body.
fn request_framing(raw: &[httparse::Header<'_>], limits: Limits) -> Result<Framing, HttpError> {
    match framing_headers(raw, limits, true)? {
        Some(f) => Ok(f),
        None => Ok(Framing::Length(0)),
    }
}

/// For responses, a message with neither header runs until close.
fn response_framing(raw: &[httparse::Header<'_>], limits: Limits) -> Result<Framing, HttpError> {
    Ok(framing_headers(raw, limits, false)?.unwrap_or(Framing::UntilClose))
}

/// `request`: a request carrying both `Transfer-Encoding` and
/// `Content-Length` is refused (400, RFC 9112 §6.1: it may be an attempt
/// at request smuggling, and the connection closes); in a response
/// `Transfer-Encoding` wins.
fn framing_headers(
    raw: &[httparse::Header<'_>],
    limits: Limits,
    request: bool,
) -> Result<Option<Framing>, HttpError> {
    let mut chunked = None;
    let mut length: Option<usize> = None;
    for h in raw {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding listed (over all the header's lines) decides.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| HttpError::bad("bad Content-Length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(HttpError::bad("conflicting Content-Length headers"));
            }
            length = Some(v);
        }
    }
    match (chunked, length) {
        (Some(_), Some(_)) if request => {
            Err(HttpError::bad("both Transfer-Encoding and Content-Length"))
        }
        (Some(true), _) => Ok(Some(Framing::Chunked)),
        (Some(false), _) => Err(HttpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "unsupported Transfer-Encoding",
        )),
        (None, Some(n)) if n > limits.max_body => Err(body_too_large(n, limits)),
        (None, Some(n)) => Ok(Some(Framing::Length(n))),
        (None, None) => Ok(None),
    }
}

/// Where the message ends, if it is all in `buf`, and for a chunked body
/// where its chunks' data lie.
fn body_end(
    buf: &IOBuf,
    head_len: usize,
    framing: Framing,
    limits: Limits,
    scan: &mut ChunkScan,
) -> Result<Option<usize>, HttpError> {
    match framing {
        Framing::Length(n) => Ok((buf.len() >= head_len + n).then_some(head_len + n)),
        Framing::Chunked => scan.scan(buf, head_len, limits),
        Framing::UntilClose => Ok(Some(buf.len())),
    }
}

/// Consumes the message `[0, end)` from `buf` and returns its body
/// (`scan`: the finished scan of a chunked body).
fn cut_body(
    buf: &mut IOBuf,
    head_len: usize,
    end: usize,
    framing: Framing,
    scan: &mut ChunkScan,
) -> IOBuf {
    let mut body = IOBuf::new();
    match framing {
        Framing::Length(_) | Framing::UntilClose => {
            buf.pop_front(head_len);
            buf.cut_to(&mut body, end - head_len);
        }
        Framing::Chunked => {
            let mut msg = IOBuf::new();
            buf.cut_to(&mut msg, end);
            let mut at = 0;
            for &(pos, len) in &scan.chunks {
                msg.pop_front(pos - at);
                msg.cut_to(&mut body, len);
                at = pos + len;
            }
        }
    }
    scan.reset();
    body
}

/// Where the scan of a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Stage {
    /// At a chunk-size line.
    #[default]
    Size,
    /// At a chunk's data of this many bytes (then its CRLF).
    Data(usize),
    /// At a trailer line (the last chunk was seen).
    Trailers,
}

/// The scan of a chunked body so far, kept between reads so that each
/// read scans only the bytes that arrived (a body sent as 1-byte chunks
/// costs linear, not quadratic, work). Belongs to the message at the
/// front of a connection's input: the parse that completes the message
/// or fails it resets it, so one `ChunkScan` per connection serves all its
/// messages. A fresh one (`Default`) scans from the start.
#[derive(Debug, Default)]
pub(crate) struct ChunkScan {
    /// Where the body starts (the head's length); 0: nothing scanned.
    body_start: usize,
    /// Where the current line or chunk data starts.
    pos: usize,
    stage: Stage,
    /// Bytes of the current line already seen to hold no LF.
    seen: usize,
    /// Whether the last of those was CR.
    last_cr: bool,
    /// The chunks' data found so far: (position, length).
    chunks: Vec<(usize, usize)>,
    /// Bytes of chunk data so far.
    total: usize,
    /// Bytes of chunk extensions so far.
    ext: usize,
    /// Bytes of trailer lines so far.
    trailers: usize,
}

impl ChunkScan {
    /// Whether a chunked body was left half scanned (the next parse of the
    /// same input resumes it).
    pub(crate) fn in_progress(&self) -> bool {
        self.body_start != 0
    }

    fn reset(&mut self) {
        self.body_start = 0;
        self.pos = 0;
        self.stage = Stage::Size;
        self.seen = 0;
        self.last_cr = false;
        self.chunks.clear();
        self.total = 0;
        self.ext = 0;
        self.trailers = 0;
    }

    /// Scans the chunked body starting at `head_len` from where the last
    /// call stopped: `Some(end)` when the last chunk and the trailers are
    /// in `buf` (the chunks then lie in `self.chunks`).
    fn scan(
        &mut self,
        buf: &IOBuf,
        head_len: usize,
        limits: Limits,
    ) -> Result<Option<usize>, HttpError> {
        if self.body_start != head_len || self.pos > buf.len() || self.pos < head_len {
            self.reset();
            self.body_start = head_len;
            self.pos = head_len;
        }
        let r = self.scan_more(buf, limits);
        if r.is_err() {
            self.reset();
        }
        r
    }

    fn scan_more(&mut self, buf: &IOBuf, limits: Limits) -> Result<Option<usize>, HttpError> {
        let mut cur = Cursor::new(buf, self.pos);
        loop {
            match self.stage {
                Stage::Size => {
                    let start = cur;
                    let Some(len) = self.line(&mut cur, MAX_LINE, StatusCode::BAD_REQUEST)? else {
                        return Ok(None);
                    };
                    // The line (≤ MAX_LINE bytes) into a stack buffer.
                    let mut line = [0u8; MAX_LINE];
                    let mut at = start;
                    at.copy(&mut line[..len]);
                    let (size, ext) = chunk_size(&line[..len])?;
                    self.ext += ext;
                    if self.ext > limits.max_header {
                        return Err(HttpError::bad(format!(
                            "chunk extensions over {} bytes",
                            limits.max_header
                        )));
                    }
                    self.pos += len + 2;
                    if size == 0 {
                        self.stage = Stage::Trailers;
                        continue;
                    }
                    self.total = self.total.saturating_add(size);
                    if self.total > limits.max_body {
                        return Err(body_too_large(self.total, limits));
                    }
                    self.stage = Stage::Data(size);
                }
                Stage::Data(size) => {
                    let data_end = self.pos.saturating_add(size);
                    if buf.len() < data_end.saturating_add(2) {
                        return Ok(None);
                    }
                    cur.skip(size);
                    let mut crlf = [0u8; 2];
                    cur.copy(&mut crlf);
                    if &crlf != b"\r\n" {
                        return Err(HttpError::bad("chunk data not followed by CRLF"));
                    }
                    self.chunks.push((self.pos, size));
                    self.pos = data_end + 2;
                    self.stage = Stage::Size;
                }
                Stage::Trailers => {
                    // Trailers (ignored) up to an empty line, counted
                    // with the head against the head's limit.
                    // (The empty line ending them is not counted.)
                    let budget = limits
                        .max_header
                        .saturating_add(2)
                        .saturating_sub(self.body_start + self.trailers);
                    let Some(len) = self.line(
                        &mut cur,
                        budget,
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    )?
                    else {
                        return Ok(None);
                    };
                    self.pos += len + 2;
                    self.trailers += len + 2;
                    if len == 0 {
                        return Ok(Some(self.pos));
                    }
                }
            }
        }
    }

    /// Finds the end of the line starting at `self.pos` (where `cur` is),
    /// resuming after the bytes seen by earlier calls; leaves `cur` after
    /// the line. `Some(length without the CRLF)`, `None` when its LF has
    /// not arrived. A line whose CRLF goes past `max` bytes fails with
    /// `status`.
    fn line(
        &mut self,
        cur: &mut Cursor<'_>,
        max: usize,
        status: StatusCode,
    ) -> Result<Option<usize>, HttpError> {
        cur.skip(self.seen);
        loop {
            let Some(b) = cur.next_byte() else {
                return Ok(None);
            };
            if b == b'\n' {
                let (len, cr) = (self.seen, self.last_cr);
                self.seen = 0;
                self.last_cr = false;
                if !cr {
                    return Err(HttpError::bad("line not ended by CRLF"));
                }
                return Ok(Some(len - 1));
            }
            self.seen += 1;
            self.last_cr = b == b'\r';
            if self.seen + 1 > max {
                return Err(HttpError::new(
                    status,
                    format!("chunk or trailer line over {max} bytes"),
                ));
            }
        }
    }
}

/// A chunk-size line's size and the bytes of its extensions (`5;a=b`: 5
/// and 4).
fn chunk_size(line: &[u8]) -> Result<(usize, usize), HttpError> {
    let (size_field, ext) = match line.iter().position(|&b| b == b';') {
        Some(at) => (&line[..at], line.len() - at),
        None => (line, 0),
    };
    let size = std::str::from_utf8(size_field.trim_ascii())
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|s| usize::from_str_radix(s, 16).ok())
        .ok_or_else(|| HttpError::bad("bad chunk size"))?;
    Ok((size, ext))
}

#[cfg(test)]
thread_local! {
    /// Bytes the chunk scanner looked at on this thread (tests check that
    /// the work is linear).
    static SCANNED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A forward reader over an IOBuf's bytes from a position.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    buf: &'a IOBuf,
    /// The next reference of `buf` after `cur`.
    next: usize,
    /// What is left of the current reference.
    cur: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a IOBuf, pos: usize) -> Cursor<'a> {
        let mut c = Cursor {
            buf,
            next: 0,
            cur: &[],
        };
        c.skip(pos);
        c
    }

    /// Moves on to the next non-empty reference; false at the end.
    fn refill(&mut self) -> bool {
        while self.cur.is_empty() {
            match self.buf.backing_block(self.next) {
                Some(s) => {
                    self.cur = s;
                    self.next += 1;
                }
                None => return false,
            }
        }
        true
    }

    /// Moves `n` bytes on (or to the end) without looking at them.
    fn skip(&mut self, mut n: usize) {
        while n > 0 && self.refill() {
            let k = n.min(self.cur.len());
            self.cur = &self.cur[k..];
            n -= k;
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        if !self.refill() {
            return None;
        }
        let b = self.cur[0];
        self.cur = &self.cur[1..];
        #[cfg(test)]
        SCANNED.with(|c| c.set(c.get() + 1));
        Some(b)
    }

    /// Copies the next `dst.len()` bytes (fewer at the end).
    fn copy(&mut self, dst: &mut [u8]) {
        for d in dst {
            match self.next_byte() {
                Some(b) => *d = b,
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`parse_request_expecting`] with the probe it needs.
    fn parse_probed(
        buf: &mut IOBuf,
        limits: Limits,
        scan: &mut ChunkScan,
    ) -> (HttpParse<Box<Request<IOBuf>>>, RequestFlags) {
        let probe = probe_request(buf);
        parse_request_expecting(buf, probe, limits, scan)
    }

    const LIMITS: Limits = Limits {
        max_header: 4096,
        max_body: 2 << 20,
    };

    const HEAD: &[u8] = b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";

    #[test]
    fn a_response_body_until_close_is_refused_past_the_limit_before_the_close() {
        let limits = Limits {
            max_header: 4096,
            max_body: 1000,
        };
        let mut buf = IOBuf::from("HTTP/1.1 200 OK\r\n\r\n");
        buf.append(&[b'x'; 1000]);
        assert!(matches!(
            parse_response(&mut buf, limits, false, false),
            HttpParse::NeedMore
        ));
        buf.append(b"x");
        match parse_response(&mut buf, limits, false, false) {
            HttpParse::Error(e) => assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE),
            other => panic!("{other:?}"),
        }
    }

    /// Feeds `input` in `piece`-byte pieces through one `ChunkScan`, as a
    /// server connection does, until the parse is not `NeedMore`.
    fn feed(input: &[u8], piece: usize, limits: Limits) -> (HttpParse<Box<Request<IOBuf>>>, IOBuf) {
        let mut buf = IOBuf::new();
        let mut scan = ChunkScan::default();
        for part in input.chunks(piece) {
            buf.append(part);
            match parse_probed(&mut buf, limits, &mut scan).0 {
                HttpParse::NeedMore => {}
                r => return (r, buf),
            }
        }
        (HttpParse::NeedMore, buf)
    }

    fn status<T: std::fmt::Debug>(r: &HttpParse<T>) -> StatusCode {
        match r {
            HttpParse::Error(e) => e.status,
            r => panic!("not an error: {r:?}"),
        }
    }

    #[test]
    fn endless_trailers_hit_the_head_limit() {
        let mut input = HEAD.to_vec();
        input.extend_from_slice(b"3\r\nabc\r\n0\r\n");
        while input.len() < 3 * LIMITS.max_header {
            input.extend_from_slice(b"a:b\r\n");
        }
        for piece in [1, 7, 4096, input.len()] {
            let (r, _) = feed(&input, piece, LIMITS);
            assert_eq!(
                status(&r),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "{piece}"
            );
        }
        // Trailers within the limit are fine.
        let mut ok = HEAD.to_vec();
        ok.extend_from_slice(b"3\r\nabc\r\n0\r\na: b\r\nc: d\r\n\r\n");
        let (r, rest) = feed(&ok, 5, LIMITS);
        let HttpParse::Complete(req) = r else {
            panic!("{r:?}")
        };
        assert!(req.body().equals(b"abc"));
        assert!(rest.is_empty());
    }

    #[test]
    fn chunk_extensions_count_against_a_limit() {
        // Each line is short, the extensions add up.
        let ext = format!(";name={}", "v".repeat(500));
        let mut input = HEAD.to_vec();
        while input.len() < 3 * LIMITS.max_header {
            input.extend_from_slice(format!("1{ext}\r\nx\r\n").as_bytes());
        }
        let (r, _) = feed(&input, 4096, LIMITS);
        assert_eq!(status(&r), StatusCode::BAD_REQUEST);
        // One chunk-size line over MAX_LINE.
        let mut long = HEAD.to_vec();
        long.extend_from_slice(format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE)).as_bytes());
        let (r, _) = feed(&long, 100, LIMITS);
        assert_eq!(status(&r), StatusCode::BAD_REQUEST);
        // A few extensions are fine.
        let mut ok = HEAD.to_vec();
        ok.extend_from_slice(b"2;a=b;c\r\nhi\r\n0;last\r\n\r\n");
        let (r, _) = feed(&ok, 3, LIMITS);
        let HttpParse::Complete(req) = r else {
            panic!("{r:?}")
        };
        assert!(req.body().equals(b"hi"));
    }

    #[test]
    fn a_body_split_anywhere_parses_the_same() {
        let mut input = HEAD.to_vec();
        input
            .extend_from_slice(b"5;x=y\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nt: v\r\n\r\n");
        input.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        for piece in 1..=input.len() {
            let (r, rest) = feed(&input, piece, LIMITS);
            let HttpParse::Complete(req) = r else {
                panic!("{piece}: {r:?}")
            };
            assert!(req.body().equals(b"hello 0123456789"), "{piece}");
            // What was fed past the message stays.
            assert!(rest.len() <= b"GET /next HTTP/1.1\r\n\r\n".len());
        }
        // Two messages on one connection share the scan.
        let mut buf = IOBuf::new();
        buf.append(&input);
        buf.append(&input[..input.len() - 22]);
        let mut scan = ChunkScan::default();
        let mut bodies = Vec::new();
        while let HttpParse::Complete(r) = parse_probed(&mut buf, LIMITS, &mut scan).0 {
            bodies.push(r.body().to_vec());
        }
        assert_eq!(bodies, [&b"hello 0123456789"[..], b"", b"hello 0123456789"]);
    }

    #[test]
    fn malformed_chunk_lines_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"0\r\na:b\n\r\n",
            b"-1\r\n",
            b"+1\r\nx\r\n0\r\n\r\n",
        ] {
            let mut input = HEAD.to_vec();
            input.extend_from_slice(bad);
            let (r, _) = feed(&input, 1, LIMITS);
            assert_eq!(
                status(&r),
                StatusCode::BAD_REQUEST,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn scanning_one_byte_chunks_is_linear() {
        let body = 1 << 20;
        let mut input = HEAD.to_vec();
        for i in 0..body {
            input.extend_from_slice(b"1\r\n");
            input.push(b'a' + (i % 26) as u8);
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"0\r\n\r\n");
        SCANNED.with(|c| c.set(0));
        let (r, rest) = feed(&input, 4096, LIMITS);
        let scanned = SCANNED.with(|c| c.get());
        let HttpParse::Complete(req) = r else {
            panic!("{r:?}")
        };
        assert_eq!(req.body().len(), body);
        assert!(rest.is_empty());
        // Each byte of chunk framing is looked at about once (a rescan
        // from the start on each of the 1,536 reads would look at ~4.6
        // billion).
        assert!(scanned <= 2 * input.len(), "{scanned} for {}", input.len());
    }

    #[test]
    fn header_values_with_control_bytes_are_refused() {
        // `header_value` takes ASCII values unchecked: the head's parse
        // must refuse every byte a `HeaderValue` may not hold.
        for b in (0u8..0x20).filter(|&b| b != b'\t').chain([0x7f]) {
            let mut input = b"GET / HTTP/1.1\r\nX-A: a".to_vec();
            input.push(b);
            input.extend_from_slice(b"b\r\n\r\n");
            let mut buf = IOBuf::from(input);
            let r = parse_request(&mut buf, LIMITS);
            assert!(matches!(r, HttpParse::Error(_)), "byte {b:#x}: {r:?}");
        }
        let mut buf = IOBuf::from(&b"GET / HTTP/1.1\r\nX-A: a\tb ~\r\n\r\n"[..]);
        let HttpParse::Complete(req) = parse_request(&mut buf, LIMITS) else {
            panic!("refused");
        };
        assert_eq!(req.headers()["x-a"], "a\tb ~");
    }

    #[test]
    fn transfer_encoding_with_content_length_is_refused() {
        let input = b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let (r, _) = feed(input, input.len(), LIMITS);
        assert_eq!(status(&r), StatusCode::BAD_REQUEST);
        // A response with both is read as chunked.
        let mut buf = IOBuf::new();
        buf.append(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        let HttpParse::Complete(resp) = parse_response(&mut buf, LIMITS, false, false) else {
            panic!("response not parsed")
        };
        assert!(resp.body().equals(b"abc"));
    }

    #[test]
    fn request_flags_read_the_raw_head_as_wants_close_reads_the_map() {
        let cases: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nconnection: keep-alive, CLOSE\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: upgrade , keep-alive\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n",
        ];
        for &input in cases {
            let mut buf = IOBuf::from(input);
            let (r, flags) = parse_probed(&mut buf, LIMITS, &mut ChunkScan::default());
            let HttpParse::Complete(req) = r else {
                panic!("{input:?}: {r:?}");
            };
            let want = super::super::wants_close(req.version(), req.headers());
            assert_eq!(flags.close, want, "{}", String::from_utf8_lossy(input));
            assert!(!flags.waiting);
        }
        // `Expect: 100-continue` with the body still to come: waiting.
        let mut buf = IOBuf::from(
            &b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n"[..],
        );
        let (r, flags) = parse_probed(&mut buf, LIMITS, &mut ChunkScan::default());
        assert!(matches!(r, HttpParse::NeedMore));
        assert!(flags.waiting && !flags.close);
    }
}
