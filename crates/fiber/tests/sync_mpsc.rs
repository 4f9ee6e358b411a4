//! `sync::mpsc`: delivery, blocking, timeouts, disconnection, rendezvous.

use fibrpc_fiber as fiber;
use fibrpc_fiber::sync::mpsc::{
    self, RecvError, RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rt(n: usize) -> fiber::Runtime {
    fiber::Runtime::builder().workers(n).build().unwrap()
}

/// Producers (half fibers, half threads) into one consumer; checks every
/// message arrives once and each producer's messages arrive in order.
fn producers_consumer(bound: Option<usize>, consumer_in_fiber: bool) {
    const PRODUCERS: u64 = 6;
    const PER: u64 = 3000;
    let rt = rt(2);
    type Tx = Box<dyn Fn(u64) + Send + Sync>;
    let (tx, rx): (Tx, _) = match bound {
        None => {
            let (tx, rx) = mpsc::channel();
            (Box::new(move |v| tx.send(v).unwrap()), rx)
        }
        Some(b) => {
            let (tx, rx) = mpsc::sync_channel(b);
            (Box::new(move |v| tx.send(v).unwrap()), rx)
        }
    };
    let tx = Arc::new(tx);
    let mut joins: Vec<Box<dyn FnOnce()>> = Vec::new();
    for p in 0..PRODUCERS {
        let tx = tx.clone();
        let work = move || {
            for i in 0..PER {
                tx(p << 32 | i);
            }
        };
        if p % 2 == 0 {
            let h = rt.spawn(work);
            joins.push(Box::new(move || h.join().unwrap()));
        } else {
            let t = std::thread::spawn(work);
            joins.push(Box::new(move || t.join().unwrap()));
        }
    }
    drop(tx);
    let consume = move || {
        let mut next = vec![0u64; PRODUCERS as usize];
        for v in rx.iter() {
            let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
            assert_eq!(i, next[p], "producer {p} out of order");
            next[p] += 1;
        }
        next
    };
    let next = if consumer_in_fiber {
        rt.spawn(consume).join().unwrap()
    } else {
        consume()
    };
    for j in joins {
        j();
    }
    assert!(next.iter().all(|&n| n == PER), "{next:?}");
}

#[test]
fn unbounded_mixed_producers_fiber_consumer() {
    producers_consumer(None, true);
}

#[test]
fn unbounded_mixed_producers_thread_consumer() {
    producers_consumer(None, false);
}

#[test]
fn bounded_mixed_producers_fiber_consumer() {
    producers_consumer(Some(4), true);
}

#[test]
fn bounded_cap1_mixed_producers_thread_consumer() {
    producers_consumer(Some(1), false);
}

#[test]
fn rendezvous_mixed_producers_fiber_consumer() {
    producers_consumer(Some(0), true);
}

#[test]
fn buffered_messages_delivered_after_senders_gone() {
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    tx2.send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    drop(tx2);
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn blocked_receiver_wakes_when_last_sender_drops() {
    let rt = rt(1);
    let (tx, rx) = mpsc::sync_channel::<u32>(2);
    let h = rt.spawn(move || rx.recv());
    std::thread::sleep(Duration::from_millis(20));
    drop(tx);
    assert_eq!(h.join().unwrap(), Err(RecvError));
    // And a thread receiver.
    let (tx, rx) = mpsc::channel::<u32>();
    let t = std::thread::spawn(move || rx.recv());
    std::thread::sleep(Duration::from_millis(20));
    drop(tx);
    assert_eq!(t.join().unwrap(), Err(RecvError));
}

#[test]
fn send_fails_when_receiver_gone_and_drops_buffer() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    tx.send(Counted(drops.clone())).unwrap();
    tx.send(Counted(drops.clone())).unwrap();
    drop(rx);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "buffer dropped with receiver"
    );
    let e = tx.send(Counted(drops.clone())).unwrap_err();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2,
        "message handed back, not dropped"
    );
    drop(e);
    assert_eq!(drops.load(Ordering::SeqCst), 3);

    let (stx, srx) = mpsc::sync_channel(1);
    drop(srx);
    assert!(matches!(
        stx.try_send(5),
        Err(TrySendError::Disconnected(5))
    ));
    assert_eq!(stx.send(6).unwrap_err().0, 6);
    assert!(matches!(
        stx.send_timeout(7, Duration::from_millis(1)),
        Err(SendTimeoutError::Disconnected(7))
    ));
}

#[test]
fn blocked_sender_wakes_when_receiver_drops() {
    let rt = rt(1);
    let (tx, rx) = mpsc::sync_channel(1);
    tx.send(1).unwrap();
    let h = rt.spawn(move || tx.send(2).map_err(|e| e.0));
    let (ttx, trx) = mpsc::sync_channel(0);
    let t = std::thread::spawn(move || ttx.send(3).map_err(|e| e.0));
    std::thread::sleep(Duration::from_millis(20));
    drop(rx);
    drop(trx);
    assert_eq!(h.join().unwrap(), Err(2));
    assert_eq!(t.join().unwrap(), Err(3), "rendezvous message handed back");
}

#[test]
fn bounded_send_blocks_when_full_and_timeouts_fire() {
    let rt = rt(1);
    let (tx, rx) = mpsc::sync_channel(2);
    assert_eq!(tx.capacity(), 2);
    tx.send(1).unwrap();
    tx.try_send(2).unwrap();
    assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
    assert!(matches!(
        tx.send_timeout(3, Duration::from_millis(10)),
        Err(SendTimeoutError::Timeout(3))
    ));
    let tx2 = tx.clone();
    let fiber_timeout = rt.block_on(move || {
        matches!(
            tx2.send_timeout(4, Duration::from_millis(10)),
            Err(SendTimeoutError::Timeout(4))
        )
    });
    assert!(fiber_timeout);
    // A blocked send completes once there is room.
    let tx3 = tx.clone();
    let h = rt.spawn(move || tx3.send(5));
    std::thread::sleep(Duration::from_millis(20));
    assert!(!h.is_finished(), "send on a full channel must block");
    assert_eq!(rx.recv(), Ok(1));
    h.join().unwrap().unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![2, 5]);
    // recv_timeout on an empty channel, thread and fiber.
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
    let r = rt.block_on(move || rx.recv_timeout(Duration::from_millis(10)));
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
}

#[test]
fn rendezvous_send_waits_for_the_receiver() {
    let rt = rt(2);
    let (tx, rx) = mpsc::sync_channel(0);
    assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
    assert!(matches!(
        tx.send_timeout(1, Duration::from_millis(10)),
        Err(SendTimeoutError::Timeout(1))
    ));
    // The timed-out message was taken back: nothing to receive.
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let h = rt.spawn(move || {
        tx.send(10).unwrap();
        tx
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(!h.is_finished(), "rendezvous send returned before recv");
    assert_eq!(rx.recv(), Ok(10));
    let tx = h.join().unwrap();
    // try_send succeeds into the hands of a waiting receiver.
    let r = std::thread::spawn(move || rx.recv());
    let mut sent = false;
    for _ in 0..5000 {
        match tx.try_send(11) {
            Ok(()) => {
                sent = true;
                break;
            }
            Err(TrySendError::Full(_)) => std::thread::sleep(Duration::from_millis(1)),
            Err(TrySendError::Disconnected(_)) => panic!("receiver gone"),
        }
    }
    assert!(sent, "try_send never found the receiver waiting");
    assert_eq!(r.join().unwrap(), Ok(11));
}

#[test]
fn capacity_one_alternates() {
    let rt = rt(1);
    let (tx, rx) = mpsc::sync_channel(1);
    let h = rt.spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
    });
    let got: Vec<i32> = rt.block_on(move || rx.into_iter().collect());
    h.join().unwrap();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[test]
fn fiber_ping_pong_on_one_worker() {
    let rt = rt(1);
    let n = rt.block_on(|| {
        let (atx, arx) = mpsc::channel();
        let (btx, brx) = mpsc::sync_channel(0);
        let echo = fiber::spawn(move || {
            for v in arx {
                btx.send(v * 2).unwrap();
            }
        });
        let mut sum = 0u64;
        for i in 0..10_000u64 {
            atx.send(i).unwrap();
            sum += brx.recv().unwrap();
        }
        drop(atx);
        echo.join().unwrap();
        sum
    });
    assert_eq!(n, 2 * (10_000 * 9_999 / 2));
}
