//! Listing live fibers (`list_fibers`, `fiber_info`): a waiting fiber is
//! listed suspended with its name and spawn site, the lister itself
//! running, and an ended fiber not at all.

use fibrpc_fiber as fiber;
use std::time::{Duration, Instant};

#[test]
fn a_waiting_fiber_is_listed_suspended_and_gone_once_it_ends() {
    let (tx, rx) = fiber::sync::mpsc::channel::<()>();
    let line = line!() + 3;
    let waiter = fiber::Builder::new()
        .name("list-test-waiter")
        .spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
    let id = waiter.id();
    // Wait (bounded) until it has parked on the channel.
    let until = Instant::now() + Duration::from_secs(10);
    let info = loop {
        let info = fiber::fiber_info(id).expect("the waiter is alive");
        if info.state == fiber::FiberState::Suspended || Instant::now() > until {
            break info;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(info.state, fiber::FiberState::Suspended, "{info:?}");
    assert_eq!(info.name.as_deref(), Some("list-test-waiter"));
    let at = info.spawned_at.expect("spawn site");
    assert!(at.file().ends_with("fiber_list.rs"), "{at}");
    assert_eq!(at.line(), line, "{at}");
    assert!(info.worker.is_some());
    std::thread::sleep(Duration::from_millis(150));
    let info = fiber::fiber_info(id).expect("still alive");
    assert!(
        info.suspended_for.expect("suspended") >= Duration::from_millis(100),
        "{info:?}"
    );

    let (listed, total) = fiber::list_fibers(usize::MAX);
    assert!(total >= 1 && listed.len() == total);
    assert!(listed.iter().any(|f| f.id == id));
    let (one, total_again) = fiber::list_fibers(0);
    assert!(one.is_empty() && total_again >= 1);

    // Seen from a fiber, the lister itself is running.
    let me = fiber::spawn(|| {
        let me = fiber::current().unwrap();
        fiber::fiber_info(me).map(|i| i.state)
    });
    assert_eq!(me.join().unwrap(), Some(fiber::FiberState::Running));

    drop(tx);
    waiter.join().unwrap();
    assert!(fiber::fiber_info(id).is_none());
    assert!(!fiber::list_fibers(usize::MAX).0.iter().any(|f| f.id == id));
    // A made-up id finds nothing.
    assert!(fiber::fiber_info(fiber::FiberId::from_u64(u64::MAX)).is_none());
}
