//! TLS record framing (RFC 8446 §5.1): a 5-byte header (content type,
//! legacy version, length) and at most 2^14 + 2048 bytes of payload.
//!
//! The reader hands rustls whole records only. rustls would take partial
//! records into a buffer of its own, where the server's
//! `read_message_timeout`, which looks at the socket's input, could not
//! see them; and the header check below closes a connection that starts
//! with 0x16 and then sends garbage before rustls buffers any of it.

use fibrpc_iobuf::IOBuf;

/// The record header's length.
const HEADER: usize = 5;

/// The largest payload a record may carry (TLSCiphertext, RFC 8446
/// §5.2, and TLS 1.2's limit alike).
const MAX_PAYLOAD: usize = (1 << 14) + 2048;

/// What is at the front of a connection's encrypted input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Front {
    /// A whole record of this many bytes (header included).
    Record(usize),
    /// The start of a record: read more.
    Partial,
    /// Not a TLS record.
    Bad(String),
}

/// Looks at the record at the front of `input` (consumes nothing).
pub(crate) fn front(input: &IOBuf) -> Front {
    let mut aux = [0u8; HEADER];
    let Some(h) = input.fetch(HEADER, &mut aux) else {
        // Check what there is already: a connection whose first bytes
        // are wrong closes before it sends five.
        let mut head = [0u8; HEADER];
        let n = input.copy_to(&mut head, 0);
        return match check_header(&head[..n]) {
            Some(reason) => Front::Bad(reason),
            None => Front::Partial,
        };
    };
    if let Some(reason) = check_header(h) {
        return Front::Bad(reason);
    }
    let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
    if len > MAX_PAYLOAD {
        return Front::Bad(format!(
            "a TLS record of {len} bytes (at most {MAX_PAYLOAD})"
        ));
    }
    if input.len() < HEADER + len {
        return Front::Partial;
    }
    Front::Record(HEADER + len)
}

/// Why the first bytes of a record header (up to five) are not TLS.
fn check_header(h: &[u8]) -> Option<String> {
    // change_cipher_spec, alert, handshake, application_data, heartbeat.
    if let Some(&t) = h.first() {
        if !(20..=24).contains(&t) {
            return Some(format!("not a TLS record (content type {t})"));
        }
    }
    // The legacy version's major byte is 3 in every TLS version.
    if let Some(&major) = h.get(1) {
        if major != 3 {
            return Some(format!("not a TLS record (version major {major})"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_partial_and_bad_records() {
        let rec = [22u8, 3, 1, 0, 2, 0xaa, 0xbb];
        assert_eq!(front(&IOBuf::from(&rec[..])), Front::Record(7));
        assert_eq!(front(&IOBuf::from(&rec[..6])), Front::Partial);
        assert_eq!(front(&IOBuf::from(&rec[..3])), Front::Partial);
        assert!(matches!(
            front(&IOBuf::from(&b"\x16GET"[..])),
            Front::Bad(_)
        ));
        assert!(matches!(front(&IOBuf::from(&[7u8][..])), Front::Bad(_)));
        let huge = [23u8, 3, 3, 0xff, 0xff];
        assert!(matches!(front(&IOBuf::from(&huge[..])), Front::Bad(_)));
    }
}
