//! The client's typed streaming calls: [`StreamingChannel`] (the
//! channels that can open them, [`GrpcChannel`](super::GrpcChannel)
//! today) and the handles with protobuf messages a generated stub's
//! streaming methods return.

use std::future::Future;
use std::marker::PhantomData;
use std::time::Instant;

use fibrpc_iobuf::IOBuf;

use super::GrpcStream;
use crate::channel::RpcChannel;
use crate::{codec, errno, Controller, RpcError};

/// A channel that opens streaming calls (gRPC's server streaming,
/// client streaming and bidirectional). Generated stubs offer their
/// streaming methods only over such a channel: a baidu_std
/// [`Channel`](crate::Channel) cannot carry them, and the compiler says
/// so.
pub trait StreamingChannel: RpcChannel {
    /// Opens a streaming call of `service.method`. With `first`, the
    /// request is that one message and is closed at once (server
    /// streaming); without, the caller sends the messages. `cntl` gives
    /// the deadline, compression and retries of the opening, and gets
    /// its outcome.
    fn open_stream(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        first: Option<IOBuf>,
    ) -> Result<GrpcStream, RpcError>;

    /// A server-streaming call: sends `request`, and returns the
    /// receiver of the responses.
    fn server_streaming<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: &Req,
    ) -> Result<StreamReceiver<Resp>, RpcError>
    where
        Self: Sized,
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let s = self.open_stream(service, method, cntl, Some(codec::encode(request)))?;
        Ok(StreamReceiver::new(s))
    }

    /// A client-streaming call: send the requests, then
    /// [`ClientStreamingCall::finish`] for the one response.
    fn client_streaming<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
    ) -> Result<ClientStreamingCall<Req, Resp>, RpcError>
    where
        Self: Sized,
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let s = self.open_stream(service, method, cntl, None)?;
        Ok(ClientStreamingCall {
            sender: StreamSender::new(s.clone()),
            receiver: StreamReceiver::new(s),
        })
    }

    /// A bidirectional call: requests and responses in any order.
    fn bidi_streaming<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
    ) -> Result<BidiCall<Req, Resp>, RpcError>
    where
        Self: Sized,
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let s = self.open_stream(service, method, cntl, None)?;
        Ok(BidiCall {
            sender: StreamSender::new(s.clone()),
            receiver: StreamReceiver::new(s),
        })
    }
}

/// The sending half of a client-streaming or bidirectional call:
/// requests of type `M`.
#[derive(Debug, Clone)]
pub struct StreamSender<M> {
    stream: GrpcStream,
    _m: PhantomData<fn(M)>,
}

impl<M: prost::Message> StreamSender<M> {
    /// The sender of `stream`.
    pub fn new(stream: GrpcStream) -> Self {
        StreamSender {
            stream,
            _m: PhantomData,
        }
    }

    /// Sends one request (see [`GrpcStream::send`]).
    pub fn send(&self, msg: &M) -> Result<(), RpcError> {
        self.stream.send(codec::encode(msg))
    }

    /// No more requests (see [`GrpcStream::close_send`]). Dropping the
    /// sender does not close: the call goes on until the receiver
    /// is dropped too.
    pub fn close_send(&self) -> Result<(), RpcError> {
        self.stream.close_send()
    }

    /// Resets the call (see [`GrpcStream::cancel`]).
    pub fn cancel(&self) {
        self.stream.cancel()
    }

    /// The untyped stream.
    pub fn raw(&self) -> &GrpcStream {
        &self.stream
    }
}

/// The receiving half of a server-streaming or bidirectional call:
/// responses of type `M`. Also an iterator of them.
#[derive(Debug, Clone)]
pub struct StreamReceiver<M> {
    stream: GrpcStream,
    /// The iterator ended (the end, or an error).
    done: bool,
    _m: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> StreamReceiver<M> {
    /// The receiver of `stream`.
    pub fn new(stream: GrpcStream) -> Self {
        StreamReceiver {
            stream,
            done: false,
            _m: PhantomData,
        }
    }

    /// The next response, waiting for it; `Ok(None)` once the call
    /// ended with status 0 (see [`GrpcStream::recv`]). A message that
    /// does not decode is `ERESPONSE`.
    pub fn recv(&self) -> Result<Option<M>, RpcError> {
        match self.stream.recv()? {
            Some(buf) => codec::decode_response(&buf).map(Some),
            None => Ok(None),
        }
    }

    /// [`recv`](Self::recv) as a `Future` for any executor; polling
    /// never blocks.
    pub fn recv_async(&self) -> impl Future<Output = Result<Option<M>, RpcError>> + Send + 'static
    where
        M: 'static,
    {
        let next = self.stream.recv_async();
        async move {
            match next.await? {
                Some(buf) => codec::decode_response(&buf).map(Some),
                None => Ok(None),
            }
        }
    }

    /// Resets the call (see [`GrpcStream::cancel`]).
    pub fn cancel(&self) {
        self.stream.cancel()
    }

    /// The call's deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.stream.deadline()
    }

    /// The untyped stream.
    pub fn raw(&self) -> &GrpcStream {
        &self.stream
    }
}

impl<M: prost::Message + Default> Iterator for StreamReceiver<M> {
    type Item = Result<M, RpcError>;

    /// [`recv`](Self::recv) as an iterator: ends at the call's end, or
    /// after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.recv().transpose();
        self.done = !matches!(r, Some(Ok(_)));
        r
    }
}

/// A client-streaming call: requests `Req` out, one response `Resp`
/// back after [`finish`](Self::finish).
#[derive(Debug)]
pub struct ClientStreamingCall<Req, Resp> {
    sender: StreamSender<Req>,
    receiver: StreamReceiver<Resp>,
}

impl<Req: prost::Message, Resp: prost::Message + Default> ClientStreamingCall<Req, Resp> {
    /// Sends one request (see [`GrpcStream::send`]).
    pub fn send(&self, msg: &Req) -> Result<(), RpcError> {
        self.sender.send(msg)
    }

    /// Closes the requests and waits for the response and the call's
    /// status.
    pub fn finish(self) -> Result<Resp, RpcError> {
        self.sender.close_send()?;
        let Some(resp) = self.receiver.recv()? else {
            return Err(RpcError::new(
                errno::ERESPONSE,
                "a client-streaming call ended with status 0 and no response",
            ));
        };
        match self.receiver.recv()? {
            None => Ok(resp),
            Some(_) => {
                self.receiver.cancel();
                Err(RpcError::new(
                    errno::ERESPONSE,
                    "a client-streaming call answered more than one response",
                ))
            }
        }
    }

    /// Resets the call (see [`GrpcStream::cancel`]).
    pub fn cancel(&self) {
        self.sender.cancel()
    }

    /// The untyped stream.
    pub fn raw(&self) -> &GrpcStream {
        self.sender.raw()
    }
}

/// A bidirectional call: requests `Req` out, responses `Resp` in, in any
/// order. [`split`](Self::split) gives the halves to two fibers.
#[derive(Debug)]
pub struct BidiCall<Req, Resp> {
    sender: StreamSender<Req>,
    receiver: StreamReceiver<Resp>,
}

impl<Req: prost::Message, Resp: prost::Message + Default> BidiCall<Req, Resp> {
    /// Sends one request (see [`GrpcStream::send`]).
    pub fn send(&self, msg: &Req) -> Result<(), RpcError> {
        self.sender.send(msg)
    }

    /// No more requests (see [`GrpcStream::close_send`]).
    pub fn close_send(&self) -> Result<(), RpcError> {
        self.sender.close_send()
    }

    /// The next response (see [`StreamReceiver::recv`]).
    pub fn recv(&self) -> Result<Option<Resp>, RpcError> {
        self.receiver.recv()
    }

    /// Resets the call (see [`GrpcStream::cancel`]).
    pub fn cancel(&self) {
        self.sender.cancel()
    }

    /// The sending and the receiving half, to use from two fibers (or
    /// threads).
    pub fn split(self) -> (StreamSender<Req>, StreamReceiver<Resp>) {
        (self.sender, self.receiver)
    }

    /// The untyped stream.
    pub fn raw(&self) -> &GrpcStream {
        self.sender.raw()
    }
}
