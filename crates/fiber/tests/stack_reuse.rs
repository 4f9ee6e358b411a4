//! Stacks are reused warm: a fiber starting on a worker takes the stack
//! that the last fiber to end there gave back, whatever slot it got.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::CountdownEvent;
use std::sync::Arc;

/// An address in the calling fiber's stack frame.
#[inline(never)]
fn stack_address() -> usize {
    let here = 0u8;
    std::hint::black_box(&here) as *const u8 as usize
}

#[test]
fn fibers_spawned_in_a_batch_run_on_one_warm_stack() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let addresses = rt.block_on(|| {
        // Sixteen fibers alive at once: sixteen stacks are mapped, and
        // when the fibers end, sixteen slots and stacks are free.
        let (started, gate) = (
            Arc::new(CountdownEvent::new(16)),
            Arc::new(CountdownEvent::new(1)),
        );
        let held: Vec<_> = (0..16)
            .map(|_| {
                let (started, gate) = (started.clone(), gate.clone());
                fiber::spawn(move || {
                    started.signal(1);
                    gate.wait();
                })
            })
            .collect();
        started.wait();
        gate.signal(1);
        for h in held {
            h.join().unwrap();
        }
        // Sixteen more, all spawned before any runs (as a dispatcher
        // spawns one reader per ready connection), none blocking: each
        // ends before the next starts, so each can take the stack the one
        // before it left.
        let batch: Vec<_> = (0..16).map(|_| fiber::spawn(stack_address)).collect();
        batch
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(
        addresses.iter().all(|&a| a == addresses[0]),
        "the batch ran on more than one stack: {addresses:x?}"
    );
}
