//! Does holding 10k idle sockets slow down one descriptor's wakeup?
//!
//! ```text
//! cargo run --release -p fibrpc-fiber --example idle_fds_wakeup
//! ```
//!
//! Two fibers play ping-pong over a socketpair (one byte each way, each
//! side blocking in `read`), first with no other descriptor registered,
//! then with 10,000 idle socketpair ends (5,000 pairs) registered with the dispatchers
//! (each read once until `EAGAIN`, as a server's idle connections are).
//! epoll reports only ready descriptors, so the round trip should not
//! change; the ratio printed is the median round trip with the idle
//! descriptors over the median without (1.00 = no slowdown). Bounded: a
//! fixed number of round trips per round.

use fiber::net::UnixStream;
use fibrpc_fiber as fiber;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

/// Idle socketpairs: 10,000 registered descriptors (the per-process limit
/// here is 20,000).
const IDLE_PAIRS: usize = 5_000;
const ROUNDS: usize = 9;
const TRIPS: usize = 20_000;

fn main() {
    raise_nofile();
    let before = median_round_trip();
    let idle = hold_idle(IDLE_PAIRS);
    let held = idle.len() * 2;
    let busy = median_round_trip();
    drop(idle);
    let after = median_round_trip();
    // The machine drifts: compare against the mean of the runs before and
    // after, taken the same way.
    let quiet = (before + after) / 2;
    println!(
        "one descriptor's round trip: {:.2} µs alone (before {:.2}, after {:.2}), \
         {:.2} µs with {held} idle descriptors registered: ratio {:.2}",
        quiet.as_secs_f64() * 1e6,
        before.as_secs_f64() * 1e6,
        after.as_secs_f64() * 1e6,
        busy.as_secs_f64() * 1e6,
        busy.as_secs_f64() / quiet.as_secs_f64()
    );
}

/// Median over `ROUNDS` of the mean round trip of `TRIPS` ping-pongs.
fn median_round_trip() -> Duration {
    let mut per_round: Vec<Duration> = (0..ROUNDS).map(|_| ping_pong(TRIPS)).collect();
    per_round.sort();
    per_round[ROUNDS / 2]
}

fn ping_pong(trips: usize) -> Duration {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let echo = fiber::spawn(move || {
        let mut byte = [0u8; 1];
        for _ in 0..trips {
            (&b).read_exact(&mut byte).unwrap();
            (&b).write_all(&byte).unwrap();
        }
    });
    fiber::spawn(move || {
        let start = Instant::now();
        let mut byte = [7u8; 1];
        for _ in 0..trips {
            (&a).write_all(&byte).unwrap();
            (&a).read_exact(&mut byte).unwrap();
        }
        let d = start.elapsed() / trips as u32;
        echo.join().unwrap();
        d
    })
    .join()
    .unwrap()
}

/// Registers `n` idle socketpairs (both ends) by reading each end once.
fn hold_idle(n: usize) -> Vec<(UnixStream, UnixStream)> {
    let pairs: Vec<_> = (0..n)
        .map_while(|_| match UnixStream::pair() {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("stopping at fewer idle descriptors: {e}");
                None
            }
        })
        .collect();
    fiber::spawn(move || {
        for (x, y) in &pairs {
            for s in [x, y] {
                // A read that would block registers the descriptor.
                s.set_read_timeout(Some(Duration::from_micros(1))).unwrap();
                let e = (&*s).read(&mut [0u8; 1]).unwrap_err();
                assert!(matches!(
                    e.kind(),
                    ErrorKind::TimedOut | ErrorKind::WouldBlock
                ));
            }
        }
        pairs
    })
    .join()
    .unwrap()
}

/// 10k pairs need 20k descriptors: lift the soft limit to the hard one.
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a valid struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}
