//! What a STRM frame does to its stream, in the connection's reader (in
//! input order, never blocking): bRPC's `ParseStreamingMessage` and
//! `Stream::OnReceived`.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::frame::{encode, StreamFrame};
use super::meta::{FrameType, StreamFrameMeta};
use super::registry;
use super::stream::{Arrival, Phase, StreamInner};
use crate::protocol::baidu_std;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Handles one frame. Returns the call's response when the frame
/// completes a client's first message (it is the baidu_std response).
pub(super) fn on_frame(sock: &Arc<Socket>, frame: StreamFrame) -> Option<baidu_std::Frame> {
    let StreamFrame { meta, payload } = frame;
    let kind = meta.kind();
    // Streams are found process-wide, but a frame may touch only the
    // streams of the connection it came on. A stream closing right now
    // (still listed) is gone for the peer already, as bRPC's would be.
    let found = registry::get(meta.stream_id).filter(|s| {
        let st = s.lock();
        st.phase != Phase::Closed && st.sock.as_ref().is_some_and(|own| own.id() == sock.id())
    });
    let Some(s) = found else {
        unknown_stream(sock, &meta);
        return None;
    };
    match kind {
        FrameType::Data => match s.on_data(sock, payload, meta.has_continuation()) {
            Arrival::Done => None,
            Arrival::Response(msg) => super::call::on_response(&s, sock, msg),
            Arrival::Violation(why) => {
                violation(sock, &s, why);
                None
            }
        },
        FrameType::Feedback => {
            s.on_feedback(meta.feedback.as_ref().map_or(0, |f| f.consumed_size()));
            None
        }
        FrameType::Close => {
            s.finish(None, true);
            None
        }
        FrameType::Rst => {
            s.finish(
                Some(RpcError::new(
                    libc::ECONNRESET,
                    format!("the stream was reset by {}", sock.remote_side()),
                )),
                true,
            );
            None
        }
        // bRPC ignores frames of no known type.
        FrameType::Unknown => None,
    }
}

/// A frame for no stream of this connection: bRPC answers anything but
/// FEEDBACK with RST to its source, if it has one (the peer's CLOSE
/// answering ours lands here after every normal close).
fn unknown_stream(sock: &Arc<Socket>, meta: &StreamFrameMeta) {
    let kind = meta.kind();
    if kind == FrameType::Data && crate::flags::log_connection_errors() {
        tracing::warn!(
            peer = %sock.remote_side(),
            stream = meta.stream_id,
            "a stream DATA frame for an unknown stream; answered with RST"
        );
    } else {
        tracing::debug!(
            peer = %sock.remote_side(),
            stream = meta.stream_id,
            kind = ?kind,
            "a stream frame for an unknown stream"
        );
    }
    if kind == FrameType::Feedback {
        return;
    }
    if let Some(source) = meta.source_stream_id {
        send_rst(sock, source);
    }
}

/// The peer broke a stream's rules: the stream fails, and the peer's
/// stream is reset. The connection and its other streams go on.
fn violation(sock: &Arc<Socket>, s: &Arc<StreamInner>, why: String) {
    tracing::warn!(
        peer = %sock.remote_side(),
        stream = s.id(),
        reason = %why,
        "resetting a stream: the peer broke its flow control"
    );
    let remote = s.lock().remote_id;
    s.fail(RpcError::new(errno::EOVERCROWDED, why));
    if remote != -1 {
        send_rst(sock, remote);
    }
}

/// Queues `RST{stream_id}` on `sock`.
pub(super) fn send_rst(sock: &Arc<Socket>, stream_id: i64) {
    let mut out = IOBuf::new();
    encode(&StreamFrameMeta::rst(stream_id), &IOBuf::new(), &mut out);
    let _ = sock.write(out);
}
