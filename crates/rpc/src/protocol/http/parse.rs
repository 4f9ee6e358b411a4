//! Cutting HTTP/1.1 messages out of a connection's input (bRPC's
//! `ParseHttpMessage`), with `httparse` for the head.
//!
//! Parsing is restartable and consumes nothing until a whole message is
//! there: the head is re-parsed when more bytes arrive (it is small), and
//! a chunked body is scanned chunk header by chunk header — the chunk data
//! is skipped, never copied — so a large body costs one scan per read, not
//! one per byte. The body is then cut out of the input by reference.

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
    let mut head = [0u8; 8];
    let n = buf.copy_to(&mut head, 0);
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
    match parse_request_expecting(buf, limits).0 {
        HttpParse::Complete(r) => HttpParse::Complete(*r),
        HttpParse::NeedMore => HttpParse::NeedMore,
        HttpParse::NotMine => HttpParse::NotMine,
        HttpParse::Error(e) => HttpParse::Error(e),
    }
}

/// [`parse_request`], boxed, also saying whether the answer is `NeedMore`
/// for a whole head that asks `Expect: 100-continue` (the client waits for
/// an interim `100 Continue` before it sends the body). Boxed where it is
/// built: the request is large (~250 bytes), and each move of it from the
/// parser to the handler's fiber was a `memcpy` call.
pub(crate) fn parse_request_expecting(
    buf: &mut IOBuf,
    limits: Limits,
) -> (HttpParse<Box<Request<IOBuf>>>, bool) {
    let mut expects = false;
    let r = parse_request_inner(buf, limits, &mut expects);
    let waiting = expects && matches!(r, HttpParse::NeedMore);
    (r, waiting)
}

fn parse_request_inner(
    buf: &mut IOBuf,
    limits: Limits,
    expects_continue: &mut bool,
) -> HttpParse<Box<Request<IOBuf>>> {
    if let Some(early) = probed(probe_request(buf)) {
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
        Err(e) => return HttpParse::Error(e),
    };
    *expects_continue = req.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("expect") && h.value.eq_ignore_ascii_case(b"100-continue")
    });
    let end = match body_end(buf, head_len, framing, limits) {
        Ok(Some(end)) => end,
        Ok(None) => return HttpParse::NeedMore,
        Err(e) => return HttpParse::Error(e),
    };
    let parts = (|| -> Result<_, HttpError> {
        let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
            .map_err(|_| HttpError::bad("bad method"))?;
        let head = SharedHead::new(buf, &bytes[..head_len]);
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
        Err(e) => return HttpParse::Error(e),
    };
    let body = cut_body(buf, head_len, end, framing);
    let mut r = Box::new(Request::new(body));
    *r.method_mut() = method;
    *r.uri_mut() = uri;
    *r.version_mut() = version;
    *r.headers_mut() = headers;
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
    let end = if framing == Framing::UntilClose {
        if !eof {
            return HttpParse::NeedMore;
        }
        if buf.len() - head_len > limits.max_body {
            return HttpParse::Error(body_too_large(buf.len() - head_len, limits));
        }
        buf.len()
    } else {
        match body_end(buf, head_len, framing, limits) {
            Ok(Some(end)) => end,
            Ok(None) => return HttpParse::NeedMore,
            Err(e) => return HttpParse::Error(e),
        }
    };
    let head = SharedHead::new(buf, &bytes[..head_len]);
    let headers = match header_map(resp.headers, &head) {
        Ok(h) => h,
        Err(e) => return HttpParse::Error(e),
    };
    let version = version(resp.version);
    let body = cut_body(buf, head_len, end, framing);
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
/// and the header values are slices of it rather than copies: one
/// allocation per message instead of one per header (when the head lies
/// in one block of the input, the bytes stay there; else they are copied
/// once).
struct SharedHead<'a> {
    bytes: Bytes,
    /// The parsed head the slices come from.
    parsed: &'a [u8],
}

impl<'a> SharedHead<'a> {
    fn new(buf: &IOBuf, parsed: &'a [u8]) -> SharedHead<'a> {
        let in_place = buf
            .slices()
            .next()
            .is_some_and(|s| s.as_ptr() == parsed.as_ptr());
        let bytes = if in_place {
            let mut head = buf.clone();
            head.pop_back(head.len() - parsed.len());
            Bytes::from_owner(HeadBlock(head))
        } else {
            Bytes::copy_from_slice(parsed)
        };
        SharedHead { bytes, parsed }
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

/// The first bytes of a connection's input, kept by reference while the
/// slices of a head use them. The head lies in the first block.
struct HeadBlock(IOBuf);

impl AsRef<[u8]> for HeadBlock {
    fn as_ref(&self) -> &[u8] {
        self.0.slices().next().unwrap_or_default()
    }
}

fn header_map(raw: &[httparse::Header<'_>], head: &SharedHead<'_>) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(raw.len());
    for h in raw {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HttpError::bad(format!("bad header name {:?}", h.name)))?;
        let value = HeaderValue::from_maybe_shared(head.slice(h.value))
            .map_err(|_| HttpError::bad(format!("bad value of header {}", h.name)))?;
        map.append(name, value);
    }
    Ok(map)
}

/// RFC 9112 §6.3 for requests: chunked if `Transfer-Encoding` ends in
/// chunked (any other coding is refused), else `Content-Length`, else no
/// body.
fn request_framing(raw: &[httparse::Header<'_>], limits: Limits) -> Result<Framing, HttpError> {
    match framing_headers(raw, limits)? {
        Some(f) => Ok(f),
        None => Ok(Framing::Length(0)),
    }
}

/// For responses, a message with neither header runs until close.
fn response_framing(raw: &[httparse::Header<'_>], limits: Limits) -> Result<Framing, HttpError> {
    Ok(framing_headers(raw, limits)?.unwrap_or(Framing::UntilClose))
}

fn framing_headers(
    raw: &[httparse::Header<'_>],
    limits: Limits,
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

/// Where the message ends, if it is all in `buf`.
fn body_end(
    buf: &IOBuf,
    head_len: usize,
    framing: Framing,
    limits: Limits,
) -> Result<Option<usize>, HttpError> {
    match framing {
        Framing::Length(n) => Ok((buf.len() >= head_len + n).then_some(head_len + n)),
        Framing::Chunked => Ok(scan_chunks(buf, head_len, limits)?.map(|(end, _)| end)),
        Framing::UntilClose => Ok(Some(buf.len())),
    }
}

/// Consumes the message `[0, end)` from `buf` and returns its body.
fn cut_body(buf: &mut IOBuf, head_len: usize, end: usize, framing: Framing) -> IOBuf {
    let mut body = IOBuf::new();
    match framing {
        Framing::Length(_) | Framing::UntilClose => {
            buf.pop_front(head_len);
            buf.cut_to(&mut body, end - head_len);
        }
        Framing::Chunked => {
            let chunks = scan_chunks(
                buf,
                head_len,
                Limits {
                    max_header: usize::MAX,
                    max_body: usize::MAX,
                },
            )
            .ok()
            .flatten()
            .map(|(_, c)| c)
            .unwrap_or_default();
            let mut msg = IOBuf::new();
            buf.cut_to(&mut msg, end);
            let mut at = 0;
            for (pos, len) in chunks {
                msg.pop_front(pos - at);
                msg.cut_to(&mut body, len);
                at = pos + len;
            }
        }
    }
    body
}

/// Scans a chunked body starting at `pos`: `Some((end, [(data_pos,
/// data_len)]))` when the last chunk and the trailers are in `buf`.
#[allow(clippy::type_complexity)]
fn scan_chunks(
    buf: &IOBuf,
    mut pos: usize,
    limits: Limits,
) -> Result<Option<(usize, Vec<(usize, usize)>)>, HttpError> {
    let mut chunks = Vec::new();
    let mut total = 0usize;
    loop {
        let Some((line, next)) = read_line(buf, pos)? else {
            return Ok(None);
        };
        let size_field = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size_field.trim_ascii())
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| HttpError::bad("bad chunk size"))?;
        pos = next;
        if size == 0 {
            // Trailers (ignored) up to an empty line.
            loop {
                let Some((line, next)) = read_line(buf, pos)? else {
                    return Ok(None);
                };
                pos = next;
                if line.is_empty() {
                    return Ok(Some((pos, chunks)));
                }
            }
        }
        total = total.saturating_add(size);
        if total > limits.max_body {
            return Err(body_too_large(total, limits));
        }
        let data_end = pos.saturating_add(size);
        if buf.len() < data_end.saturating_add(2) {
            return Ok(None);
        }
        let mut crlf = [0u8; 2];
        buf.copy_to(&mut crlf, data_end);
        if &crlf != b"\r\n" {
            return Err(HttpError::bad("chunk data not followed by CRLF"));
        }
        chunks.push((pos, size));
        pos = data_end + 2;
    }
}

/// The line starting at `pos` (without its CRLF) and where the next one
/// starts; `None` when the CRLF has not arrived.
fn read_line(buf: &IOBuf, pos: usize) -> Result<Option<(Vec<u8>, usize)>, HttpError> {
    let mut line = [0u8; MAX_LINE];
    let n = buf.copy_to(&mut line, pos);
    match line[..n].windows(2).position(|w| w == b"\r\n") {
        Some(at) => Ok(Some((line[..at].to_vec(), pos + at + 2))),
        None if n == MAX_LINE => Err(HttpError::bad("chunk or trailer line too long")),
        None => Ok(None),
    }
}
