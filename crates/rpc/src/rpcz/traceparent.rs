//! W3C Trace Context's `traceparent` header
//! (<https://www.w3.org/TR/trace-context/>): how HTTP carries the ids.
//!
//! `00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>`. fibrpc's
//! ids are 64-bit, as bRPC's: it sends its trace id in the low half of
//! the 128-bit one, and takes the low half of what it receives (the high
//! half when the low one is zero), so a trace that started elsewhere with
//! a 128-bit id keeps a stable 64-bit id here but reaches downstream
//! services under the shortened id.

use std::fmt::Write as _;

/// The ids a `traceparent` header carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace (64 bits of the 128-bit W3C id).
    pub trace_id: u64,
    /// The caller's span.
    pub parent_id: u64,
    /// The caller recorded its span (flag `01`, "sampled").
    pub sampled: bool,
}

/// The header's name.
pub const HEADER: &str = "traceparent";

/// Parses a `traceparent` value; `None` for anything malformed (which a
/// server ignores, as the specification asks).
pub fn parse(v: &[u8]) -> Option<TraceParent> {
    // version "-" trace "-" parent "-" flags; later versions may append
    // "-..." fields.
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = hex(&v[0..2])?;
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let high = hex(&v[3..19])?;
    let low = hex(&v[19..35])?;
    let parent_id = hex(&v[36..52])?;
    let flags = hex(&v[53..55])?;
    if (high == 0 && low == 0) || parent_id == 0 {
        return None;
    }
    Some(TraceParent {
        trace_id: if low != 0 { low } else { high },
        parent_id,
        sampled: flags & 1 == 1,
    })
}

/// The header value for a sampled span `span_id` of trace `trace_id`.
pub fn format(trace_id: u64, span_id: u64) -> String {
    let mut s = String::with_capacity(55);
    let _ = write!(s, "00-{:032x}-{span_id:016x}-01", u128::from(trace_id));
    s
}

/// Lowercase hex (the specification forbids uppercase), at most 16
/// digits.
fn hex(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0u64, |n, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let v = format(0x0123_4567_89ab_cdef, 0x42);
        assert_eq!(v, "00-00000000000000000123456789abcdef-0000000000000042-01");
        assert_eq!(
            parse(v.as_bytes()),
            Some(TraceParent {
                trace_id: 0x0123_4567_89ab_cdef,
                parent_id: 0x42,
                sampled: true
            })
        );
    }

    #[test]
    fn spec_example_and_malformed() {
        let ok = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let p = parse(ok).unwrap();
        assert_eq!(p.trace_id, 0xa3ce929d0e0e4736);
        assert_eq!(p.parent_id, 0x00f067aa0ba902b7);
        // A later version may append fields; version 00 may not.
        assert!(parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra").is_some());
        for bad in [
            &b""[..],
            b"garbage",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
