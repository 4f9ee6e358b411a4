//! Per-connection objects that must hear of the connection's failure:
//! what a protocol multiplexes on a connection that another protocol
//! owns (bRPC's streams live on baidu_std connections). Unlike the one
//! [`Socket::protocol_state`] slot, any number of types can be attached,
//! and each is told when the socket fails.

use std::any::Any;
use std::sync::Arc;

use super::Socket;
use crate::RpcError;

/// An object attached to a connection with [`Socket::extension`].
pub trait SocketExtension: Any + Send + Sync {
    /// The connection failed (once, after which the extension is
    /// dropped by the socket).
    fn on_failed(&self, error: &RpcError);
}

/// The extensions of one socket (behind its lock).
#[derive(Default)]
pub(super) struct Extensions {
    list: Vec<Arc<dyn Any + Send + Sync>>,
    hooks: Vec<Arc<dyn SocketExtension>>,
    /// The socket failed: nothing more is attached.
    closed: bool,
}

impl Socket {
    /// The connection's `T`, created with `T::default()` by the first
    /// call; `None` once the socket failed (every attached extension has
    /// been told then, and a new one would never be).
    pub fn extension<T: SocketExtension + Default>(&self) -> Option<Arc<T>> {
        let mut ext = self.extensions.lock().unwrap_or_else(|e| e.into_inner());
        if ext.closed {
            return None;
        }
        if let Some(t) = ext.list.iter().find_map(|a| a.clone().downcast::<T>().ok()) {
            return Some(t);
        }
        let t = Arc::new(T::default());
        ext.list.push(t.clone());
        ext.hooks.push(t.clone());
        Some(t)
    }

    /// The connection's `T` if one was attached (and the socket did not
    /// fail).
    pub fn find_extension<T: SocketExtension>(&self) -> Option<Arc<T>> {
        let ext = self.extensions.lock().unwrap_or_else(|e| e.into_inner());
        ext.list.iter().find_map(|a| a.clone().downcast::<T>().ok())
    }

    /// Tells every extension that the socket failed, and drops them.
    pub(super) fn fail_extensions(&self, error: &RpcError) {
        let hooks = {
            let mut ext = self.extensions.lock().unwrap_or_else(|e| e.into_inner());
            ext.closed = true;
            ext.list.clear();
            std::mem::take(&mut ext.hooks)
        };
        for h in hooks {
            h.on_failed(error);
        }
    }
}
