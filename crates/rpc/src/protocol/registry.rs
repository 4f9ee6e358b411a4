//! The protocols of a server, type-erased, and detection: which protocol
//! a connection's input belongs to.

use std::any::Any;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;
use smallbox::space::S8;
use smallbox::{smallbox, SmallBox};

use super::{Parsed, Protocol, ServerContext};
use crate::socket::{Cut, Socket};
use crate::RpcError;

/// A message of any protocol, type-erased: inline when it fits in eight
/// words (an HTTP request, whose large parts the parser boxes already),
/// else boxed (a baidu_std frame: one allocation, cheaper than moving
/// ~420 bytes by value from the parser to its fiber several times).
type AnyMessage = SmallBox<dyn Any + Send, S8>;

/// A message cut on a server connection, of the protocol at `protocol`
/// in its server's list.
pub(crate) struct ServerMessage {
    protocol: u8,
    ends_input: bool,
    msg: AnyMessage,
    /// The first message of a connection its protocol's `verify`
    /// refused: answered with this, then the connection closes. Boxed:
    /// it is rare, and every message carries the field.
    rejected: Option<Box<RpcError>>,
    /// When it was cut, if rpcz was on (a traced request's first
    /// timestamp).
    received: Option<std::time::Instant>,
}

impl ServerMessage {
    /// Whether the connection reads nothing after this message.
    pub(crate) fn ends_input(&self) -> bool {
        self.ends_input
    }
}

/// [`Protocol`] with its message type erased, so a server can hold a list
/// of different protocols.
trait DynProtocol: Send + Sync {
    fn name(&self) -> &'static str;
    fn parse(&self, input: &mut IOBuf, conn: &Arc<Socket>, eof: bool)
        -> Parsed<(AnyMessage, bool)>;
    fn verify(
        &self,
        msg: &(dyn Any + Send),
        conn: &Arc<Socket>,
        server: &ServerContext,
    ) -> Result<(), RpcError>;
    fn process_request(&self, msg: AnyMessage, conn: &Arc<Socket>, server: &ServerContext);
    fn reject(&self, msg: AnyMessage, conn: &Arc<Socket>, server: &ServerContext, e: RpcError);
    fn on_server_stop(&self, conn: &Arc<Socket>);
    fn describe_connection(&self, conn: &Socket) -> Vec<(&'static str, String)>;
}

impl<P: Protocol> DynProtocol for P {
    fn name(&self) -> &'static str {
        Protocol::name(self)
    }

    fn parse(
        &self,
        input: &mut IOBuf,
        conn: &Arc<Socket>,
        eof: bool,
    ) -> Parsed<(AnyMessage, bool)> {
        match Protocol::parse(self, input, conn, eof) {
            Parsed::Message(m) => {
                let ends = self.ends_input(&m);
                Parsed::Message((smallbox!(m), ends))
            }
            Parsed::NeedMore => Parsed::NeedMore,
            Parsed::NotMine => Parsed::NotMine,
            Parsed::Consumed => Parsed::Consumed,
            Parsed::Bad(why) => Parsed::Bad(why),
        }
    }

    fn on_server_stop(&self, conn: &Arc<Socket>) {
        Protocol::on_server_stop(self, conn);
    }

    fn describe_connection(&self, conn: &Socket) -> Vec<(&'static str, String)> {
        Protocol::describe_connection(self, conn)
    }

    fn verify(
        &self,
        msg: &(dyn Any + Send),
        conn: &Arc<Socket>,
        server: &ServerContext,
    ) -> Result<(), RpcError> {
        match msg.downcast_ref::<P::Message>() {
            Some(m) => Protocol::verify(self, m, conn, server),
            None => Ok(()),
        }
    }

    fn process_request(&self, msg: AnyMessage, conn: &Arc<Socket>, server: &ServerContext) {
        // The box came from this protocol's own `parse`.
        if let Ok(m) = msg.downcast::<P::Message>() {
            Protocol::process_request(self, m.into_inner(), conn, server);
        }
    }
    fn reject(&self, msg: AnyMessage, conn: &Arc<Socket>, server: &ServerContext, e: RpcError) {
        match msg.downcast::<P::Message>() {
            Ok(m) => Protocol::reject(self, m.into_inner(), conn, server, e),
            Err(_) => conn.set_failed(e),
        }
    }
}

/// The protocols a server accepts, in detection order.
#[derive(Clone)]
pub(crate) struct ProtocolList {
    protocols: Vec<Arc<dyn DynProtocol>>,
}

impl std::fmt::Debug for ProtocolList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.protocols.iter().map(|p| p.name()))
            .finish()
    }
}

impl ProtocolList {
    /// What every server speaks: baidu_std, bRPC's stream frames, then
    /// HTTP/1.1, then HTTP/2 (its preface starts `PRI `, which HTTP/1.1's
    /// parse says is not its own at the second byte, so HTTP/1.1 and
    /// baidu_std connections never try it).
    pub(crate) fn builtin(h2: super::h2::H2Options) -> ProtocolList {
        ProtocolList {
            protocols: vec![
                Arc::new(super::baidu_std::BaiduStd::new()),
                Arc::new(super::streaming::StreamingRpc),
                Arc::new(super::http::HttpServerProtocol),
                Arc::new(super::h2::H2Protocol::new(h2)),
            ],
        }
    }

    /// Adds `p` after the others. Fails past 255 protocols or on a name
    /// that is taken.
    pub(crate) fn push<P: Protocol>(&mut self, p: P) -> Result<(), RpcError> {
        if self.protocols.len() >= usize::from(u8::MAX) {
            return Err(RpcError::new(libc::E2BIG, "too many protocols"));
        }
        if self.protocols.iter().any(|q| q.name() == p.name()) {
            return Err(RpcError::new(
                libc::EEXIST,
                format!("protocol {} added twice", Protocol::name(&p)),
            ));
        }
        self.protocols.push(Arc::new(p));
        Ok(())
    }

    /// The name of the protocol that last matched on `sock`.
    pub(crate) fn name_on(&self, sock: &Socket) -> &'static str {
        let i = usize::from(sock.preferred.load(Ordering::Relaxed));
        self.protocols.get(i).map_or("?", |p| p.name())
    }

    /// What the protocol that last matched on `sock` keeps for it (see
    /// [`Protocol::describe_connection`]).
    pub(crate) fn describe_on(&self, sock: &Socket) -> Vec<(&'static str, String)> {
        let i = usize::from(sock.preferred.load(Ordering::Relaxed));
        self.protocols
            .get(i)
            .map_or_else(Vec::new, |p| p.describe_connection(sock))
    }

    /// Cuts one message, trying the protocol that matched last on this
    /// connection first; the connection's first message is verified.
    pub(crate) fn cut(
        &self,
        sock: &Arc<Socket>,
        input: &mut IOBuf,
        eof: bool,
        server: &ServerContext,
    ) -> Cut<ServerMessage> {
        let n = self.protocols.len();
        let first = usize::from(sock.preferred.load(Ordering::Relaxed)).min(n - 1);
        let order = std::iter::once(first).chain((0..n).filter(|&i| i != first));
        for i in order {
            let p = &self.protocols[i];
            match p.parse(input, sock, eof) {
                Parsed::Message((msg, ends_input)) => {
                    if i != first {
                        sock.preferred.store(i as u8, Ordering::Relaxed);
                    }
                    // Only the reader cuts: a load and a store, no RMW.
                    let mut rejected = None;
                    if !sock.first_cut.load(Ordering::Relaxed) {
                        sock.first_cut.store(true, Ordering::Relaxed);
                        if let Err(e) = p.verify(&*msg, sock, server) {
                            if crate::flags::log_connection_errors() {
                                tracing::warn!(
                                    peer = %sock.remote_side(),
                                    protocol = p.name(),
                                    error = %e,
                                    "refusing a connection: its first message failed verification"
                                );
                            }
                            rejected = Some(Box::new(e));
                        }
                    }
                    return Cut::Message(ServerMessage {
                        protocol: i as u8,
                        // A refused connection reads nothing more.
                        ends_input: ends_input || rejected.is_some(),
                        msg,
                        rejected,
                        received: crate::rpcz::server::cut_time(),
                    });
                }
                Parsed::NeedMore => return Cut::NeedMore,
                // The protocol took frames of its own: try it first on
                // what follows (HTTP/2's frames before its first request
                // look like nothing else's).
                Parsed::Consumed => {
                    if i != first {
                        sock.preferred.store(i as u8, Ordering::Relaxed);
                    }
                    return Cut::Consumed;
                }
                Parsed::NotMine => continue,
                Parsed::Bad(why) => return Cut::Bad(format!("{}: {why}", p.name())),
            }
        }
        Cut::Bad("no protocol recognises the input".into())
    }

    /// Tells the protocol of `sock` (the one that last matched) that the
    /// server stopped accepting.
    pub(crate) fn on_server_stop(&self, sock: &Arc<Socket>) {
        let i = usize::from(sock.preferred.load(Ordering::Relaxed));
        if let Some(p) = self.protocols.get(i) {
            p.on_server_stop(sock);
        }
    }

    /// Processes a message cut by [`cut`](Self::cut).
    pub(crate) fn process(&self, sock: &Arc<Socket>, msg: ServerMessage, server: &ServerContext) {
        if let Some(p) = self.protocols.get(usize::from(msg.protocol)) {
            let _received = crate::rpcz::server::processing(msg.received);
            match msg.rejected {
                None => p.process_request(msg.msg, sock, server),
                Some(e) => p.reject(msg.msg, sock, server, *e),
            }
        }
    }
}
