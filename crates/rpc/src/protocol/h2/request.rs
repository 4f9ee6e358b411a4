//! Between HPACK fields and the `http` crate's types: a request from
//! decoded fields (RFC 9113 §8.3's rules for a well-formed one), and a
//! response's header block.

use fibrpc_iobuf::IOBuf;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};

use super::hpack::encode_header;
use super::ResponseParts;

/// Headers that are HTTP/1.1's connection management, which HTTP/2
/// forbids (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// A request's fields as they are decoded.
#[derive(Debug, Default)]
pub(super) struct Fields {
    method: Option<Method>,
    path: Option<String>,
    scheme: bool,
    authority: Option<HeaderValue>,
    headers: HeaderMap,
    /// The first rule broken, reported once all is decoded.
    error: Option<&'static str>,
}

impl Fields {
    /// One decoded field.
    pub(super) fn add(&mut self, name: &[u8], value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(why) = self.try_add(name, value) {
            self.error = Some(why);
        }
    }

    fn try_add(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        if let Some(pseudo) = name.strip_prefix(b":") {
            if !self.headers.is_empty() {
                return Err("a pseudo-header after a regular header");
            }
            match pseudo {
                b"method" if self.method.is_none() => {
                    self.method =
                        Some(Method::from_bytes(value).map_err(|_| "a malformed :method")?);
                }
                b"path" if self.path.is_none() => {
                    let p = std::str::from_utf8(value).map_err(|_| "a malformed :path")?;
                    if p.is_empty() {
                        return Err("an empty :path");
                    }
                    self.path = Some(p.to_string());
                }
                b"scheme" if !self.scheme => self.scheme = true,
                b"authority" if self.authority.is_none() => {
                    self.authority =
                        Some(HeaderValue::from_bytes(value).map_err(|_| "a malformed :authority")?);
                }
                _ => return Err("an unknown or repeated pseudo-header"),
            }
            return Ok(());
        }
        if name.iter().any(|c| c.is_ascii_uppercase()) {
            return Err("an uppercase header name");
        }
        let name = HeaderName::from_bytes(name).map_err(|_| "a malformed header name")?;
        if CONNECTION_SPECIFIC.contains(&name.as_str()) {
            return Err("a connection-specific header");
        }
        if name == http::header::TE && value != b"trailers" {
            return Err("TE other than trailers");
        }
        let value = HeaderValue::from_bytes(value).map_err(|_| "a malformed header value")?;
        self.headers.append(name, value);
        Ok(())
    }

    /// The request, or which rule the fields broke.
    pub(super) fn into_request(self) -> Result<Box<Request<IOBuf>>, &'static str> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let method = self.method.ok_or("no :method")?;
        if method == Method::CONNECT {
            return Err("CONNECT is not served");
        }
        let path = self.path.ok_or("no :path")?;
        if !self.scheme {
            return Err("no :scheme");
        }
        let uri = Uri::try_from(path).map_err(|_| "a malformed :path")?;
        let mut headers = self.headers;
        if let Some(a) = self.authority {
            // Handlers written for HTTP/1.1 look for Host.
            headers.entry(http::header::HOST).or_insert(a);
        }
        let mut req = Request::new(IOBuf::new());
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_2;
        *req.headers_mut() = headers;
        Ok(Box::new(req))
    }
}

/// The header block of `status` alone.
pub(super) fn status_only(status: StatusCode) -> ResponseParts {
    let mut block = Vec::with_capacity(8);
    encode_header(b":status", status.as_str().as_bytes(), &mut block);
    ResponseParts {
        headers: block,
        ..Default::default()
    }
}

/// A response as HTTP/2 carries it: the status, the headers but the
/// connection-specific ones, a `content-length` when the handler set
/// none, and the body (none for `HEAD`).
pub(crate) fn response_parts(resp: &Response<IOBuf>, head_only: bool) -> ResponseParts {
    let mut block = head_block(resp);
    if !resp.headers().contains_key(CONTENT_LENGTH) {
        let mut n = itoa::Buffer::new();
        encode_header(
            b"content-length",
            n.format(resp.body().len()).as_bytes(),
            &mut block,
        );
    }
    ResponseParts {
        headers: block,
        body: if head_only {
            IOBuf::new()
        } else {
            resp.body().clone()
        },
        trailers: None,
    }
}

/// The header block of `resp`'s head: its status and headers, but the
/// connection-specific ones (no `content-length` is added: a
/// progressive response's length is not known).
pub(crate) fn head_block<B>(resp: &Response<B>) -> Vec<u8> {
    let mut block = Vec::with_capacity(64);
    encode_header(b":status", resp.status().as_str().as_bytes(), &mut block);
    for (name, value) in resp.headers() {
        if CONNECTION_SPECIFIC.contains(&name.as_str()) {
            continue;
        }
        encode_header(name.as_str().as_bytes(), value.as_bytes(), &mut block);
    }
    block
}
