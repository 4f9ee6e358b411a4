//! Server streaming over gRPC-Web, the one streaming kind a browser can
//! call (its `fetch` cannot stream a request body): the request is read
//! whole, the handler gets a [`ServerStream`] whose `send` writes each
//! message to the HTTP response at once — an HTTP/1.1 chunk or HTTP/2
//! DATA, a progressive response — and whose end writes the trailer
//! frame. In text mode every piece is base64 on its own (padded), as
//! grpc-web-text's streaming responses are.

use std::sync::Arc;
use std::time::Instant;

use fibrpc_fiber::sync::Mutex;
use fibrpc_iobuf::IOBuf;

use super::server_stream::StreamLimits;
use super::web::{WebReply, CONTENT_TYPE_BINARY, CONTENT_TYPE_TEXT};
use super::{deadline_of, fail_with, GrpcStatus, ServerStream};
use crate::protocol::http::{ProgressiveWriter, SendResponse};
use crate::server::{InflightGuard, ServerContext};
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Where a gRPC-Web call's responses go (object-safe, so that
/// [`ServerStream`] needs no parameter for it).
pub(crate) trait WebSink: Send + Sync {
    /// Writes one length-prefixed message; waits while the client holds
    /// back too much of the response.
    fn send(&self, framed: IOBuf, deadline: Option<Instant>) -> Result<(), RpcError>;
    /// Ends the response with the trailer frame of `status` (or, if
    /// nothing was sent, answers the whole call with it).
    fn finish(&self, status: GrpcStatus, message: Option<String>);
}

enum State<O> {
    /// Nothing sent: the response is not started.
    Idle(WebReply<O>),
    /// The head is out; messages follow.
    Streaming {
        writer: Box<dyn ProgressiveWriter>,
        text: bool,
    },
    /// The trailers are out.
    Done,
}

/// A gRPC-Web call's response, started by its first message.
struct WebStream<O> {
    /// A fiber mutex: `send` may wait for the client while it holds it.
    state: Mutex<State<O>>,
    /// Bytes of the response held for the client before `send` waits.
    buffer: usize,
}

impl<O: SendResponse> WebSink for WebStream<O> {
    fn send(&self, framed: IOBuf, deadline: Option<Instant>) -> Result<(), RpcError> {
        let mut st = self.state.lock();
        if let State::Idle(_) = &*st {
            let State::Idle(reply) = std::mem::replace(&mut *st, State::Done) else {
                unreachable!("matched above");
            };
            let text = reply.is_text();
            let (out, head) = reply.into_head(if text {
                CONTENT_TYPE_TEXT
            } else {
                CONTENT_TYPE_BINARY
            });
            *st = State::Streaming {
                writer: out.progressive(&head, self.buffer),
                text,
            };
        }
        match &*st {
            State::Streaming { writer, text } => writer.write(encode(framed, *text), deadline),
            _ => Err(RpcError::new(
                errno::EINTERNAL,
                "send on a gRPC-Web call that already finished",
            )),
        }
    }

    fn finish(&self, status: GrpcStatus, message: Option<String>) {
        let mut st = self.state.lock();
        match std::mem::replace(&mut *st, State::Done) {
            State::Idle(reply) => reply.send(None, status, message),
            State::Streaming { writer, text } => {
                let trailers = super::web::trailer_frame(status, message.as_deref());
                writer.finish(encode(trailers, text));
            }
            State::Done => {}
        }
    }
}

/// A piece of the body as the mode carries it: base64 of it alone in
/// text mode.
fn encode(piece: IOBuf, text: bool) -> IOBuf {
    if !text {
        return piece;
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(piece.to_vec());
    IOBuf::from(b64.into_bytes())
}

/// Serves a server-streaming method (`service`'s method `index`) called
/// over gRPC-Web: admits the call, then runs its handler in a fiber of
/// its own (the HTTP/1.1 reader must go on noticing a client that
/// leaves) and ends the response with the handler's status.
pub(super) fn serve<O: SendResponse>(
    ctx: &ServerContext,
    sock: &Arc<Socket>,
    req: Box<http::Request<IOBuf>>,
    reply: WebReply<O>,
    (service, index): (&'static str, usize),
) {
    let received = Instant::now();
    let guard = InflightGuard::enter(ctx);
    let (parts, body) = (*req).into_parts();
    let mut cntl = ctx.new_controller(sock);
    cntl.protocol = "grpc";
    cntl.deadline = deadline_of(&parts.headers, received);
    if let Err(e) = guard.admit() {
        fail_with(reply, (e, None));
        return;
    }
    let options = ctx.options();
    let buffer = options.h2.stream_send_buffer as usize;
    let limits = StreamLimits {
        max_message: sock.max_body_size(),
        max_decompressed: options.max_decompressed_size,
        send_buffer: buffer,
        encoding: parts
            .headers
            .get("grpc-encoding")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|e| e != "identity"),
    };
    let sink = Box::new(WebStream {
        state: Mutex::new(State::Idle(reply)),
        buffer,
    });
    let stream = ServerStream::web(sock.clone(), body, cntl.deadline, limits, sink);
    let guard = guard.into_owned();
    let ctx = ctx.clone();
    let s = stream.clone();
    let spawned = fibrpc_fiber::Builder::new().spawn(move || {
        let mut cntl = cntl;
        let r = ctx.dispatch_streaming(service, index, &mut cntl, s.clone(), received);
        s.finish(r);
        drop(guard);
    });
    if spawned.is_err() {
        stream.finish(Err(RpcError::new(
            errno::EINTERNAL,
            "no fiber could start for the streaming call",
        )));
    }
}
