//! What the write list carries: a message, and for a client's request
//! someone to tell whether the kernel took any of it.
//!
//! A call that failed with a broken connection may be sent again only if
//! the server cannot have executed it, or if running it twice is harmless.
//! The first question is answered here, where the bytes go out: a
//! [`WriteWatcher`] hears, per message, that a `writev` carrying it is
//! about to run and then whether the kernel took any of its bytes. A
//! message still queued when the connection fails, or refused before
//! queueing, is never reported at all.

use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

/// Hears whether a message's bytes reached the kernel (and so, perhaps,
/// the peer). Calls come from the socket's single writer, in pairs: one
/// [`writing`](Self::writing) before a `writev` that includes the
/// message, one [`wrote`](Self::wrote) after it, until the kernel took
/// some byte of it (then no more calls for that message).
pub(crate) trait WriteWatcher: Send + Sync {
    /// A `writev` that may take bytes of the message is about to run.
    fn writing(&self);
    /// That `writev` returned; `took`: it took at least one byte of the
    /// message.
    fn wrote(&self, took: bool);
}

/// One message queued on a socket.
pub(crate) struct Outgoing {
    /// What is left to write.
    pub data: IOBuf,
    /// Set for a client's request.
    watch: Option<Watch>,
}

struct Watch {
    watcher: Arc<dyn WriteWatcher>,
    /// The message's length before anything of it was written.
    whole: usize,
    /// The kernel took some byte already: the watcher knows, and hears
    /// nothing more.
    started: bool,
}

impl Outgoing {
    /// A message nobody watches (a server's response).
    pub(crate) fn plain(data: IOBuf) -> Outgoing {
        Outgoing { data, watch: None }
    }

    /// A message whose first written byte `watcher` hears of.
    pub(crate) fn watched(data: IOBuf, watcher: Arc<dyn WriteWatcher>) -> Outgoing {
        let whole = data.len();
        Outgoing {
            data,
            watch: Some(Watch {
                watcher,
                whole,
                started: false,
            }),
        }
    }

    /// The same message (and watcher) carrying `data` instead: its
    /// encrypted form on a TLS connection.
    pub(crate) fn with_data(self, data: IOBuf) -> Outgoing {
        let watch = self.watch.map(|w| Watch {
            whole: data.len(),
            ..w
        });
        Outgoing { data, watch }
    }

    /// Before a `writev` that includes this message.
    pub(crate) fn before_write(&self) {
        if let Some(w) = &self.watch {
            if !w.started {
                w.watcher.writing();
            }
        }
    }

    /// After that `writev` (whatever it returned), before written
    /// messages leave the queue.
    pub(crate) fn after_write(&mut self) {
        let left = self.data.len();
        if let Some(w) = &mut self.watch {
            if !w.started {
                let took = left < w.whole;
                w.started = took;
                w.watcher.wrote(took);
            }
        }
    }
}
