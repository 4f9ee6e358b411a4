//! Whether a request that would change something was sent by a web page
//! of another site through its visitor's browser (cross-site request
//! forgery). See the module docs of [`crate::builtin`] for why the
//! console keeps GET and checks these headers instead.

use fibrpc_iobuf::IOBuf;
use http::header::{HOST, ORIGIN, REFERER};
use http::Request;

/// Why `req` looks cross-site, or `None` if nothing says so. A request
/// without `Sec-Fetch-Site`, `Origin` and `Referer` (curl, scripts) is
/// not cross-site.
pub(super) fn cross_site(req: &Request<IOBuf>) -> Option<String> {
    // Set by the browser on every request (since 2020-2023 depending on
    // the browser); a page cannot forge it. `same-site` is refused too: a
    // page on another port of the same host is same-site.
    if let Some(v) = req.headers().get("sec-fetch-site") {
        let v = String::from_utf8_lossy(v.as_bytes());
        if !v.eq_ignore_ascii_case("same-origin") && !v.eq_ignore_ascii_case("none") {
            return Some(format!("Sec-Fetch-Site is {v:?}"));
        }
    }
    let host = host_of(req);
    for name in [ORIGIN, REFERER] {
        if let Some(v) = req.headers().get(&name) {
            let v = String::from_utf8_lossy(v.as_bytes());
            let same = host
                .as_deref()
                .is_some_and(|h| authority_of(&v).is_some_and(|a| a.eq_ignore_ascii_case(h)));
            if !same {
                return Some(format!(
                    "{name} {v:?} is not this server ({})",
                    host.as_deref().unwrap_or("no Host header")
                ));
            }
        }
    }
    None
}

/// The `host[:port]` the client addressed: the `Host` header, or the
/// authority of an absolute request target.
fn host_of(req: &Request<IOBuf>) -> Option<String> {
    match req.headers().get(HOST) {
        Some(h) => Some(String::from_utf8_lossy(h.as_bytes()).trim().to_string()),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
}

/// `http://host:port/path` → `host:port`; `None` for anything that is not
/// an http(s) URL (`Origin: null` among them).
fn authority_of(url: &str) -> Option<&str> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Userinfo (`user@host`) is not part of the host.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    (!authority.is_empty()).then_some(authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<IOBuf> {
        let mut b = Request::get("/flags/x?setvalue=1");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(IOBuf::new()).unwrap()
    }

    #[test]
    fn same_origin_and_headerless_requests_pass() {
        assert_eq!(cross_site(&req(&[])), None);
        assert_eq!(cross_site(&req(&[("host", "h:8000")])), None);
        let same = [
            ("host", "h:8000"),
            ("origin", "http://h:8000"),
            ("referer", "http://H:8000/flags?x#y"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(cross_site(&req(&same)), None);
        assert_eq!(cross_site(&req(&[("sec-fetch-site", "none")])), None);
    }

    #[test]
    fn other_sites_are_refused() {
        for h in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("host", "h:8000"), ("origin", "http://evil.example")],
            vec![("host", "h:8000"), ("origin", "http://h:8001")],
            vec![("host", "h:8000"), ("origin", "null")],
            vec![("origin", "http://h:8000")],
            vec![("host", "h:8000"), ("referer", "https://evil.example/x")],
            vec![
                ("host", "h:8000"),
                ("referer", "http://h:8000@evil.example/"),
            ],
        ] {
            assert!(cross_site(&req(&h)).is_some(), "{h:?}");
        }
    }
}
