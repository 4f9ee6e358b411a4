//! The interrupter's access to a parked fiber's node (`CurrentWaiter`):
//! once `withdraw` returns the node may die, so every `visit` that reads
//! it must happen before that. Under loom the fence pair is two SeqCst
//! fences (membarrier cannot be modelled; it orders at least as strongly).

use crate::butex::CurrentWaiter;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A node whose death (a write) races with any read loom cannot order
/// before it.
struct Node(UnsafeCell<u32>);

/// The waiting side: publish, (be woken), withdraw, then the node dies.
fn waiter(cw: &CurrentWaiter<Node>, node: &Node) {
    cw.publish(node);
    cw.withdraw();
    // SAFETY: a test write; loom checks it against every visitor's read.
    node.0.with_mut(|v| unsafe { *v = 0xdead });
}

fn visitor(cw: &CurrentWaiter<Node>) {
    cw.visit(|n| {
        // SAFETY: `visit` keeps the node alive while we use it; loom
        // reports a race with the node's death otherwise.
        let v = unsafe { &*n }.0.with(|v| unsafe { *v });
        assert_eq!(v, 7, "visited a dead node");
    });
}

#[test]
fn a_visitor_never_reads_a_withdrawn_node() {
    super::model(|| {
        let cw = Arc::new(CurrentWaiter::new());
        let node = Arc::new(Node(UnsafeCell::new(7)));
        let t = {
            let cw = cw.clone();
            thread::spawn(move || visitor(&cw))
        };
        waiter(&cw, &node);
        t.join().unwrap();
    });
}

#[test]
fn two_visitors_and_two_waits() {
    super::model_bounded(1, || {
        let cw = Arc::new(CurrentWaiter::new());
        let visitors: Vec<_> = (0..2)
            .map(|_| {
                let cw = cw.clone();
                thread::spawn(move || visitor(&cw))
            })
            .collect();
        for _ in 0..2 {
            let node = Node(UnsafeCell::new(7));
            waiter(&cw, &node);
        }
        for v in visitors {
            v.join().unwrap();
        }
    });
}
