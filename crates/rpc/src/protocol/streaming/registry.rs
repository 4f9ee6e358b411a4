//! Where streams are found: a process-wide map from stream id to stream
//! (bRPC addresses streams process-wide too), and per connection the ids
//! of the streams it carries, so that its failure fails them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::stream::StreamInner;
use crate::socket::{Socket, SocketExtension};
use crate::RpcError;

type Map = RwLock<HashMap<i64, Arc<StreamInner>>>;

fn map() -> &'static Map {
    static MAP: OnceLock<Map> = OnceLock::new();
    MAP.get_or_init(Map::default)
}

/// A fresh stream id: unique in the process, never -1 (bRPC's
/// `INVALID_STREAM_ID`).
pub(super) fn next_id() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Makes `s` findable by its id.
pub(super) fn insert(s: Arc<StreamInner>) {
    map()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(s.id(), s);
}

/// The open stream with `id`.
pub(super) fn get(id: i64) -> Option<Arc<StreamInner>> {
    map()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned()
}

/// Forgets the stream with `id` (it closed).
pub(super) fn remove(id: i64) {
    map().write().unwrap_or_else(|e| e.into_inner()).remove(&id);
}

/// Every open stream (a snapshot, for the console).
pub(super) fn all() -> Vec<Arc<StreamInner>> {
    map()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect()
}

/// The streams one connection carries (a [`SocketExtension`]).
#[derive(Default)]
pub struct SocketStreams {
    inner: Mutex<Carried>,
}

#[derive(Default)]
struct Carried {
    ids: HashSet<i64>,
    failed: bool,
}

impl SocketStreams {
    /// How many streams the connection carries now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .len()
    }

    /// Whether the connection carries no stream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn add(&self, id: i64) -> bool {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if c.failed {
            return false;
        }
        c.ids.insert(id);
        true
    }

    fn remove(&self, id: i64) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ids
            .remove(&id);
    }
}

impl SocketExtension for SocketStreams {
    /// Fails the streams in a fiber of its own: the socket may be failing
    /// inside one of their writes (a write error fails it), whose caller
    /// holds that stream's wire lock.
    fn on_failed(&self, error: &RpcError) {
        let ids = {
            let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            c.failed = true;
            std::mem::take(&mut c.ids)
        };
        if ids.is_empty() {
            return;
        }
        let error = error.clone();
        let fail = move || {
            for id in ids {
                if let Some(s) = get(id) {
                    s.fail(error.clone());
                }
            }
        };
        // Should no fiber start, a thread does it (never in place: the
        // caller may hold a stream's lock).
        let job: Arc<Mutex<Option<Job>>> = Arc::new(Mutex::new(Some(Box::new(fail))));
        let lost = job.clone();
        fibrpc_fiber::Builder::new().spawn_or_else(
            move || run_job(&job),
            move || {
                crate::unstarted::run_on_thread("failing a connection's streams", move || {
                    run_job(&lost)
                })
            },
        );
    }
}

type Job = Box<dyn FnOnce() + Send>;

fn run_job(job: &Mutex<Option<Job>>) {
    let f = job.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(f) = f {
        f();
    }
}

/// Lists stream `id` on `sock`; false if the socket failed (the stream
/// must fail: nothing would tell it of the failure).
pub(super) fn attach(sock: &Socket, id: i64) -> bool {
    sock.extension::<SocketStreams>().is_some_and(|s| s.add(id))
}

/// Unlists stream `id` from `sock`.
pub(super) fn detach(sock: &Socket, id: i64) {
    if let Some(s) = sock.find_extension::<SocketStreams>() {
        s.remove(id);
    }
}

/// How many streams `sock` carries.
pub fn streams_on(sock: &Socket) -> usize {
    sock.find_extension::<SocketStreams>()
        .map_or(0, |s| s.len())
}
