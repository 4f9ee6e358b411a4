//! Cutting STRM frames out of a byte stream, and writing them.
//!
//! ```text
//! +------+-----------+-----------+--------------------------------+
//! | STRM | body_size | meta_size | body = StreamFrameMeta|payload |
//! | 4 B  | u32 BE    | u32 BE    | body_size bytes                |
//! +------+-----------+-----------+--------------------------------+
//! ```
//!
//! The payload is raw user bytes (or, for the first DATA a client stream
//! receives, the whole baidu_std response frame). [`parse`] is zero-copy.

use std::fmt;

use fibrpc_iobuf::{IOBuf, IOBufAppender};
use prost::Message;

use super::meta::StreamFrameMeta;
use crate::protocol::baidu_std::frame::{cut_framed, Framed};

/// The 4 bytes every STRM frame starts with.
pub const MAGIC: [u8; 4] = *b"STRM";
/// Bytes of the fixed header: magic, body_size, meta_size.
pub const HEADER_LEN: usize = crate::protocol::baidu_std::frame::HEADER_LEN;

/// One complete frame.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFrame {
    /// The decoded meta.
    pub meta: StreamFrameMeta,
    /// The payload (empty except on DATA).
    pub payload: IOBuf,
}

/// Why a frame cannot be cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `body_size` is over the limit given to [`parse`]; nothing consumed.
    BodyTooLarge {
        /// `body_size` from the header.
        body_size: usize,
        /// The limit.
        max_body: usize,
    },
    /// `meta_size > body_size`; nothing consumed.
    MetaTooLarge {
        /// `meta_size` from the header.
        meta_size: usize,
        /// `body_size` from the header.
        body_size: usize,
    },
    /// The meta is not a `StreamFrameMeta`; the whole frame was consumed
    /// (the stream is still in sync: bRPC ignores such a frame).
    BadMeta(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::BodyTooLarge {
                body_size,
                max_body,
            } => write!(
                f,
                "STRM body_size={body_size} is larger than max_body={max_body}"
            ),
            ParseError::MetaTooLarge {
                meta_size,
                body_size,
            } => write!(
                f,
                "STRM meta_size={meta_size} is larger than body_size={body_size}"
            ),
            ParseError::BadMeta(e) => write!(f, "fail to decode StreamFrameMeta: {e}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// What [`parse`] found.
#[derive(Debug)]
pub enum ParseResult {
    /// A complete frame, cut from the input.
    Complete(StreamFrame),
    /// Possibly a STRM frame, not complete yet; nothing consumed.
    NotEnoughData,
    /// The input does not start with `STRM`; nothing consumed.
    NotMine,
    /// A malformed frame (see [`ParseError`] for what was consumed).
    Error(ParseError),
}

/// Cuts one frame off the front of `src`.
pub fn parse(src: &mut IOBuf, max_body: usize) -> ParseResult {
    // STRM frames carry baidu_std's header under their own magic.
    let (meta_buf, payload) = match cut_framed(src, MAGIC, max_body) {
        Framed::Cut { meta, body } => (meta, body),
        Framed::NotEnoughData => return ParseResult::NotEnoughData,
        Framed::OtherMagic => return ParseResult::NotMine,
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
    match StreamFrameMeta::decode(meta_buf) {
        Ok(meta) => ParseResult::Complete(StreamFrame { meta, payload }),
        Err(e) => ParseResult::Error(ParseError::BadMeta(e.to_string())),
    }
}

/// Appends one frame to `out`: header, `meta` (presence kept), then
/// `payload` by reference. The caller keeps frames under the peer's
/// body limit (64 MiB by default).
pub fn encode(meta: &StreamFrameMeta, payload: &IOBuf, out: &mut IOBuf) {
    let meta_size = meta.encoded_len();
    let body_size = meta_size + payload.len();
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[4..8].copy_from_slice(&(body_size as u32).to_be_bytes());
    header[8..].copy_from_slice(&(meta_size as u32).to_be_bytes());
    {
        let mut app = IOBufAppender::new(out);
        app.append(&header);
        meta.encode_raw(&mut app);
    }
    out.append_buf(payload);
}

/// Appends the DATA frames of one message from `source` to `stream`:
/// segments of at most `max_segment` bytes, all but the last with
/// `has_continuation` (bRPC's `stream_write_max_segment_size`).
pub fn encode_message(
    stream: i64,
    source: i64,
    message: &IOBuf,
    max_segment: usize,
    out: &mut IOBuf,
) {
    let max_segment = max_segment.max(1);
    if message.len() <= max_segment {
        encode(&StreamFrameMeta::data(stream, source, false), message, out);
        return;
    }
    let mut rest = message.clone();
    while !rest.is_empty() {
        let seg = rest.split_to(rest.len().min(max_segment));
        let more = !rest.is_empty();
        encode(&StreamFrameMeta::data(stream, source, more), &seg, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_incomplete_and_malformed() {
        let mut out = IOBuf::new();
        encode(
            &StreamFrameMeta::data(146, 0, false),
            &IOBuf::from("0123456789"),
            &mut out,
        );
        let full = out.to_vec();
        for cut in 0..full.len() {
            let mut b = IOBuf::from(&full[..cut]);
            assert!(matches!(parse(&mut b, 1 << 20), ParseResult::NotEnoughData));
            assert_eq!(b.len(), cut);
        }
        let mut b = IOBuf::from(&full[..]);
        let ParseResult::Complete(f) = parse(&mut b, 1 << 20) else {
            panic!()
        };
        assert_eq!(f.meta, StreamFrameMeta::data(146, 0, false));
        assert_eq!(f.payload, "0123456789");
        assert!(matches!(
            parse(&mut IOBuf::from("PRPC"), 100),
            ParseResult::NotMine
        ));
        let mut big = b"STRM".to_vec();
        big.extend_from_slice(&101u32.to_be_bytes());
        big.extend_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            parse(&mut IOBuf::from(&big[..]), 100),
            ParseResult::Error(ParseError::BodyTooLarge { .. })
        ));
    }

    #[test]
    fn segments_carry_continuation() {
        let mut out = IOBuf::new();
        encode_message(
            0,
            0,
            &IOBuf::from("abcdefghijklmnopqrstuvwxyz"),
            10,
            &mut out,
        );
        let mut sizes = Vec::new();
        while let ParseResult::Complete(f) = parse(&mut out, 100) {
            sizes.push((f.payload.len(), f.meta.has_continuation));
        }
        assert_eq!(
            sizes,
            [(10, Some(true)), (10, Some(true)), (6, Some(false))]
        );
    }
}
