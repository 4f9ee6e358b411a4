//! The server side's [`InputHandler`]: the server's protocols cut and
//! process the input of every accepted connection.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

use super::ServerContext;
use crate::protocol::ServerMessage;
use crate::socket::{Cut, InputHandler, Socket};
use crate::tls::TlsAccept;

pub(crate) struct ServerInput {
    ctx: ServerContext,
}

impl ServerInput {
    pub(crate) fn new(ctx: ServerContext) -> ServerInput {
        ServerInput { ctx }
    }

    /// The server context of a server connection (`None` for a
    /// client's).
    pub(crate) fn context_of(sock: &Socket) -> Option<&ServerContext> {
        sock.user
            .as_any()
            .downcast_ref::<ServerInput>()
            .map(|s| &s.ctx)
    }
}

impl InputHandler for ServerInput {
    type Message = ServerMessage;

    fn cut(&self, sock: &Arc<Socket>, input: &mut IOBuf, eof: bool) -> Cut<ServerMessage> {
        self.ctx.shared.protocols.cut(sock, input, eof, &self.ctx)
    }

    fn ends_input(&self, msg: &ServerMessage) -> bool {
        msg.ends_input()
    }

    fn process(&self, sock: &Arc<Socket>, msg: ServerMessage) {
        self.ctx.shared.protocols.process(sock, msg, &self.ctx);
    }

    /// Lists the connection before anything of it is read. A socket that
    /// fails later (even while being set up) removes itself in
    /// `on_failed`, which runs after this.
    fn on_created(&self, sock: &Arc<Socket>) {
        self.ctx
            .shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sock.id());
    }

    fn on_failed(&self, sock: &Socket) {
        self.ctx
            .shared
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sock.id());
    }

    fn protocol_name(&self, sock: &Socket) -> &'static str {
        self.ctx.shared.protocols.name_on(sock)
    }

    fn describe(&self, sock: &Socket) -> Vec<(&'static str, String)> {
        self.ctx.shared.protocols.describe_on(sock)
    }

    fn tls_accept(&self) -> Option<&TlsAccept> {
        self.ctx.shared.tls.as_ref()
    }
}
