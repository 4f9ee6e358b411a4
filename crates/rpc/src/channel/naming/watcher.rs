//! [`NamingWatcher`]: runs a naming service, keeps its last list, tells
//! observers; one per URL shared by all its users.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::{naming_service_for_url, NamingService, ServerNode};
use crate::RpcError;

/// How long [`NamingWatcher::start`] waits for the first list.
const FIRST_LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// A change of the server list, as observers see it (bRPC's
/// `OnAddedServers` and `OnRemovedServers` at once).
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerListChange<'a> {
    /// The whole list now (sorted, without duplicates).
    pub servers: &'a Arc<Vec<ServerNode>>,
    /// Entries new in this list.
    pub added: &'a [ServerNode],
    /// Entries of the previous list that are gone.
    pub removed: &'a [ServerNode],
}

type Observer = Arc<dyn Fn(&ServerListChange<'_>) + Send + Sync>;

/// State shared by the watcher, its thread and its observers' handles.
struct Shared {
    name: String,
    servers: ArcSwap<Vec<ServerNode>>,
    /// Bumped at every change; 0 until the first list.
    version: AtomicU64,
    state: Mutex<State>,
    wake: Condvar,
    /// Held while a list is stored and its observers called, and while an
    /// observer is added: each observer sees every change exactly once,
    /// after the list it started with.
    notify: Mutex<()>,
    observers: Mutex<Vec<(u64, Observer)>>,
    next_observer: AtomicU64,
}

#[derive(Default)]
struct State {
    stopped: bool,
    /// The service returned (with its error, if any).
    finished: Option<Result<(), RpcError>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a [`NamingService`] reports to (bRPC's `NamingServiceActions`).
pub struct NamingServiceActions {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NamingServiceActions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamingServiceActions")
            .field("name", &self.shared.name)
            .finish()
    }
}

impl NamingServiceActions {
    /// Replaces the list with `servers` (bRPC's `ResetServers`): sorted,
    /// duplicates dropped; observers are told if it differs from the last
    /// one.
    pub fn reset_servers(&self, mut servers: Vec<ServerNode>) {
        servers.sort();
        servers.dedup();
        let s = &self.shared;
        let _order = lock(&s.notify);
        let old = s.servers.load_full();
        if s.version.load(Ordering::Acquire) != 0 && *old == servers {
            return;
        }
        let added: Vec<ServerNode> = servers
            .iter()
            .filter(|n| old.binary_search(n).is_err())
            .cloned()
            .collect();
        let removed: Vec<ServerNode> = old
            .iter()
            .filter(|n| servers.binary_search(n).is_err())
            .cloned()
            .collect();
        let servers = Arc::new(servers);
        s.servers.store(servers.clone());
        s.version.fetch_add(1, Ordering::AcqRel);
        tracing::info!(
            naming = %s.name,
            servers = servers.len(),
            added = added.len(),
            removed = removed.len(),
            "server list changed"
        );
        // Wake a start() waiting for the first list; taking its lock first
        // means it either sees the version or is waiting already.
        drop(lock(&s.state));
        s.wake.notify_all();
        let observers: Vec<Observer> = lock(&s.observers).iter().map(|(_, o)| o.clone()).collect();
        let change = ServerListChange {
            servers: &servers,
            added: &added,
            removed: &removed,
        };
        for o in observers {
            o(&change);
        }
    }

    /// Whether a list was reported already.
    pub fn has_list(&self) -> bool {
        self.shared.version.load(Ordering::Acquire) != 0
    }

    /// Whether the watcher stopped: the service should return.
    pub fn stopped(&self) -> bool {
        lock(&self.shared.state).stopped
    }

    /// Sleeps `d`, or less if the watcher stops; `false` if it stopped.
    pub fn wait(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut st = lock(&self.shared.state);
        while !st.stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            st = self
                .shared
                .wake
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        false
    }
}

/// Runs a naming service in a thread of its own and keeps its last
/// server list. Readers load the list without a lock
/// ([`servers`](Self::servers)); observers ([`watch`](Self::watch)) are
/// called at every change. The service stops when the last `Arc` of the
/// watcher is dropped.
pub struct NamingWatcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NamingWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamingWatcher")
            .field("name", &self.shared.name)
            .field("servers", &self.shared.servers.load().len())
            .finish()
    }
}

/// The watchers of URLs, shared by every user of the same URL.
static REGISTRY: LazyLock<Mutex<HashMap<String, Weak<NamingWatcher>>>> =
    LazyLock::new(Default::default);

impl NamingWatcher {
    /// The watcher of `url` (see [`naming_service_for_url`]): the one
    /// already running for the same URL if any, else a new one
    /// ([`start`](Self::start)), shared from now on until its last user
    /// drops it.
    pub fn shared(url: &str) -> Result<Arc<NamingWatcher>, RpcError> {
        let key = url.trim().to_string();
        if let Some(w) = lock(&REGISTRY).get(&key).and_then(Weak::upgrade) {
            return Ok(w);
        }
        // Started without the registry's lock: a first list may take
        // seconds, and other URLs must not wait for it. Two users racing
        // for a new URL may both start one; the first registered wins and
        // the other stops when dropped below.
        let ns = naming_service_for_url(&key)?;
        let fresh = NamingWatcher::start(&key, ns)?;
        let mut reg = lock(&REGISTRY);
        reg.retain(|_, w| w.strong_count() > 0);
        if let Some(w) = reg.get(&key).and_then(Weak::upgrade) {
            return Ok(w);
        }
        reg.insert(key, Arc::downgrade(&fresh));
        Ok(fresh)
    }

    /// Runs `service` in a new thread and waits for its first list (up
    /// to 5 s). Fails with the service's error if it returns one first
    /// (an unreachable etcd, a missing file), or with `ETIMEDOUT`. The
    /// watcher is not shared; `name` is for logs.
    pub fn start(
        name: &str,
        service: Box<dyn NamingService>,
    ) -> Result<Arc<NamingWatcher>, RpcError> {
        let shared = Arc::new(Shared {
            name: name.to_string(),
            servers: ArcSwap::from_pointee(Vec::new()),
            version: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            notify: Mutex::new(()),
            observers: Mutex::new(Vec::new()),
            next_observer: AtomicU64::new(1),
        });
        let watcher = Arc::new(NamingWatcher {
            shared: shared.clone(),
        });
        let actions = NamingServiceActions {
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name("fibrpc-naming".into())
            .spawn(move || run(service, actions))
            .map_err(|e| {
                RpcError::new(libc::EAGAIN, format!("cannot start a naming thread: {e}"))
            })?;
        let deadline = Instant::now() + FIRST_LIST_TIMEOUT;
        let mut st = lock(&shared.state);
        loop {
            if shared.version.load(Ordering::Acquire) != 0 {
                return Ok(watcher);
            }
            match &st.finished {
                Some(Err(e)) => {
                    return Err(RpcError::new(
                        e.code,
                        format!("naming service {name}: {}", e.text),
                    ))
                }
                Some(Ok(())) => {
                    return Err(RpcError::new(
                        libc::ENOENT,
                        format!("naming service {name} ended without a server list"),
                    ))
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // Dropping `watcher` (below, on return) stops the thread.
                return Err(RpcError::new(
                    libc::ETIMEDOUT,
                    format!(
                        "naming service {name} gave no server list within {FIRST_LIST_TIMEOUT:?}"
                    ),
                ));
            }
            st = shared
                .wake
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// What the watcher watches (its URL for shared ones).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current list, sorted, without duplicates. Lock-free; the
    /// snapshot stays valid (and unchanged) while held.
    pub fn servers(&self) -> Arc<Vec<ServerNode>> {
        self.shared.servers.load_full()
    }

    /// Bumped at every change of the list (never 0 once started): a
    /// reader that cached something derived from the list compares it.
    pub fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    /// Calls `observer` with the current list (all of it `added`) now,
    /// then with every change, from the watcher's thread, until the
    /// handle is dropped. The observer must not call `watch` on the same
    /// watcher (it would wait for itself); dropping a handle in it is
    /// fine.
    pub fn watch(
        &self,
        observer: impl Fn(&ServerListChange<'_>) + Send + Sync + 'static,
    ) -> WatchHandle {
        let s = &self.shared;
        let observer: Observer = Arc::new(observer);
        let id = s.next_observer.fetch_add(1, Ordering::Relaxed);
        let _order = lock(&s.notify);
        let servers = s.servers.load_full();
        observer(&ServerListChange {
            servers: &servers,
            added: &servers,
            removed: &[],
        });
        lock(&s.observers).push((id, observer));
        WatchHandle {
            shared: Arc::downgrade(&self.shared),
            id,
        }
    }
}

impl Drop for NamingWatcher {
    fn drop(&mut self) {
        // The thread notices at its next `wait` or `stopped` and ends; it
        // is not joined (a fetch in flight ends within its own timeout).
        lock(&self.shared.state).stopped = true;
        self.shared.wake.notify_all();
    }
}

/// Keeps an observer of a [`NamingWatcher`] registered; dropping it
/// removes the observer.
#[derive(Debug)]
pub struct WatchHandle {
    shared: Weak<Shared>,
    id: u64,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        if let Some(s) = self.shared.upgrade() {
            lock(&s.observers).retain(|(id, _)| *id != self.id);
        }
    }
}

/// The naming thread: runs the service and records how it ended.
fn run(mut service: Box<dyn NamingService>, actions: NamingServiceActions) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| service.run(&actions)))
        .unwrap_or_else(|_| Err(RpcError::new(libc::EINVAL, "the naming service panicked")));
    let s = &actions.shared;
    if let Err(e) = &result {
        if actions.has_list() {
            tracing::error!(naming = %s.name, error = %e, "naming service ended; keeping the last list");
        }
    }
    lock(&s.state).finished = Some(result);
    s.wake.notify_all();
}
