//! Interrupting fibers blocked in sleep, a mutex wait and a channel receive.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::mpsc::{self, RecvInterruptError, SendInterruptError};
use fibrpc_fiber::sync::Mutex;
use std::sync::Arc;
use std::time::Duration;

fn rt() -> fiber::Runtime {
    fiber::Runtime::builder().workers(2).build().unwrap()
}

#[test]
fn interrupt_sleep() {
    let rt = rt();
    let h = rt.spawn(|| fiber::sleep(Duration::from_secs(60)));
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
}

#[test]
fn interrupt_mutex_wait() {
    let rt = rt();
    let m = Arc::new(Mutex::new(0));
    let g = m.lock();
    let m2 = m.clone();
    let h = rt.spawn(move || match m2.lock_interruptible() {
        Ok(_) => "locked",
        Err(fiber::Interrupted) => "interrupted",
    });
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), "interrupted");
    drop(g);
}

#[test]
fn interrupt_channel_recv() {
    let rt = rt();
    let (tx, rx) = mpsc::channel::<u32>();
    let h = rt.spawn(move || {
        let first = rx.recv_interruptible();
        // The receiver is still usable after an interrupt.
        let second = rx.recv_interruptible();
        (first, second)
    });
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    tx.send(9).unwrap();
    assert_eq!(
        h.join().unwrap(),
        (Err(RecvInterruptError::Interrupted), Ok(9))
    );
}

#[test]
fn plain_recv_ignores_interrupt_but_keeps_it_pending() {
    let rt = rt();
    let (tx, rx) = mpsc::channel::<u32>();
    let h = rt.spawn(move || {
        let v = rx.recv();
        (v, fiber::sleep(Duration::from_secs(60)))
    });
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!h.is_finished());
    tx.send(4).unwrap();
    assert_eq!(h.join().unwrap(), (Ok(4), Err(fiber::Interrupted)));
}

#[test]
fn interrupt_blocked_bounded_send_returns_message() {
    let rt = rt();
    let (tx, rx) = mpsc::sync_channel(1);
    tx.send(1).unwrap();
    let h = rt.spawn(move || tx.send_interruptible(2));
    std::thread::sleep(Duration::from_millis(20));
    fiber::interrupt(h.id()).unwrap();
    assert!(matches!(
        h.join().unwrap(),
        Err(SendInterruptError::Interrupted(2))
    ));
    assert_eq!(rx.recv(), Ok(1));
    assert!(rx.try_recv().is_err());
}

#[test]
fn pending_interrupt_ends_next_interruptible_wait() {
    let rt = rt();
    let (tx, rx) = mpsc::channel::<u32>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = rt.spawn(move || {
        // Not waiting yet when interrupted: the flag stays set...
        go_rx.recv().unwrap();
        // ...so this returns at once instead of blocking forever.
        rx.recv_interruptible()
    });
    fiber::interrupt(h.id()).unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(h.join().unwrap(), Err(RecvInterruptError::Interrupted));
    drop(tx);
}

#[test]
fn interrupts_race_wakes_and_timeouts_without_losing_a_waiter() {
    // Interrupters visit the waiting fiber's node (membarrier on their
    // side) while wakers and timeouts end the same waits: every wait must
    // end, the fiber must never find its node in use after leaving.
    use fiber::butex::{Butex, WaitError};
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::time::{Duration, Instant};
    let rt = rt();
    let b = Arc::new(Butex::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(AtomicU64::new(0));
    let waiter = {
        let (b, done, interrupted) = (b.clone(), done.clone(), interrupted.clone());
        rt.spawn(move || {
            // At least 20k waits and 100 interrupts (the interrupter may
            // start late on a loaded machine); bounded either way.
            let mut waits = 0u64;
            while (waits < 20_000 || interrupted.load(std::sync::atomic::Ordering::Relaxed) < 100)
                && waits < 20_000_000
            {
                waits += 1;
                let v = b.value().load(std::sync::atomic::Ordering::Acquire);
                let deadline = Instant::now() + Duration::from_micros(50);
                if b.wait(v, Some(deadline)) == Err(WaitError::Interrupted) {
                    interrupted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        })
    };
    let id = waiter.id();
    let interrupter = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                if fiber::interrupt(id).is_err() {
                    break;
                }
                n += 1;
                std::thread::yield_now();
            }
            n
        })
    };
    let waker = {
        let (b, done) = (b.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                b.value().fetch_add(1, std::sync::atomic::Ordering::Release);
                b.wake_all();
                std::thread::yield_now();
            }
        })
    };
    waiter.join().unwrap();
    let sent = interrupter.join().unwrap();
    waker.join().unwrap();
    assert!(sent >= 100);
    assert!(interrupted.load(std::sync::atomic::Ordering::Relaxed) >= 100);
}

#[test]
fn sleep_for_ever_ends_only_by_interrupt() {
    // `Duration::MAX` does not fit the clock: the fiber sleeps until
    // interrupted instead of panicking.
    let rt = rt();
    let h = rt.spawn(|| fiber::sleep(Duration::MAX));
    std::thread::sleep(Duration::from_millis(20));
    let start = std::time::Instant::now();
    fiber::interrupt(h.id()).unwrap();
    assert_eq!(h.join().unwrap(), Err(fiber::Interrupted));
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn timeouts_too_long_for_the_clock_mean_no_timeout() {
    use fibrpc_fiber::io::{fd_wait, Interest};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    let rt = rt();
    let (tx, rx) = mpsc::channel::<u32>();
    let m = Arc::new(Mutex::new(0));
    let m2 = m.clone();
    let g = m.lock();
    let (mut r, mut w) = fiber::net::pipe().unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = rt.spawn(move || {
        let got = rx.recv_timeout(Duration::MAX);
        let locked = m2.lock_timeout(Duration::MAX).map(|g| *g);
        let connected = fiber::net::TcpStream::connect_timeout(&addr, Duration::MAX).is_ok();
        let ready = fd_wait(r.as_raw_fd(), Interest::READABLE, Some(Duration::MAX));
        r.set_read_timeout(Some(Duration::MAX)).unwrap();
        let mut buf = [0u8; 2];
        let n = r.read(&mut buf).unwrap();
        // Nothing more to read: this read blocks, with its timeout read as
        // none, until the next write.
        let n2 = r.read(&mut buf).unwrap();
        (got, locked, connected, ready.is_ok(), n + n2)
    });
    std::thread::sleep(Duration::from_millis(20));
    tx.send(5).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    drop(g);
    w.write_all(b"x").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    w.write_all(b"y").unwrap();
    assert_eq!(h.join().unwrap(), (Ok(5), Some(0), true, true, 2));
}
