//! Variable names: bRPC's normalization and `/vars` wildcard filters.

/// bRPC's `to_underscored_name`: `CamelCase` → `camel_case`, letters
/// lowercased, every run of other characters → one `_`.
pub(crate) fn normalize(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 8);
    let mut prev: Option<char> = None;
    for c in src.chars() {
        if c.is_ascii_alphabetic() {
            if c.is_ascii_uppercase() {
                let after_upper = prev.is_some_and(|p| p.is_ascii_uppercase());
                if prev.is_some() && !after_upper && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        } else if c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
        prev = Some(c);
    }
    out
}

/// Whether `name` passes `filter`: empty means everything; otherwise
/// patterns separated by `,` or `;`, any of which may match. A pattern
/// with `*` (any run) or `?` (one character) is a wildcard (`*qps*`);
/// one without is an exact name, as in bRPC's `/vars/NAME`.
pub(crate) fn matches(filter: &str, name: &str) -> bool {
    if filter.is_empty() {
        return true;
    }
    filter
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .any(|p| wildcard(p.as_bytes(), name.as_bytes()))
}

/// Glob match with `*` and `?`, linear backtracking on the last `*`.
fn wildcard(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_brpc() {
        assert_eq!(normalize("FooBar"), "foo_bar");
        assert_eq!(normalize("rpc.server..count"), "rpc_server_count");
        assert_eq!(normalize("HTTPServer"), "httpserver");
        assert_eq!(normalize("a-b c"), "a_b_c");
        assert_eq!(normalize("x9Y"), "x9_y");
    }

    #[test]
    fn filters() {
        assert!(matches("", "anything"));
        assert!(matches("*qps*", "rpc_server_qps_total"));
        assert!(!matches("*qps*", "rpc_count"));
        assert!(matches("rpc_count", "rpc_count"));
        assert!(!matches("rpc", "rpc_count"));
        assert!(matches("x;rpc_*", "rpc_count"));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "abbc"));
        assert!(matches("*a*b*", "xxaxxbxx"));
    }
}
