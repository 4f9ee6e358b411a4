//! The typed handles a generated service's streaming methods get: a
//! [`ServerStream`] with protobuf messages.

use std::marker::PhantomData;
use std::time::Instant;

use super::ServerStream;
use crate::{codec, RpcError};

/// The server's half of a server-streaming (or bidirectional) call:
/// sends responses of type `M`.
#[derive(Debug, Clone)]
pub struct ServerStreamWriter<M> {
    stream: ServerStream,
    _m: PhantomData<fn(M)>,
}

impl<M: prost::Message> ServerStreamWriter<M> {
    /// The writer of `stream`.
    pub fn new(stream: ServerStream) -> Self {
        ServerStreamWriter {
            stream,
            _m: PhantomData,
        }
    }

    /// Sends one response, waiting while the client's flow-control
    /// window holds back too much (see [`ServerStream::send`]).
    pub fn send(&self, msg: &M) -> Result<(), RpcError> {
        self.stream.send(codec::encode(msg))
    }

    /// Ends the call now with `status` (see [`ServerStream::finish`]);
    /// the handler's return then changes nothing.
    pub fn finish(self, status: Result<(), RpcError>) {
        self.stream.finish(status);
    }

    /// Whether the call can no longer succeed (cancelled, timed out,
    /// broken or finished).
    pub fn is_cancelled(&self) -> bool {
        self.stream.is_cancelled()
    }

    /// The call's deadline (the client's `grpc-timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.stream.deadline()
    }

    /// The untyped stream.
    pub fn raw(&self) -> &ServerStream {
        &self.stream
    }
}

/// The server's half of a client-streaming (or bidirectional) call:
/// receives requests of type `M`. Also an iterator of them.
#[derive(Debug, Clone)]
pub struct ClientStreamReader<M> {
    stream: ServerStream,
    /// The iterator ended (the client's end, or an error).
    done: bool,
    _m: PhantomData<fn() -> M>,
}

impl<M: prost::Message + Default> ClientStreamReader<M> {
    /// The reader of `stream`.
    pub fn new(stream: ServerStream) -> Self {
        ClientStreamReader {
            stream,
            done: false,
            _m: PhantomData,
        }
    }

    /// The next request, waiting for it; `Ok(None)` once the client
    /// finished sending (see [`ServerStream::recv`]). A message that
    /// does not decode is `EREQUEST`.
    pub fn recv(&self) -> Result<Option<M>, RpcError> {
        match self.stream.recv()? {
            Some(buf) => codec::decode_request(&buf).map(Some),
            None => Ok(None),
        }
    }

    /// Whether the call can no longer succeed.
    pub fn is_cancelled(&self) -> bool {
        self.stream.is_cancelled()
    }

    /// The call's deadline (the client's `grpc-timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.stream.deadline()
    }

    /// The untyped stream.
    pub fn raw(&self) -> &ServerStream {
        &self.stream
    }
}

impl<M: prost::Message + Default> Iterator for ClientStreamReader<M> {
    type Item = Result<M, RpcError>;

    /// [`recv`](Self::recv) as an iterator: ends when the client
    /// finished sending, or after the first error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.recv().transpose();
        self.done = !matches!(r, Some(Ok(_)));
        r
    }
}

/// Both halves of a bidirectional call: requests `Req` in, responses
/// `Resp` out. [`split`](Self::split) gives them to two fibers.
#[derive(Debug, Clone)]
pub struct BidiStream<Req, Resp> {
    reader: ClientStreamReader<Req>,
    writer: ServerStreamWriter<Resp>,
}

impl<Req: prost::Message + Default, Resp: prost::Message> BidiStream<Req, Resp> {
    /// The halves of `stream`.
    pub fn new(stream: ServerStream) -> Self {
        BidiStream {
            reader: ClientStreamReader::new(stream.clone()),
            writer: ServerStreamWriter::new(stream),
        }
    }

    /// The next request (see [`ClientStreamReader::recv`]).
    pub fn recv(&self) -> Result<Option<Req>, RpcError> {
        self.reader.recv()
    }

    /// Sends one response (see [`ServerStreamWriter::send`]).
    pub fn send(&self, msg: &Resp) -> Result<(), RpcError> {
        self.writer.send(msg)
    }

    /// Ends the call now with `status` (see [`ServerStream::finish`]).
    pub fn finish(self, status: Result<(), RpcError>) {
        self.writer.finish(status);
    }

    /// Whether the call can no longer succeed.
    pub fn is_cancelled(&self) -> bool {
        self.writer.is_cancelled()
    }

    /// The call's deadline (the client's `grpc-timeout`).
    pub fn deadline(&self) -> Option<Instant> {
        self.writer.deadline()
    }

    /// The reading and the writing half, to use from two fibers.
    pub fn split(self) -> (ClientStreamReader<Req>, ServerStreamWriter<Resp>) {
        (self.reader, self.writer)
    }
}
