//! The trace context of the running fiber: which span a call made from
//! here is a child of.
//!
//! While a traced request's handler runs, the server sets its span as the
//! fiber's current context; a call the handler makes from the same fiber
//! reads it and becomes a child. A fiber the handler spawns starts with no
//! context: pass [`current`] to it and run its calls inside
//! [`with_parent`].

use std::cell::Cell;

fibrpc_fiber::fiber_local! {
    static CURRENT: Cell<Option<TraceContext>> = Cell::new(None);
}

/// A traced span as its children see it: the trace and the parent's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace.
    pub trace_id: u64,
    /// The span calls made under this context are children of.
    pub span_id: u64,
}

/// The running fiber's context (on a plain thread, the thread's): set
/// while a traced handler runs, or inside [`with_parent`]. Always `None`
/// while rpcz is off.
pub fn current() -> Option<TraceContext> {
    if !super::enabled() {
        return None;
    }
    CURRENT.with(|c| c.get())
}

/// Runs `f` with `parent` as the fiber's context, so that calls made in
/// `f` are its children (`None`: they are roots). For work a handler
/// hands to another fiber or thread:
///
/// ```no_run
/// let parent = fibrpc::rpcz::current(); // in the handler
/// fibrpc::fiber::spawn(move || {
///     fibrpc::rpcz::with_parent(parent, || {
///         // calls made here are children of the handler's span
///     })
/// });
/// ```
pub fn with_parent<R>(parent: Option<TraceContext>, f: impl FnOnce() -> R) -> R {
    let _guard = enter(parent);
    f()
}

/// Makes `ctx` the fiber's context until the guard drops (which restores
/// the one before, panics included).
pub(crate) fn enter(ctx: Option<TraceContext>) -> ParentGuard {
    ParentGuard {
        before: CURRENT.with(|c| c.replace(ctx)),
    }
}

/// Restores the fiber's previous context on drop.
#[derive(Debug)]
pub(crate) struct ParentGuard {
    before: Option<TraceContext>,
}

impl Drop for ParentGuard {
    fn drop(&mut self) {
        let before = self.before;
        CURRENT.with(|c| c.set(before));
    }
}

/// The fiber's context for a call being started (rpcz is on).
pub(crate) fn parent() -> Option<TraceContext> {
    CURRENT.with(|c| c.get())
}
