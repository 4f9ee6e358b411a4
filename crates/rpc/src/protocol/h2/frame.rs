//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, the constants,
//! and writing the frames a server sends.

use fibrpc_iobuf::IOBuf;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The size of a frame header.
pub const HEADER_LEN: usize = 9;

/// The frame size every endpoint must accept (and the largest one
/// fibrpc sends unless the peer allows more).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// The largest `SETTINGS_MAX_FRAME_SIZE` allowed (2^24 - 1).
pub const MAX_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

/// The initial flow-control window (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// The largest flow-control window (2^31 - 1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Frame types.
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY (parsed, ignored: RFC 9113 deprecates its scheme).
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE (a client never sends it).
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    /// DATA, HEADERS: the last frame of the stream from this side.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, CONTINUATION: the header block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS: a pad length byte, and padding at the end.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: 5 bytes of priority before the block.
    pub const PRIORITY: u8 = 0x20;
}

/// Settings identifiers (RFC 9113 §6.5.2).
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE.
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH.
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS.
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE.
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE.
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Error codes (RFC 9113 §7), for RST_STREAM and GOAWAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    /// Graceful shutdown, or a stream closed early on purpose.
    NoError = 0x0,
    /// The peer broke the protocol.
    ProtocolError = 0x1,
    /// Something failed on this side.
    InternalError = 0x2,
    /// The peer broke flow control.
    FlowControlError = 0x3,
    /// A frame on a closed stream.
    StreamClosed = 0x5,
    /// A frame of the wrong size.
    FrameSizeError = 0x6,
    /// The stream was refused before any processing.
    RefusedStream = 0x7,
    /// The stream is no longer needed.
    Cancel = 0x8,
    /// The header compression state is lost.
    CompressionError = 0x9,
    /// The peer behaves in a way that may be abusive (floods).
    EnhanceYourCalm = 0xb,
}

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// The payload's length.
    pub len: u32,
    /// The frame type.
    pub kind: u8,
    /// The flags.
    pub flags: u8,
    /// The stream (0: the connection).
    pub stream: u32,
}

impl FrameHead {
    /// Reads a frame header from the front of `buf` (not consuming it);
    /// `None` if fewer than 9 bytes are there.
    pub fn peek(buf: &IOBuf) -> Option<FrameHead> {
        let mut h = [0u8; HEADER_LEN];
        if buf.copy_to(&mut h, 0) < HEADER_LEN {
            return None;
        }
        Some(FrameHead::parse(&h))
    }

    /// Parses 9 bytes.
    pub fn parse(h: &[u8; HEADER_LEN]) -> FrameHead {
        FrameHead {
            len: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        }
    }

    /// Whether `f` is set.
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Appends a frame header.
pub fn put_head(out: &mut IOBuf, len: usize, kind: u8, flags: u8, stream: u32) {
    let l = (len as u32).to_be_bytes();
    let s = stream.to_be_bytes();
    out.append(&[l[1], l[2], l[3], kind, flags, s[0], s[1], s[2], s[3]]);
}

/// Appends a SETTINGS frame with `values`.
pub fn put_settings(out: &mut IOBuf, values: &[(u16, u32)]) {
    put_head(out, values.len() * 6, kind::SETTINGS, 0, 0);
    for &(id, v) in values {
        out.append(&id.to_be_bytes());
        out.append(&v.to_be_bytes());
    }
}

/// Appends a WINDOW_UPDATE frame.
pub fn put_window_update(out: &mut IOBuf, stream: u32, increment: u32) {
    put_head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.append(&increment.to_be_bytes());
}

/// Appends a RST_STREAM frame.
pub fn put_rst_stream(out: &mut IOBuf, stream: u32, reason: Reason) {
    put_head(out, 4, kind::RST_STREAM, 0, stream);
    out.append(&(reason as u32).to_be_bytes());
}

/// Appends a GOAWAY frame, with `debug` as its debug data.
pub fn put_goaway(out: &mut IOBuf, last_stream: u32, reason: Reason, debug: &[u8]) {
    put_head(out, 8 + debug.len(), kind::GOAWAY, 0, 0);
    out.append(&last_stream.to_be_bytes());
    out.append(&(reason as u32).to_be_bytes());
    out.append(debug);
}

/// Appends a header block as HEADERS and as many CONTINUATION frames as
/// `max_frame` requires.
pub fn put_headers(out: &mut IOBuf, stream: u32, block: &[u8], end_stream: bool, max_frame: usize) {
    let mut chunks = block.chunks(max_frame.max(1)).peekable();
    let mut kind = kind::HEADERS;
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if block.is_empty() {
        put_head(out, 0, kind, flags | flag::END_HEADERS, stream);
        return;
    }
    while let Some(chunk) = chunks.next() {
        if chunks.peek().is_none() {
            flags |= flag::END_HEADERS;
        }
        put_head(out, chunk.len(), kind, flags, stream);
        out.append(chunk);
        kind = kind::CONTINUATION;
        flags = 0;
    }
}
