//! Model checks (`RUSTFLAGS="--cfg loom" cargo test -p fibrpc-fiber --release --lib loom`).
//! Each test explores every interleaving (within loom's bounds) of the real
//! code paths of a lock-free part.

mod batch;
mod butex;
mod current_waiter;
mod edges;
mod interrupt_end;
mod join;
mod parking_lot;
mod remote_queue;
mod segment_gate;
mod timer;

/// Runs `f` under loom with a preemption bound (as tokio's CI does): every
/// interleaving with at most that many forced thread switches is explored.
/// `LOOM_MAX_PREEMPTIONS` overrides the default of 2 (tokio uses 2 too;
/// at 3, the butex spin lock's yield loop exceeds loom's branch budget).
fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bounded(2, f)
}

/// Like [`model`] with an explicit default bound, for models with three
/// threads whose state space is too large at 2 within loom's branch budget.
fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(bound);
    }
    // The butex's spin lock yields in its spin loop; each yield is a branch.
    b.max_branches = 20_000;
    b.check(f);
}
