//! The worker sleep/wake protocol never loses a wakeup.

use crate::loom::AtomicUsize;
use crate::runtime::parking_lot::{wake_one_sleeper, wake_owner, ParkingLot};
use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

fn take(flag: &AtomicBool) -> Option<()> {
    flag.swap(false, Ordering::AcqRel).then_some(())
}

/// One worker parks until it finds work; this thread queues the work and
/// then runs `wake`. The worker must end up with the work.
fn sleeper_gets_work(wake: fn(&ParkingLot, &AtomicUsize)) {
    super::model(move || {
        let lot = Arc::new(ParkingLot::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let work = Arc::new(AtomicBool::new(false));
        let (l, p, w) = (lot.clone(), parked.clone(), work.clone());
        let worker = thread::spawn(move || l.park_until(&p, || take(&w), || {}, |s| l.wait(s)));
        // swap, not store: loom mis-orders plain stores against RMWs
        // (tokio-rs/loom#254), reporting a lost wakeup that cannot happen.
        work.swap(true, Ordering::AcqRel);
        wake(&lot, &parked);
        assert_eq!(worker.join().unwrap(), Some(()));
    });
}

#[test]
fn shared_work_wakes_a_sleeper() {
    sleeper_gets_work(|lot, parked| {
        wake_one_sleeper(parked, std::iter::once(lot));
    });
}

#[test]
fn owner_work_wakes_its_owner() {
    sleeper_gets_work(|lot, _| wake_owner(lot));
}

#[test]
fn stop_releases_a_sleeper() {
    super::model(|| {
        let lot = Arc::new(ParkingLot::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let (l, p) = (lot.clone(), parked.clone());
        let worker = thread::spawn(move || l.park_until(&p, || None::<()>, || {}, |s| l.wait(s)));
        lot.stop();
        assert_eq!(worker.join().unwrap(), None);
    });
}

#[test]
fn two_sleepers_two_items() {
    super::model(|| {
        let lots = Arc::new([ParkingLot::new(), ParkingLot::new()]);
        let parked = Arc::new(AtomicUsize::new(0));
        let items = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let (l, p, it) = (lots.clone(), parked.clone(), items.clone());
                thread::spawn(move || {
                    l[i].park_until(
                        &p,
                        || {
                            // Take one item if there is one.
                            let mut n = it.load(Ordering::Acquire);
                            while n > 0 {
                                match it.compare_exchange(
                                    n,
                                    n - 1,
                                    Ordering::AcqRel,
                                    Ordering::Acquire,
                                ) {
                                    Ok(_) => return Some(()),
                                    Err(now) => n = now,
                                }
                            }
                            None
                        },
                        || {},
                        |s| l[i].wait(s),
                    )
                })
            })
            .collect();
        for _ in 0..2 {
            items.fetch_add(1, Ordering::Release);
            wake_one_sleeper(&parked, lots.iter());
        }
        for w in workers {
            assert_eq!(w.join().unwrap(), Some(()));
        }
    });
}

/// A waker that finds the owner's wakeup already claimed by another makes
/// no signal of its own: the owner, woken by the first, must still find
/// the second waker's work (here: an owner-only item after a shared one).
#[test]
fn a_claimed_wakeup_serves_later_wakers() {
    super::model(|| {
        let lot = Arc::new(ParkingLot::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let items = Arc::new(AtomicUsize::new(0));
        let (l, p, it) = (lot.clone(), parked.clone(), items.clone());
        let worker = thread::spawn(move || {
            let take_one = || {
                let n = it.load(Ordering::Acquire);
                (n > 0
                    && it
                        .compare_exchange(n, n - 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok())
                .then_some(())
            };
            let a = l.park_until(&p, take_one, || {}, |s| l.wait(s));
            let b = l.park_until(&p, take_one, || {}, |s| l.wait(s));
            (a, b)
        });
        let (l2, p2, it2) = (lot.clone(), parked.clone(), items.clone());
        let other = thread::spawn(move || {
            it2.fetch_add(1, Ordering::AcqRel);
            wake_one_sleeper(&p2, std::iter::once(&*l2));
        });
        items.fetch_add(1, Ordering::AcqRel);
        wake_owner(&lot);
        other.join().unwrap();
        assert_eq!(worker.join().unwrap(), (Some(()), Some(())));
    });
}

/// A worker that sleeps in `epoll_wait` (modelled: spinning until its
/// eventfd is written) instead of on the futex still gets every wakeup:
/// the signal either lands before it publishes its eventfd (and it does not
/// sleep) or writes that eventfd.
fn epoll_sleeper_gets_work(wake: fn(&ParkingLot, &AtomicUsize)) {
    super::model(move || {
        let lot = Arc::new(ParkingLot::new());
        let parked = Arc::new(AtomicUsize::new(0));
        let work = Arc::new(AtomicBool::new(false));
        let (l, p, w) = (lot.clone(), parked.clone(), work.clone());
        let worker = thread::spawn(move || {
            l.park_until(
                &p,
                || take(&w),
                || {},
                |s| {
                    l.wait_in_epoll(s, 7, || {
                        // epoll_wait(-1) on the eventfd: returns once it
                        // was written (and consumes it).
                        while !l.loom_eventfd.swap(false, Ordering::AcqRel) {
                            thread::yield_now();
                        }
                    })
                },
            )
        });
        work.swap(true, Ordering::AcqRel);
        wake(&lot, &parked);
        assert_eq!(worker.join().unwrap(), Some(()));
    });
}

#[test]
fn shared_work_wakes_an_epoll_sleeper() {
    epoll_sleeper_gets_work(|lot, parked| {
        wake_one_sleeper(parked, std::iter::once(lot));
    });
}

#[test]
fn owner_work_wakes_its_epoll_sleeper() {
    epoll_sleeper_gets_work(|lot, _| wake_owner(lot));
}
