//! [`Stream`]'s API: create (client), accept (server), write, read,
//! close (bRPC's `StreamCreate`, `StreamAccept`, `StreamWrite`,
//! `StreamWait`, `StreamClose`).

use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use super::call::Requested;
use super::stream::{Phase, StreamInner, StreamStats};
use super::{Stream, StreamOptions};
use crate::{Controller, RpcError};

impl Stream {
    /// Client: creates a stream that the next call made with `cntl` opens
    /// (bRPC's `StreamCreate(&stream, cntl, &options)`). Call it again on
    /// the same controller to open several streams with one call; the
    /// first one's options say, for all of them, whether this side wants
    /// feedback and reads.
    ///
    /// The stream is usable once the call returned OK: writes made before
    /// are held and go out then. The call is not retried and sends no
    /// backup request, and must go over baidu_std on a single or pooled
    /// connection (a short connection closes with the call, and the
    /// stream with it). If the call fails, or the server did not accept
    /// the stream (the call then fails with `EREQUEST`), the stream
    /// fails.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), fibrpc::RpcError> {
    /// use fibrpc::protocol::streaming::{Stream, StreamOptions};
    /// use fibrpc::Controller;
    /// use fibrpc_example::{EchoRequest, EchoServiceClient};
    ///
    /// let client = EchoServiceClient::new(fibrpc::connect("127.0.0.1:8001")?);
    /// let mut cntl = Controller::new();
    /// let stream = Stream::create(&mut cntl, StreamOptions::default());
    /// let request = EchoRequest { message: "open a stream".into() };
    /// client.echo(&mut cntl, &request)?;
    /// stream.write("hello".into())?;
    /// stream.close();
    /// # Ok(())
    /// # }
    /// ```
    pub fn create(cntl: &mut Controller, options: StreamOptions) -> Stream {
        let s = Stream {
            inner: StreamInner::new(options),
        };
        cntl.streams.created.push(s.clone());
        s
    }

    /// Server, in a handler: accepts the stream the request carries
    /// (bRPC's `StreamAccept(&stream, cntl, &options)`); with several,
    /// the first (see [`accept_all`](Self::accept_all)). The stream
    /// connects once the response is written; what the handler writes
    /// before goes out after the response. If the call fails, the stream
    /// fails. Fails if the request carries no stream or it was accepted
    /// already.
    pub fn accept(cntl: &mut Controller, options: StreamOptions) -> Result<Stream, RpcError> {
        Ok(Self::accept_all(cntl, options)?.swap_remove(0))
    }

    /// Server: accepts every stream the request carries, in the client's
    /// order, with the same options.
    pub fn accept_all(
        cntl: &mut Controller,
        options: StreamOptions,
    ) -> Result<Vec<Stream>, RpcError> {
        if !cntl.streams.accepted.is_empty() {
            return Err(RpcError::new(
                libc::EINVAL,
                "the streams were accepted already",
            ));
        }
        let Some(Requested { sock, settings }) = cntl.streams.requested.take() else {
            return Err(RpcError::new(libc::EINVAL, "the request carries no stream"));
        };
        let nf = settings.need_feedback();
        let w = settings.writable();
        let ids =
            std::iter::once(settings.stream_id).chain(settings.extra_stream_ids.iter().copied());
        let mut streams = Vec::new();
        for rid in ids {
            let s = Stream {
                inner: StreamInner::new(options.clone()),
            };
            s.inner.set_remote(rid, nf, w);
            s.inner.bind(&sock);
            streams.push(s);
        }
        cntl.streams.accepted = streams.clone();
        // The response still needs the client's first stream id.
        cntl.streams.requested = Some(Requested { sock, settings });
        Ok(streams)
    }

    /// This side's stream id (what the peer addresses its frames to).
    pub fn id(&self) -> i64 {
        self.inner.id()
    }

    /// The peer's stream id, -1 until the stream connected.
    pub fn remote_id(&self) -> i64 {
        self.inner.lock().remote_id
    }

    /// Writes one message (bRPC's `StreamWrite`, waiting as
    /// `StreamWait` does). Suspends the calling fiber (or blocks the
    /// thread) while the window is full: while `max_buf_size` bytes
    /// written are not yet reported consumed by the peer. Fails once the
    /// stream is closed (`EINVAL`) or failed (its error), or with `EBADF`
    /// if the peer does not read this stream.
    pub fn write(&self, message: IOBuf) -> Result<(), RpcError> {
        self.inner.write(message, true, None)
    }

    /// [`write`](Self::write), waiting at most until `deadline`
    /// (`ETIMEDOUT`).
    pub fn write_until(&self, message: IOBuf, deadline: Instant) -> Result<(), RpcError> {
        self.inner.write(message, true, Some(deadline))
    }

    /// Writes one message if the window has room, else fails at once
    /// with `EAGAIN` (bRPC's `StreamWrite`).
    pub fn try_write(&self, message: IOBuf) -> Result<(), RpcError> {
        self.inner.write(message, false, None)
    }

    /// Waits until a write would not wait, the stream closed, or
    /// `timeout` passed (bRPC's `StreamWait`).
    pub fn wait_writable(&self, timeout: Option<Duration>) -> Result<(), RpcError> {
        self.inner
            .wait_writable(timeout.map(|t| Instant::now() + t))
    }

    /// The next message ([`StreamInput::Recv`](super::StreamInput::Recv)
    /// streams): suspends until one arrives. `Ok(None)`: the stream was
    /// closed (by either side) and every message was read. `Err`: it
    /// failed (reset, its connection broke), or, once per idle period
    /// with an `idle_timeout`, `ETIMEDOUT` (the stream stays open).
    pub fn recv(&self) -> Result<Option<IOBuf>, RpcError> {
        self.inner.recv(None)
    }

    /// [`recv`](Self::recv), waiting at most `timeout`
    /// (`ERPCTIMEDOUT`).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<IOBuf>, RpcError> {
        self.inner.recv(Some(Instant::now() + timeout))
    }

    /// Closes the stream (bRPC's `StreamClose`): the peer sees the end
    /// after the messages written before; later writes fail. Does
    /// nothing if it is closed already.
    pub fn close(&self) {
        self.inner.finish(None, true);
    }

    /// Whether the stream is closed (by either side, or failed).
    pub fn is_closed(&self) -> bool {
        self.inner.phase() == Phase::Closed
    }

    /// Whether the stream is connected: its call succeeded and it is not
    /// closed.
    pub fn is_connected(&self) -> bool {
        self.inner.phase() == Phase::Connected
    }

    /// The stream's counters.
    pub fn stats(&self) -> StreamStats {
        self.inner.stats()
    }
}
