//! block_on, fiber-locals, stats, growing the worker count.

use fibrpc_fiber as fiber;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A future completed by another thread after a delay.
struct Later {
    done: Arc<AtomicBool>,
    spawned: bool,
}

impl Future for Later {
    type Output = u32;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.done.load(Ordering::Acquire) {
            return Poll::Ready(7);
        }
        if !self.spawned {
            self.spawned = true;
            let done = self.done.clone();
            let waker = cx.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                done.store(true, Ordering::Release);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

fn later() -> Later {
    Later {
        done: Arc::new(AtomicBool::new(false)),
        spawned: false,
    }
}

#[test]
fn block_on_in_a_fiber_suspends_only_the_fiber() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let (a, b) = rt.block_on(|| {
        let ticker = fiber::spawn(|| {
            let mut n = 0;
            for _ in 0..10 {
                fiber::sleep(Duration::from_millis(1)).unwrap();
                n += 1;
            }
            n
        });
        let v = fiber::block_on(later());
        (v, ticker.join().unwrap())
    });
    assert_eq!((a, b), (7, 10));
}

#[test]
fn block_on_from_a_thread() {
    assert_eq!(fiber::block_on(later()), 7);
    assert_eq!(fiber::block_on(async { 5 }), 5);
}

fiber::fiber_local! {
    static COUNTER: Cell<u32> = Cell::new(0);
}

#[test]
fn fiber_locals_are_per_fiber() {
    let hs: Vec<_> = (0..50)
        .map(|i| {
            fiber::spawn(move || {
                for _ in 0..i {
                    COUNTER.with(|c| c.set(c.get() + 1));
                    fiber::yield_now();
                }
                COUNTER.with(|c| c.get())
            })
        })
        .collect();
    for (i, h) in hs.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), i as u32);
    }
}

#[test]
fn with_existing_reads_only_a_value_the_fiber_created() {
    let h = fiber::spawn(|| {
        let before = COUNTER.with_existing(|c| c.get());
        COUNTER.with(|c| c.set(7));
        (before, COUNTER.with_existing(|c| c.get()))
    });
    assert_eq!(h.join().unwrap(), (None, Some(7)));
    // Another fiber starts without it.
    assert_eq!(
        fiber::spawn(|| COUNTER.with_existing(|c| c.get()))
            .join()
            .unwrap(),
        None
    );
}

fiber::fiber_local! {
    static BASE: Cell<u32> = Cell::new(40);
    /// Its initializer reads another fiber-local.
    static DERIVED: Cell<u32> = Cell::new(BASE.with(|b| b.get()) + 2);
    /// Its initializer reads itself.
    static SELFISH: Cell<u32> = Cell::new(SELFISH.with(|s| s.get()));
}

#[test]
fn a_fiber_local_initializer_may_read_other_fiber_locals() {
    // On a fiber, and on a plain thread (where the initializer used to run
    // inside the map's `RefCell` borrow and hit "already borrowed").
    let on_fiber = fiber::spawn(|| {
        BASE.with(|b| b.set(50));
        DERIVED.with(|d| d.get())
    });
    assert_eq!(on_fiber.join().unwrap(), 52);
    let on_thread = std::thread::spawn(|| DERIVED.with(|d| d.get()) + BASE.with(|b| b.get()));
    assert_eq!(on_thread.join().unwrap(), 82);
}

#[test]
fn a_fiber_local_initializer_reading_itself_panics_cleanly() {
    fn msg(e: &(dyn std::any::Any + Send)) -> String {
        e.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| e.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    }
    let on_fiber = fiber::spawn(|| {
        let e = std::panic::catch_unwind(|| SELFISH.with(|s| s.get())).unwrap_err();
        // The failed initialization leaves the key usable (and failing the
        // same way), and other keys unaffected.
        let again = std::panic::catch_unwind(|| SELFISH.with(|s| s.get())).unwrap_err();
        (msg(&*e), msg(&*again), BASE.with(|b| b.get()))
    });
    let (first, again, base) = on_fiber.join().unwrap();
    assert!(first.contains("recursive initialization"), "{first}");
    assert!(again.contains("recursive initialization"), "{again}");
    assert_eq!(base, 40);
    let on_thread = std::thread::spawn(|| SELFISH.with(|s| s.get()));
    let e = on_thread.join().unwrap_err();
    assert!(
        msg(&*e).contains("recursive initialization"),
        "{}",
        msg(&*e)
    );
}

static LATE_DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets `LATE` when dropped.
struct SetsLate;
impl Drop for SetsLate {
    fn drop(&mut self) {
        LATE.with(|l| *l.borrow_mut() = Some(CountsDrop(7)));
    }
}

struct CountsDrop(u32);
impl Drop for CountsDrop {
    fn drop(&mut self) {
        LATE_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

/// Sets itself again when dropped: a value each time.
struct Immortal;
impl Drop for Immortal {
    fn drop(&mut self) {
        IMMORTAL_DROPS.fetch_add(1, Ordering::SeqCst);
        IMMORTAL.with(|_| {});
    }
}
static IMMORTAL_DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fiber::fiber_local! {
    static EARLY: std::cell::RefCell<Option<SetsLate>> = std::cell::RefCell::new(None);
    static LATE: std::cell::RefCell<Option<CountsDrop>> = std::cell::RefCell::new(None);
    static IMMORTAL: Immortal = Immortal;
}

#[test]
fn a_fiber_local_set_by_a_destructor_dies_with_the_fiber() {
    // One worker: a slot freed by a joined fiber is the next one spawned.
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let seen = rt.block_on(|| {
        let mut seen = Vec::new();
        for _ in 0..4 {
            fiber::spawn(|| EARLY.with(|e| *e.borrow_mut() = Some(SetsLate)))
                .join()
                .unwrap();
            // Whatever slot the next fibers get, none may inherit `LATE`.
            for _ in 0..4 {
                seen.push(
                    fiber::spawn(|| LATE.with(|l| l.borrow().as_ref().map(|c| c.0)))
                        .join()
                        .unwrap(),
                );
            }
        }
        seen
    });
    assert!(seen.iter().all(Option::is_none), "{seen:?}");
    // Each value `SetsLate` left behind was dropped at its fiber's exit.
    assert_eq!(LATE_DROPS.load(Ordering::SeqCst), 4);
}

#[test]
fn a_destructor_that_always_sets_a_fiber_local_again_is_cut_short() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    rt.block_on(|| {
        fiber::spawn(|| IMMORTAL.with(|_| {})).join().unwrap();
        // The slot is clean for the next fiber.
        fiber::spawn(|| ()).join().unwrap();
    });
    // A few rounds, then the last value is leaked instead of looping.
    let n = IMMORTAL_DROPS.load(Ordering::SeqCst);
    assert!((1..=16).contains(&n), "{n}");
}

#[test]
fn stats_count_fibers() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    rt.block_on(|| {
        for _ in 0..100 {
            fiber::spawn(fiber::yield_now).join().unwrap();
        }
    });
    let s = rt.stats();
    assert_eq!(s.workers.len(), 2);
    let t = s.total();
    assert_eq!(t.created, 101);
    assert_eq!(t.exited, 101);
    assert_eq!(s.alive(), 0);
    assert!(t.switches >= 201);
}

#[test]
fn workers_can_be_added_at_run_time() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    assert_eq!(rt.workers(), 1);
    rt.add_workers(2).unwrap();
    assert_eq!(rt.workers(), 3);
    let v = rt.block_on(|| {
        (0..64)
            .map(|i| fiber::spawn(move || i))
            .map(|h| h.join().unwrap())
            .sum::<i32>()
    });
    assert_eq!(v, 2016);
}

/// Past `MAX_WORKERS` a new worker has no slot: growing there is refused
/// up front, adds nobody, and the runtime keeps working.
#[test]
fn workers_beyond_the_maximum_are_refused() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let e = rt.add_workers(fiber::MAX_WORKERS).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("at most 256"), "{e}");
    let e = rt.grow_workers_to(fiber::MAX_WORKERS + 1).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = rt.add_workers(usize::MAX).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(rt.workers(), 1);
    // Shrinking is refused; the current count and more are accepted.
    let e = rt.grow_workers_to(0).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    rt.grow_workers_to(1).unwrap();
    rt.grow_workers_to(2).unwrap();
    assert_eq!(rt.workers(), 2);
    assert_eq!(rt.block_on(|| fiber::spawn(|| 7).join().unwrap()), 7);
}

#[test]
fn explicit_runtime_shuts_down() {
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    assert_eq!(rt.block_on(|| 3), 3);
    rt.shutdown();
}

#[test]
fn a_panicking_block_on_resumes_the_panic() {
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("inner"));
    }));
    assert!(r.is_err());
    assert_eq!(rt.block_on(|| 1), 1);
}

/// Workers that yield their CPU at every idle moment (an interval of
/// 1 µs) do yield, and still see every wakeup: 2,000 round trips over
/// loopback between fibers, each leaving a worker idle at least once, all
/// complete (within a minute: a lost wakeup would stall them for good).
#[test]
fn idle_yields_lose_no_wakeup() {
    use std::io::{Read, Write};
    let rt = fiber::Runtime::builder()
        .workers(2)
        .idle_yield_interval(Some(Duration::from_micros(1)))
        .build()
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let runner = rt.clone();
    std::thread::spawn(move || {
        let total = runner.block_on(|| {
            let listener = fiber::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = fiber::spawn(move || {
                let (mut s, _) = listener.accept().unwrap();
                let mut b = [0u8; 8];
                while s.read_exact(&mut b).is_ok() {
                    s.write_all(&b).unwrap();
                }
            });
            let mut c = fiber::net::TcpStream::connect(addr).unwrap();
            let mut total = 0u64;
            for i in 0..2000u64 {
                c.write_all(&i.to_le_bytes()).unwrap();
                let mut b = [0u8; 8];
                c.read_exact(&mut b).unwrap();
                total += u64::from_le_bytes(b);
            }
            drop(c);
            server.join().unwrap();
            total
        });
        let _ = done.send(total);
    });
    let total = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("round trips stalled: a wakeup was lost");
    assert_eq!(total, (0..2000u64).sum());
    assert!(rt.stats().total().idle_yields > 0, "no worker yielded");
}
