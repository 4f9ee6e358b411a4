//! [`Channel`]: the client side (skeleton; filled in below).

use std::net::SocketAddr;

use fibrpc_iobuf::IOBuf;

use crate::{Controller, RpcError};

/// A client of one server.
#[derive(Clone)]
pub struct Channel {
    _addr: SocketAddr,
}

impl Channel {
    /// Calls `service.method` with a protobuf request and waits.
    pub fn call<Req, Resp>(
        &self,
        service: &'static str,
        method: &'static str,
        cntl: &mut Controller,
        request: &Req,
    ) -> Result<Resp, RpcError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let _ = (service, method, cntl, request);
        todo!()
    }

    /// Starts the call and returns; `done` runs once with the outcome.
    pub fn call_async<Req, Resp>(
        &self,
        service: &'static str,
        method: &'static str,
        cntl: Controller,
        request: &Req,
        done: impl FnOnce(Controller, Result<Resp, RpcError>) + Send + 'static,
    ) where
        Req: prost::Message,
        Resp: prost::Message + Default + Send + 'static,
    {
        let _ = (service, method, cntl, request, done);
        todo!()
    }

    /// Calls with a serialized request and returns the serialized response.
    pub fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        let _ = (service, method, cntl, request);
        todo!()
    }
}
