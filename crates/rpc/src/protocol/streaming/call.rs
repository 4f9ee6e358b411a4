//! Opening streams with a baidu_std call: the client's
//! `RpcMeta.stream_settings`, the server's answer wrapped in a DATA frame
//! to the client's first stream, and the client's reading of it (bRPC's
//! `StreamCreate`, `StreamAccept`, `SendRpcResponse` and
//! `HandleStreamConnection`).

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::frame::encode;
use super::meta::StreamFrameMeta;
use super::receive::send_rst;
use super::Stream;
use crate::protocol::baidu_std::{self, RpcMeta, StreamSettings};
use crate::socket::Socket;
use crate::{errno, RpcError};

/// The streams of one call, kept in its [`crate::Controller`].
#[derive(Default)]
pub(crate) struct CallStreams {
    /// Client: the streams created for the call, the first one first.
    pub created: Vec<Stream>,
    /// Server: what the request asks for, and the connection it came on.
    pub requested: Option<Requested>,
    /// Server: the streams the handler accepted.
    pub accepted: Vec<Stream>,
}

/// A request's streams, as the server saw them.
pub(crate) struct Requested {
    pub sock: Arc<Socket>,
    pub settings: StreamSettings,
}

impl std::fmt::Debug for CallStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallStreams")
            .field("created", &self.created)
            .field("requested", &self.requested.as_ref().map(|r| &r.settings))
            .field("accepted", &self.accepted)
            .finish()
    }
}

/// What a side's streams tell the peer: the ids, whether this side wants
/// FEEDBACK (it has a window) and whether it reads (bRPC's
/// `FillSettings`). The first stream's options speak for all.
fn settings_of(streams: &[Stream]) -> Option<StreamSettings> {
    let first = streams.first()?;
    Some(StreamSettings {
        stream_id: first.id(),
        need_feedback: Some(first.inner.options.max_buf_size > 0),
        writable: Some(first.inner.reads_input()),
        extra_stream_ids: streams[1..].iter().map(Stream::id).collect(),
    })
}

impl CallStreams {
    /// Client: the request's `stream_settings`.
    pub(crate) fn request_settings(&self) -> Option<StreamSettings> {
        settings_of(&self.created)
    }

    /// Client: whether the call opens streams (then it is neither
    /// retried nor backed up: a stream is opened once).
    pub(crate) fn opens_streams(&self) -> bool {
        !self.created.is_empty()
    }

    /// Client: the request goes out on `conn`; the streams travel there
    /// too, and the first one waits for the response.
    pub(crate) fn bind(&self, conn: &Arc<Socket>) {
        let Some((first, rest)) = self.created.split_first() else {
            return;
        };
        {
            let mut st = first.inner.lock();
            st.awaits_response = true;
            st.siblings = rest.to_vec();
        }
        for s in &self.created {
            s.inner.bind(conn);
        }
    }

    /// Client: the call ended with `r`. A failed call fails its streams
    /// (CLOSE goes to those already connected); a successful one whose
    /// streams the server did not accept fails with `EREQUEST`.
    pub(crate) fn call_ended(&self, r: Result<(), &RpcError>) -> Result<(), RpcError> {
        match r {
            Err(e) => {
                for s in &self.created {
                    s.inner.finish(Some(e.clone()), true);
                }
                Ok(())
            }
            Ok(()) => {
                // Closed already is fine (the server may close at once);
                // never connected is not.
                if self.created.iter().any(|s| !s.inner.opened()) {
                    let e = not_accepted();
                    for s in &self.created {
                        s.inner.fail(e.clone());
                    }
                    return Err(e);
                }
                Ok(())
            }
        }
    }
}

/// A controller dropped with streams whose call was never made: they
/// could never connect, and would stay listed forever.
impl Drop for CallStreams {
    fn drop(&mut self) {
        for s in &self.created {
            let unsent = {
                let st = s.inner.lock();
                st.sock.is_none() && st.phase == super::stream::Phase::Pending
            };
            if unsent {
                s.inner.fail(RpcError::new(
                    libc::EINVAL,
                    "the controller was dropped before a call opened the stream",
                ));
            }
        }
    }
}

fn not_accepted() -> RpcError {
    RpcError::new(errno::EREQUEST, "The server didn't accept the stream")
}

/// Client, in the reader: the first message of the call's first stream
/// arrived; it is the baidu_std response. Connects the call's streams
/// (or fails them), and returns the response for its call.
pub(super) fn on_response(
    first: &Arc<super::stream::StreamInner>,
    sock: &Arc<Socket>,
    mut msg: IOBuf,
) -> Option<baidu_std::Frame> {
    let siblings = std::mem::take(&mut first.lock().siblings);
    let first_handle = Stream {
        inner: first.clone(),
    };
    let all: Vec<Stream> = std::iter::once(first_handle).chain(siblings).collect();
    let frame = match baidu_std::parse(&mut msg, sock.max_body_size()) {
        baidu_std::ParseResult::Complete(f) if msg.is_empty() => f,
        _ => {
            tracing::warn!(
                peer = %sock.remote_side(),
                stream = first.id(),
                "a stream's first message is not a baidu_std response; failing the stream"
            );
            let e = RpcError::new(errno::ERESPONSE, "bad response in the stream's first frame");
            for s in &all {
                s.inner.fail(e.clone());
            }
            return None;
        }
    };
    let error = frame
        .meta
        .response
        .as_ref()
        .map(|r| (r.error_code(), r.error_text().to_owned()))
        .filter(|(code, _)| *code != 0);
    match (&frame.meta.stream_settings, error) {
        (Some(peer), None) => {
            let nf = peer.need_feedback();
            let w = peer.writable();
            let peer_ids =
                std::iter::once(peer.stream_id).chain(peer.extra_stream_ids.iter().copied());
            let mut peer_ids = peer_ids.fuse();
            for s in &all {
                match peer_ids.next() {
                    Some(rid) => {
                        s.inner.set_remote(rid, nf, w);
                        s.inner.connect();
                    }
                    None => s.inner.fail(not_accepted()),
                }
            }
        }
        (settings, error) => {
            if let Some(peer) = settings {
                // Accepted, yet the call failed: the server's streams go.
                send_rst(sock, peer.stream_id);
                for &id in &peer.extra_stream_ids {
                    send_rst(sock, id);
                }
            }
            let e = match error {
                Some((code, text)) => RpcError::new(code, text),
                None => not_accepted(),
            };
            for s in &all {
                s.inner.fail(e.clone());
            }
        }
    }
    Some(frame)
}

/// Server: writes the response of a request that carried
/// `stream_settings`, as bRPC does: the whole baidu_std frame inside one
/// DATA frame to the client's first stream, from the first accepted
/// stream (or -1), with the accepted streams' settings in its meta when
/// the call succeeded. Then the accepted streams connect (what their
/// handler wrote goes out after the response), or fail with the call.
pub(crate) fn send_response(
    sock: &Arc<Socket>,
    requested: &StreamSettings,
    accepted: Vec<Stream>,
    mut meta: RpcMeta,
    payload: &IOBuf,
    attachment: &IOBuf,
) {
    let ok = meta.response.as_ref().is_some_and(|r| r.error_code() == 0);
    if ok {
        meta.stream_settings = settings_of(&accepted);
    }
    // Presence as bRPC writes a response, so the frame matches its byte
    // for byte.
    meta.compress_type.get_or_insert(0);
    meta.content_type.get_or_insert(0);
    meta.checksum_type.get_or_insert(0);
    meta.checksum_value.get_or_insert_with(Vec::new);
    let mut inner = IOBuf::new();
    let written = baidu_std::encode(&meta, payload, attachment, &mut inner)
        .map_err(|e| RpcError::new(errno::EINTERNAL, format!("cannot encode a response: {e}")))
        .and_then(|()| {
            let source = match (ok, accepted.first()) {
                (true, Some(s)) => s.id(),
                _ => -1,
            };
            let mut out = IOBuf::new();
            encode(
                &StreamFrameMeta::data(requested.stream_id, source, false),
                &inner,
                &mut out,
            );
            sock.write(out)
        });
    for s in accepted {
        match (&written, ok) {
            (Ok(()), true) => s.inner.connect(),
            (Err(e), _) => s.inner.fail(e.clone()),
            (Ok(()), false) => s.inner.fail(RpcError::new(
                errno::EREQUEST,
                "the call that opened the stream failed",
            )),
        }
    }
}
