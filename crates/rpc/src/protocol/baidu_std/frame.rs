//! Cutting baidu_std frames out of a byte stream, and writing them.
//!
//! Header: `"PRPC"`, `body_size` (u32 big-endian, bytes after the header),
//! `meta_size` (u32 big-endian, bytes of the [`RpcMeta`] at the start of the
//! body). The body is `meta | payload | attachment`, the attachment being
//! the last `meta.attachment_size` bytes.
//!
//! [`parse`] is zero-copy: the payload and the attachment of a [`Frame`] are
//! cut from the input [`IOBuf`] (they share its blocks). Every
//! [`ParseError`] means the stream cannot be resynchronised: the caller
//! closes the connection.

use std::fmt;

use fibrpc_iobuf::{IOBuf, IOBufAppender};
use prost::Message;

use super::meta::RpcMeta;

/// The 4 bytes every baidu_std frame starts with.
pub const MAGIC: [u8; 4] = *b"PRPC";
/// Bytes of the fixed header: magic, body_size, meta_size.
pub const HEADER_LEN: usize = 12;
/// bRPC's default limit on `body_size` (`max_body_size`, 64 MiB).
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// Whether the first bytes of a connection look like baidu_std.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The magic is there.
    Yes,
    /// Another protocol (or garbage).
    No,
    /// Fewer than 4 bytes, all matching the magic so far.
    NeedMore,
}

/// Looks at (without consuming) the first bytes of `buf`. Cheap: at most 4
/// bytes are compared.
pub fn probe(buf: &IOBuf) -> Probe {
    let mut head = [0u8; 4];
    let n = buf.copy_to(&mut head, 0);
    if head[..n] != MAGIC[..n] {
        Probe::No
    } else if n < MAGIC.len() {
        Probe::NeedMore
    } else {
        Probe::Yes
    }
}

/// One complete frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The decoded meta.
    pub meta: RpcMeta,
    /// The payload message as sent (still compressed when
    /// `meta.compress_type` says so).
    pub payload: IOBuf,
    /// The raw attachment (empty when there is none).
    pub attachment: IOBuf,
}

/// Why a frame cannot be parsed. Each one means "close the connection".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The stream does not start with `"PRPC"` (not baidu_std, or garbage).
    BadMagic,
    /// `body_size` is over the limit given to [`parse`].
    BodyTooLarge {
        /// `body_size` from the header.
        body_size: usize,
        /// The limit.
        max_body: usize,
    },
    /// `meta_size > body_size`.
    MetaTooLarge {
        /// `meta_size` from the header.
        meta_size: usize,
        /// `body_size` from the header.
        body_size: usize,
    },
    /// The meta is not a valid `RpcMeta`.
    BadMeta(String),
    /// `attachment_size` is negative or larger than what follows the meta.
    BadAttachmentSize {
        /// `attachment_size` from the meta.
        attachment_size: i64,
        /// Bytes of the body after the meta.
        available: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BadMagic => write!(f, "not a baidu_std frame (bad magic)"),
            ParseError::BodyTooLarge {
                body_size,
                max_body,
            } => write!(
                f,
                "body_size={body_size} is larger than max_body={max_body}"
            ),
            ParseError::MetaTooLarge {
                meta_size,
                body_size,
            } => write!(
                f,
                "meta_size={meta_size} is larger than body_size={body_size}"
            ),
            ParseError::BadMeta(e) => write!(f, "fail to decode RpcMeta: {e}"),
            ParseError::BadAttachmentSize {
                attachment_size,
                available,
            } => write!(
                f,
                "attachment_size={attachment_size} but only {available} bytes follow the meta"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// What [`parse`] found.
// A frame is moved out once per message; boxing it would cost an
// allocation per message to save a memcpy of a few hundred bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ParseResult {
    /// A complete frame, cut from the input.
    Complete(Frame),
    /// The frame is not complete yet; nothing was consumed.
    NotEnoughData,
    /// A malformed frame: close the connection. For errors found in the
    /// header nothing was consumed; for [`ParseError::BadMeta`] and
    /// [`ParseError::BadAttachmentSize`] the whole frame was (the stream is
    /// still in sync there: bRPC itself closes on a bad meta but answers an
    /// oversized `attachment_size` with `EREQUEST` and keeps the connection).
    Error(ParseError),
}

/// Cuts one frame off the front of `src`.
///
/// Returns [`ParseResult::NotEnoughData`] (consuming nothing) until the
/// whole frame is there, except that a wrong magic, a `body_size` over
/// `max_body` or a `meta_size` over `body_size` are reported as soon as the
/// header shows them. On success exactly the frame's bytes are consumed.
pub fn parse(src: &mut IOBuf, max_body: usize) -> ParseResult {
    let (meta_buf, mut body) = match cut_framed(src, MAGIC, max_body) {
        Framed::Cut { meta, body } => (meta, body),
        Framed::NotEnoughData => return ParseResult::NotEnoughData,
        Framed::OtherMagic => return ParseResult::Error(ParseError::BadMagic),
        Framed::BodyTooLarge {
            body_size,
            max_body,
        } => {
            return ParseResult::Error(ParseError::BodyTooLarge {
                body_size,
                max_body,
            })
        }
        Framed::MetaTooLarge {
            meta_size,
            body_size,
        } => {
            return ParseResult::Error(ParseError::MetaTooLarge {
                meta_size,
                body_size,
            })
        }
    };
    let meta = match RpcMeta::decode(meta_buf) {
        Ok(m) => m,
        Err(e) => return ParseResult::Error(ParseError::BadMeta(e.to_string())),
    };
    let attachment_size = i64::from(meta.attachment_size());
    let available = body.len();
    if attachment_size < 0 || attachment_size as u64 > available as u64 {
        return ParseResult::Error(ParseError::BadAttachmentSize {
            attachment_size,
            available,
        });
    }
    let payload = body.split_to(available - attachment_size as usize);
    ParseResult::Complete(Frame {
        meta,
        payload,
        attachment: body,
    })
}

/// A frame with baidu_std's 12-byte header (bRPC's stream frames share
/// it under their own magic), cut by [`cut_framed`].
pub(crate) enum Framed {
    /// The whole frame was there and is consumed: its meta bytes and the
    /// rest of its body.
    Cut {
        /// The first `meta_size` bytes of the body.
        meta: IOBuf,
        /// The body after the meta.
        body: IOBuf,
    },
    /// Not complete yet (or too short to tell); nothing consumed.
    NotEnoughData,
    /// The input does not start with the magic; nothing consumed.
    OtherMagic,
    /// `body_size` is over the limit; nothing consumed.
    BodyTooLarge { body_size: usize, max_body: usize },
    /// `meta_size > body_size`; nothing consumed.
    MetaTooLarge { meta_size: usize, body_size: usize },
}

/// Cuts one frame with baidu_std's header layout and `magic` off the
/// front of `src` (zero-copy). A wrong magic, a `body_size` over
/// `max_body` or a `meta_size` over `body_size` are reported as soon as
/// the header shows them; otherwise nothing is consumed until the whole
/// frame is there.
pub(crate) fn cut_framed(src: &mut IOBuf, magic: [u8; 4], max_body: usize) -> Framed {
    let mut header = [0u8; HEADER_LEN];
    let n = src.copy_to(&mut header, 0);
    if header[..n.min(4)] != magic[..n.min(4)] {
        return Framed::OtherMagic;
    }
    if n < HEADER_LEN {
        return Framed::NotEnoughData;
    }
    let body_size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let meta_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if body_size > max_body {
        return Framed::BodyTooLarge {
            body_size,
            max_body,
        };
    }
    if meta_size > body_size {
        return Framed::MetaTooLarge {
            meta_size,
            body_size,
        };
    }
    if src.len() - HEADER_LEN < body_size {
        return Framed::NotEnoughData;
    }
    src.pop_front(HEADER_LEN);
    let mut body = src.split_to(body_size);
    let meta = body.split_to(meta_size);
    Framed::Cut { meta, body }
}

/// Why a frame cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// `meta.attachment_size` does not equal the attachment's length.
    AttachmentSizeMismatch {
        /// `attachment_size` in the meta (0 when absent).
        in_meta: i64,
        /// Bytes of the attachment.
        actual: usize,
    },
    /// The body does not fit the 32-bit `body_size`.
    TooLarge(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::AttachmentSizeMismatch { in_meta, actual } => write!(
                f,
                "meta.attachment_size={in_meta} but the attachment has {actual} bytes"
            ),
            EncodeError::TooLarge(n) => write!(f, "body of {n} bytes does not fit in u32"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Appends one frame to `out`: header, `meta` (encoded exactly as given:
/// presence of each optional field is kept), then `payload` and
/// `attachment` by reference (zero copy).
///
/// `meta.attachment_size` must equal `attachment.len()` (an absent field
/// counts as 0); set it, the compression and the checksum before calling.
/// On error nothing is appended.
pub fn encode(
    meta: &RpcMeta,
    payload: &IOBuf,
    attachment: &IOBuf,
    out: &mut IOBuf,
) -> Result<(), EncodeError> {
    let in_meta = i64::from(meta.attachment_size());
    if in_meta != attachment.len() as i64 {
        return Err(EncodeError::AttachmentSizeMismatch {
            in_meta,
            actual: attachment.len(),
        });
    }
    let meta_size = meta.encoded_len();
    let body_size = meta_size + payload.len() + attachment.len();
    let body_size32 = u32::try_from(body_size).map_err(|_| EncodeError::TooLarge(body_size))?;
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4..8].copy_from_slice(&body_size32.to_be_bytes());
    // meta_size <= body_size, so it fits too.
    header[8..].copy_from_slice(&(meta_size as u32).to_be_bytes());
    {
        let mut app = IOBufAppender::new(out);
        app.append(&header);
        meta.encode_raw(&mut app);
    }
    out.append_buf(payload);
    out.append_buf(attachment);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(meta: &RpcMeta, payload: &[u8], att: &[u8]) -> IOBuf {
        let mut out = IOBuf::new();
        encode(meta, &IOBuf::from(payload), &IOBuf::from(att), &mut out).unwrap();
        out
    }

    #[test]
    fn probe_looks_at_four_bytes() {
        assert_eq!(probe(&IOBuf::new()), Probe::NeedMore);
        assert_eq!(probe(&IOBuf::from("PR")), Probe::NeedMore);
        assert_eq!(probe(&IOBuf::from("PRPC")), Probe::Yes);
        assert_eq!(probe(&IOBuf::from("GET / HTTP/1.1")), Probe::No);
        assert_eq!(probe(&IOBuf::from("PX")), Probe::No);
    }

    #[test]
    fn round_trip_and_incomplete() {
        let meta = RpcMeta {
            correlation_id: Some(3),
            attachment_size: Some(2),
            ..Default::default()
        };
        let full = frame_bytes(&meta, b"pay", b"at").to_vec();
        for cut in 0..full.len() {
            let mut b = IOBuf::from(&full[..cut]);
            assert!(matches!(
                parse(&mut b, DEFAULT_MAX_BODY),
                ParseResult::NotEnoughData
            ));
            assert_eq!(b.len(), cut, "nothing consumed");
        }
        let mut b = IOBuf::from(&full[..]);
        b.append(b"PRPC");
        match parse(&mut b, DEFAULT_MAX_BODY) {
            ParseResult::Complete(f) => {
                assert_eq!(f.meta, meta);
                assert_eq!(f.payload, b"pay".to_vec());
                assert_eq!(f.attachment, b"at".to_vec());
            }
            r => panic!("{r:?}"),
        }
        assert_eq!(b, "PRPC");
    }

    fn header(body: u32, meta: u32) -> Vec<u8> {
        let mut v = b"PRPC".to_vec();
        v.extend_from_slice(&body.to_be_bytes());
        v.extend_from_slice(&meta.to_be_bytes());
        v
    }

    fn err(bytes: &[u8], max: usize) -> ParseError {
        match parse(&mut IOBuf::from(bytes), max) {
            ParseResult::Error(e) => e,
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn malformed_frames() {
        assert_eq!(err(b"HTTP", 100), ParseError::BadMagic);
        assert_eq!(err(b"PRPX", 100), ParseError::BadMagic);
        assert_eq!(err(b"X", 100), ParseError::BadMagic);
        assert!(matches!(
            err(&header(101, 0), 100),
            ParseError::BodyTooLarge { .. }
        ));
        assert!(matches!(
            err(&header(u32::MAX, 0), DEFAULT_MAX_BODY),
            ParseError::BodyTooLarge { .. }
        ));
        assert!(matches!(
            err(&header(4, 5), 100),
            ParseError::MetaTooLarge { .. }
        ));
        let mut bad_meta = header(2, 2);
        bad_meta.extend_from_slice(&[0x0a, 0x05]); // truncated field 1
        assert!(matches!(err(&bad_meta, 100), ParseError::BadMeta(_)));
        let mut big_att = header(2, 2);
        big_att.extend_from_slice(&[0x28, 0x01]); // attachment_size=1, nothing after
        assert!(matches!(
            err(&big_att, 100),
            ParseError::BadAttachmentSize { .. }
        ));
        let mut neg_att = header(11, 11);
        neg_att.extend_from_slice(&[
            0x28, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        assert!(matches!(
            err(&neg_att, 100),
            ParseError::BadAttachmentSize { .. }
        ));
    }

    #[test]
    fn encode_checks_attachment_size() {
        let r = encode(
            &RpcMeta::default(),
            &IOBuf::new(),
            &IOBuf::from("x"),
            &mut IOBuf::new(),
        );
        assert!(matches!(r, Err(EncodeError::AttachmentSizeMismatch { .. })));
    }

    #[test]
    fn parse_is_zero_copy() {
        let meta = RpcMeta {
            attachment_size: Some(4000),
            ..Default::default()
        };
        let payload = IOBuf::from(vec![1u8; 5000]);
        let att = IOBuf::from(vec![2u8; 4000]);
        let mut out = IOBuf::new();
        encode(&meta, &payload, &att, &mut out).unwrap();
        let ParseResult::Complete(f) = parse(&mut out, DEFAULT_MAX_BODY) else {
            panic!()
        };
        assert!(f.payload.shares_block_with(0, &payload, 0));
        assert!(f.attachment.shares_block_with(0, &att, 0));
    }
}
