//! `StreamFrameMeta` (`brpc/streaming_rpc_meta.proto`), written by hand
//! with the proto2 field numbers. Presence is kept (every optional field
//! is an `Option`) so that frames encode exactly as bRPC writes them:
//! DATA carries fields 1, 2, 3 and 4 (4 even when false), FEEDBACK 1, 2,
//! 3 and 5, CLOSE 1, 2 and 3, RST 1 and 3.

/// The meta of every STRM frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamFrameMeta {
    /// The receiver's stream.
    #[prost(int64, required, tag = "1")]
    pub stream_id: i64,
    /// The sender's stream (absent on RST).
    #[prost(int64, optional, tag = "2")]
    pub source_stream_id: Option<i64>,
    /// One of [`FrameType`], as its number.
    #[prost(int32, optional, tag = "3")]
    pub frame_type: Option<i32>,
    /// DATA: more segments of the same message follow.
    #[prost(bool, optional, tag = "4")]
    pub has_continuation: Option<bool>,
    /// FEEDBACK: what the receiver consumed so far.
    #[prost(message, optional, tag = "5")]
    pub feedback: Option<Feedback>,
}

/// Flow-control feedback: the payload bytes the receiver consumed since
/// the stream was created.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Feedback {
    /// Cumulative consumed payload bytes.
    #[prost(int64, optional, tag = "1")]
    pub consumed_size: Option<i64>,
}

/// What a STRM frame is (bRPC's `FrameType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum FrameType {
    /// Unset or unknown: ignored.
    Unknown = 0,
    /// Abort the stream (the receiver fails it with `ECONNRESET`).
    Rst = 1,
    /// Close the stream normally.
    Close = 2,
    /// A message, or one segment of it.
    Data = 3,
    /// Consumed-bytes feedback that opens the writer's window.
    Feedback = 4,
}

impl FrameType {
    /// The type of a frame's `frame_type` number; unknown numbers are
    /// [`FrameType::Unknown`].
    pub fn from_i32(v: i32) -> FrameType {
        match v {
            1 => FrameType::Rst,
            2 => FrameType::Close,
            3 => FrameType::Data,
            4 => FrameType::Feedback,
            _ => FrameType::Unknown,
        }
    }
}

impl StreamFrameMeta {
    /// The frame's type.
    pub fn kind(&self) -> FrameType {
        FrameType::from_i32(self.frame_type.unwrap_or(0))
    }

    /// The meta of a DATA frame (one segment) from `source` to `stream`.
    pub fn data(stream: i64, source: i64, has_continuation: bool) -> StreamFrameMeta {
        StreamFrameMeta {
            stream_id: stream,
            source_stream_id: Some(source),
            frame_type: Some(FrameType::Data as i32),
            has_continuation: Some(has_continuation),
            feedback: None,
        }
    }

    /// The meta of a FEEDBACK frame saying `consumed` bytes were consumed.
    pub fn feedback(stream: i64, source: i64, consumed: u64) -> StreamFrameMeta {
        StreamFrameMeta {
            stream_id: stream,
            source_stream_id: Some(source),
            frame_type: Some(FrameType::Feedback as i32),
            has_continuation: None,
            feedback: Some(Feedback {
                consumed_size: Some(consumed.min(i64::MAX as u64) as i64),
            }),
        }
    }

    /// The meta of a CLOSE frame.
    pub fn close(stream: i64, source: i64) -> StreamFrameMeta {
        StreamFrameMeta {
            stream_id: stream,
            source_stream_id: Some(source),
            frame_type: Some(FrameType::Close as i32),
            has_continuation: None,
            feedback: None,
        }
    }

    /// The meta of an RST frame (no source: bRPC never answers one).
    pub fn rst(stream: i64) -> StreamFrameMeta {
        StreamFrameMeta {
            stream_id: stream,
            source_stream_id: None,
            frame_type: Some(FrameType::Rst as i32),
            has_continuation: None,
            feedback: None,
        }
    }
}
