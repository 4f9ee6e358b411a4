//! Regression: the I/O driver started (in worker-poller mode) after the
//! workers of a runtime went to sleep. They slept on their futexes, saw no
//! driver, and nothing woke them when it started, so a dispatcher could be
//! left with nobody blocked in its `epoll_wait`: a single fiber doing
//! sequential round trips on a 2-worker runtime then lost the response of
//! every round whose descriptor sat there, until its timeout (every RPC of
//! a one-caller client timed out).
//!
//! Its own test binary: the driver is process-wide and must start here,
//! after the runtime's workers are asleep.

mod common;

use fiber::butex::{Butex, WaitError};
use fiber::io::{Config, Poller, Registration};
use fibrpc_fiber as fiber;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 300;
const MSG: usize = 8;
/// Generous: a round trip over loopback takes tens of microseconds.
const ROUND_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection read by a reader hook: it counts the bytes received and
/// wakes whoever waits on `signal`.
struct Conn {
    stream: Arc<TcpStream>,
    received: Arc<AtomicUsize>,
    signal: Arc<Butex>,
    reg: Option<Registration>,
}

impl Conn {
    fn open(addr: std::net::SocketAddr) -> Conn {
        let stream = Arc::new(TcpStream::connect(addr).unwrap());
        stream.set_nodelay(true).unwrap();
        stream.set_nonblocking(true).unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let signal = Arc::new(Butex::new(0));
        let (s, r, b) = (stream.clone(), received.clone(), signal.clone());
        let reg = Registration::with_reader(stream.as_raw_fd(), move |_| {
            common::drain(&*s, |n| {
                r.fetch_add(n, Ordering::Release);
            });
            b.value().fetch_add(1, Ordering::Release);
            b.wake_all();
        })
        .unwrap();
        Conn {
            stream,
            received,
            signal,
            reg: Some(reg),
        }
    }

    /// One round trip: whether the echo came back before the timeout.
    fn round_trip(&self, expected_total: usize) -> bool {
        (&*self.stream).write_all(&[7u8; MSG]).unwrap();
        let deadline = Instant::now() + ROUND_TIMEOUT;
        loop {
            let seen = self.signal.value().load(Ordering::Acquire);
            if self.received.load(Ordering::Acquire) >= expected_total {
                return true;
            }
            if let Err(WaitError::TimedOut) = self.signal.wait(seen, Some(deadline)) {
                return self.received.load(Ordering::Acquire) >= expected_total;
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Before the descriptor closes.
        self.reg.take();
    }
}

#[test]
fn one_fiber_ping_pong_on_two_workers_after_workers_slept() {
    // Two dispatchers polled by the workers, whatever the environment says:
    // the reader registrations below go one to each.
    fiber::io::configure(Config {
        dispatchers: 2,
        poller: Poller::Worker,
        ..Config::default()
    })
    .expect("the driver must not have started yet");
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    // Let both workers go idle and sleep before the driver exists.
    std::thread::sleep(Duration::from_millis(200));

    // The echo peer: plain threads, blocking I/O.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut echoes = Vec::new();
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            s.set_nodelay(true).unwrap();
            echoes.push(std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            }));
        }
        for e in echoes {
            e.join().unwrap();
        }
    });

    // ONE fiber, sequential round trips, alternating over two connections
    // (registered with dispatchers 0 and 1, round robin).
    let (completed, failed_at) = rt.block_on(move || {
        let conns = [Conn::open(addr), Conn::open(addr)];
        let mut totals = [0usize; 2];
        let mut completed = 0;
        let mut failed_at = Vec::new();
        for i in 0..ROUNDS {
            let c = i % 2;
            totals[c] += MSG;
            if conns[c].round_trip(totals[c]) {
                completed += 1;
            } else {
                failed_at.push(i);
                // Each lost round costs the whole timeout: enough to tell.
                if failed_at.len() >= 3 {
                    break;
                }
            }
        }
        (completed, failed_at)
    });
    assert!(
        failed_at.is_empty(),
        "{completed} of {ROUNDS} round trips completed; rounds {failed_at:?} \
         timed out after {ROUND_TIMEOUT:?}"
    );
    assert_eq!(completed, ROUNDS);
    peer.join().unwrap();
    rt.shutdown();
}
