//! What happens to work handed to a fiber that never starts.
//!
//! A spawn can fail (the fiber limit), and a spawned fiber can be dropped
//! unrun when a worker cannot map a stack for it (`vm.max_map_count` or
//! memory exhausted). Its closure is then dropped: a connection's reader,
//! a request, a write-behind or a caller's callback would be lost without
//! a word, and their peers would wait forever. Each such closure keeps
//! what it needs in an [`IfUnstarted`], whose drop, if the closure never
//! took the value, runs a fallback: close the connection, or finish the
//! call on a thread.
//!
//! The guard lives inside the closure, so the fallback costs nothing
//! when the fiber runs (no extra allocation or reference count).

/// Holds `T` for a fiber's closure; dropped before [`take`](Self::take),
/// it runs `lost(value)`.
pub(crate) struct IfUnstarted<T, L: FnOnce(T)> {
    value: Option<T>,
    lost: Option<L>,
}

impl<T, L: FnOnce(T)> IfUnstarted<T, L> {
    pub(crate) fn new(value: T, lost: L) -> Self {
        IfUnstarted {
            value: Some(value),
            lost: Some(lost),
        }
    }

    /// The value, for the fiber that started (the fallback is off).
    pub(crate) fn take(mut self) -> T {
        self.lost = None;
        self.value.take().expect("taken once")
    }
}

impl<T, L: FnOnce(T)> Drop for IfUnstarted<T, L> {
    fn drop(&mut self) {
        if let (Some(value), Some(lost)) = (self.value.take(), self.lost.take()) {
            lost(value);
        }
    }
}

/// Runs `f` (user code: a call's callback) on a new OS thread, for when no
/// fiber could run it; in place if even that fails. The fallback of an
/// unstarted callback runs outside any fiber, where user code must not
/// run (it may block).
pub(crate) fn run_on_thread(what: &'static str, f: impl FnOnce() + Send + 'static) {
    tracing::error!("no fiber could start for {what}; running it on a thread");
    let f = std::sync::Arc::new(std::sync::Mutex::new(Some(f)));
    let theirs = f.clone();
    let spawned = std::thread::Builder::new()
        .name("fibrpc-fallback".into())
        .spawn(move || {
            let f = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(f) = f {
                f();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "no thread either: running {what} in place");
        let f = f.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(f) = f {
            f();
        }
    }
}
