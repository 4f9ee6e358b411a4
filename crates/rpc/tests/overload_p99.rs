//! Overload with and without bRPC's `auto` concurrency limiter, against
//! a server on 127.0.0.1 whose method is a queue in front of a fixed
//! capacity: 4 requests are worked on at once, 10 ms each, the rest
//! wait their turn. The limiter first sees the method unloaded (4
//! callers), then 32 callers arrive.
//!
//! - Without a limit every request is admitted and queues: its latency
//!   grows with the callers, to about 32 / 4 × 10 ms = 80 ms.
//! - With `auto` (bRPC's default settings) the limit settles near the
//!   capacity: the excess is rejected with `ELIMIT`, and the p99 of the
//!   admitted requests stays below 100 ms and below half of the
//!   unlimited run's.
//!
//! Latencies are the callers', of successful calls only, after a
//! second of overload (the limiter's windows are half a second).

mod rpc_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc::server::AdaptiveMaxConcurrency;
use fibrpc::{codec, errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server};
use fibrpc::{ServerOptions, Service};
use rpc_common::{req, EchoResponse, SERVICE};

/// Requests worked on at once.
const CAPACITY: usize = 4;
/// How long each takes.
const WORK: Duration = Duration::from_millis(10);
/// Callers while unloaded, then under overload.
const CALM_CALLERS: usize = CAPACITY;
const OVERLOAD_CALLERS: usize = 32;
/// The stated bound of the admitted requests' p99 with `auto`.
const AUTO_P99_BOUND: Duration = Duration::from_millis(100);

/// The method: a queue in front of `CAPACITY` lanes. A request takes
/// the lane that frees first, from when it frees, and answers when its
/// work there is done (a fiber sleep: no thread is held). The queueing
/// delay is arithmetic, so it does not depend on how busy the machine
/// is.
#[derive(Default)]
struct Queue {
    lanes: Mutex<[Option<Instant>; CAPACITY]>,
}

impl Service for Queue {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        let now = Instant::now();
        let done = {
            let mut lanes = self.lanes.lock().unwrap();
            let lane = lanes
                .iter_mut()
                .min_by_key(|l| l.unwrap_or(now))
                .expect("lanes");
            let done = lane.unwrap_or(now).max(now) + WORK;
            *lane = Some(done);
            done
        };
        fibrpc::fiber::sleep(done.saturating_duration_since(Instant::now())).unwrap();
        Ok(codec::encode(&EchoResponse {
            message: "ok".into(),
        }))
    }
}

/// One run's outcome under overload.
struct Run {
    p99: Duration,
    admitted: usize,
    rejected: usize,
}

/// Runs the calm phase, then the overload, against a server whose
/// method has `limit`.
fn run(limit: AdaptiveMaxConcurrency) -> Run {
    let mut server = Server::new(ServerOptions::default());
    server.add_service(Queue::default()).unwrap();
    server
        .set_max_concurrency_of(&format!("{SERVICE}.Echo"), limit)
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(10)),
        ..ChannelOptions::default()
    };
    let ch = Channel::new(server.listen_addr().unwrap(), options).unwrap();

    let recording = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let rejected = Arc::new(AtomicUsize::new(0));
    let caller = |end: Instant| {
        let (ch, recording, latencies, rejected) = (
            ch.clone(),
            recording.clone(),
            latencies.clone(),
            rejected.clone(),
        );
        std::thread::spawn(move || {
            while Instant::now() < end {
                let start = Instant::now();
                let r = ch.call_raw(
                    SERVICE,
                    "Echo",
                    &mut Controller::new(),
                    codec::encode(&req("x")),
                );
                let took = start.elapsed();
                let on = recording.load(Ordering::Relaxed);
                match r {
                    Ok(_) if on => latencies.lock().unwrap().push(took),
                    Ok(_) => {}
                    Err(e) if e.code == errno::ELIMIT => {
                        if on {
                            rejected.fetch_add(1, Ordering::Relaxed);
                        }
                        // A rejected caller comes back a little later.
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        })
    };
    // Calm: the limiter learns the unloaded latency and the peak qps.
    let calm = Instant::now() + Duration::from_secs(2);
    let mut threads: Vec<_> = (0..CALM_CALLERS).map(|_| caller(calm)).collect();
    std::thread::sleep(calm.saturating_duration_since(Instant::now()));
    // Overload: a second to settle, then two recorded.
    let end = Instant::now() + Duration::from_secs(3);
    threads.extend((0..OVERLOAD_CALLERS).map(|_| caller(end)));
    std::thread::sleep(Duration::from_secs(1));
    recording.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap());
    assert!(!latencies.is_empty(), "no call was admitted under overload");
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    Run {
        p99,
        admitted: latencies.len(),
        rejected: rejected.load(Ordering::Relaxed),
    }
}

#[test]
fn auto_limiter_keeps_the_admitted_p99_low_under_overload() {
    let unlimited = run(AdaptiveMaxConcurrency::Unlimited);
    let auto = run(AdaptiveMaxConcurrency::auto());
    let report = format!(
        "unlimited: p99 {:?}, {} admitted, {} rejected; auto: p99 {:?}, {} admitted, {} rejected",
        unlimited.p99,
        unlimited.admitted,
        unlimited.rejected,
        auto.p99,
        auto.admitted,
        auto.rejected
    );
    eprintln!("{report}");
    // Without a limit nothing is rejected and the queue grows: at least
    // half of the 80 ms the queue's arithmetic gives.
    assert_eq!(unlimited.rejected, 0, "{report}");
    let queued = WORK * (OVERLOAD_CALLERS / CAPACITY) as u32;
    assert!(unlimited.p99 >= queued / 2, "{report}");
    // With `auto` the excess is rejected and the admitted stay fast.
    assert!(auto.rejected > 0, "{report}");
    assert!(auto.p99 < AUTO_P99_BOUND, "{report}");
    assert!(auto.p99 * 2 < unlimited.p99, "{report}");
}
