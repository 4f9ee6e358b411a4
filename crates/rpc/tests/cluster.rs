//! The cluster client: `Channel::with_naming` over real fibrpc servers on
//! 127.0.0.1 — load spread, isolation of a killed replica and its
//! re-admission by the health check, retries to another replica, a
//! naming service's list change, and etcd registration end to end.

mod etcd_common;
mod rpc_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_common::{wait_until, Etcd};
use fibrpc::{Channel, ChannelOptions, Controller, Server, ServerOptions};
use rpc_common::{echo, req, Echo};

/// A running echo server and its handler-call counter.
struct Replica {
    server: Server,
    calls: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl Replica {
    /// An echo server on `addr` (port 0: any free port).
    fn start_on(addr: &str, options: ServerOptions) -> Replica {
        let echo = Echo::default();
        let calls = echo.calls.clone();
        let mut server = Server::new(options);
        server.add_service(echo).unwrap();
        server.start(addr).unwrap();
        let addr = server.listen_addr().unwrap();
        Replica {
            server,
            calls,
            addr,
        }
    }

    fn start() -> Replica {
        Replica::start_on("127.0.0.1:0", ServerOptions::default())
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Stops the server and waits until it is gone.
    fn kill(mut self) -> SocketAddr {
        self.server.stop();
        self.server.join();
        self.addr
    }
}

fn list_url(replicas: &[&Replica]) -> String {
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.to_string()).collect();
    format!("list://{}", addrs.join(","))
}

/// An address nothing listens on (bound, then closed).
fn dead_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn options(max_retry: u32, idempotent: bool) -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_secs(2)),
        max_retry,
        idempotent: Some(idempotent),
        health_check_interval: Duration::from_millis(200),
        ..ChannelOptions::default()
    }
}

/// One echo call; its controller and whether it succeeded.
fn call(ch: &Channel) -> (Controller, bool) {
    let mut cntl = Controller::new();
    let ok = echo(ch, &mut cntl, &req("hi")).is_ok();
    (cntl, ok)
}

/// `threads` threads calling `ch` until `stop` (each at most 20 000
/// calls or 20 s); returns the failure count when joined.
struct Load {
    stop: Arc<AtomicBool>,
    failures: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(ch: &Channel, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (ch, stop, failures, done) =
                    (ch.clone(), stop.clone(), failures.clone(), done.clone());
                std::thread::spawn(move || {
                    let t0 = Instant::now();
                    for _ in 0..20_000 {
                        if stop.load(Ordering::Relaxed) || t0.elapsed() > Duration::from_secs(20) {
                            break;
                        }
                        let (cntl, ok) = call(&ch);
                        if !ok {
                            eprintln!("failed: {:?}", cntl.error());
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            failures,
            done,
            threads,
        }
    }

    /// Waits until `n` more calls completed (at most 5 s).
    fn wait_calls(&self, n: usize) {
        let target = self.done.load(Ordering::Relaxed) + n;
        wait_until(Duration::from_secs(5), || {
            self.done.load(Ordering::Relaxed) >= target
        });
    }

    fn failures(&self) -> usize {
        self.failures.load(Ordering::Relaxed)
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        self.failures.load(Ordering::Relaxed)
    }
}

#[test]
fn round_robin_spreads_calls_evenly() {
    let r: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let ch =
        Channel::with_naming(&list_url(&[&r[0], &r[1], &r[2]]), "rr", options(3, false)).unwrap();
    for _ in 0..300 {
        assert!(call(&ch).1);
    }
    let counts: Vec<usize> = r.iter().map(Replica::calls).collect();
    assert_eq!(counts, vec![100, 100, 100]);
}

/// `out_msg` and `out_writes` summed over this process's connections
/// to `replicas`, from `/connections` on the first one's console.
fn client_write_counters(replicas: &[Replica]) -> (u64, u64) {
    let mut c = std::net::TcpStream::connect(replicas[0].addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /connections HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    c.read_to_string(&mut page).unwrap();
    let mut lines = page.lines().skip_while(|l| !l.contains("out_writes"));
    let header: Vec<&str> = lines.next().expect("a table").split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (remote, msgs, writes) = (col("remote"), col("out_msg"), col("out_writes"));
    let to_replica: Vec<String> = replicas.iter().map(|r| r.addr.to_string()).collect();
    lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|r| r.len() == header.len() && to_replica.contains(&r[remote].to_string()))
        .fold((0, 0), |(m, w), r| {
            (
                m + r[msgs].parse::<u64>().unwrap(),
                w + r[writes].parse::<u64>().unwrap(),
            )
        })
}

/// The callers one read of responses wakes send their next requests in a
/// few `writev`s although rr spreads them over three replicas: a run of
/// picks goes to one replica, and a writer to any replica of the channel
/// waits behind the woken callers still queued. Picked one replica per
/// call with only the callers woken by the same connection waited for,
/// two of three requests left alone (1.3 to 1.5 requests per `writev`; 3 to 6 now).
/// As with the server's batching, an idle worker stealing callers breaks
/// batches up, more so on a loaded machine: the best of four tries counts.
#[test]
fn callers_woken_together_write_together_across_replicas() {
    const CALLERS: usize = 16;
    const CALLS: usize = 300;
    let r: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let ch =
        Channel::with_naming(&list_url(&[&r[0], &r[1], &r[2]]), "rr", options(0, false)).unwrap();
    assert!(call(&ch).1);
    let mut per_write = Vec::new();
    for _ in 0..4 {
        let (m0, w0) = client_write_counters(&r);
        let fibers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let ch = ch.clone();
                fibrpc_fiber::Builder::new()
                    .spawn(move || (0..CALLS).all(|_| call(&ch).1))
                    .unwrap()
            })
            .collect();
        for f in fibers {
            assert!(f.join().unwrap(), "a call failed");
        }
        // The counters move after `writev` returns.
        let mut counters = (0, 0);
        let settled = wait_until(Duration::from_secs(10), || {
            counters = client_write_counters(&r);
            counters.0 - m0 == (CALLERS * CALLS) as u64
        });
        assert!(settled, "{counters:?} after {m0} messages");
        per_write.push((counters.0 - m0) as f64 / (counters.1 - w0) as f64);
        eprintln!("requests per writev: {per_write:?}");
        if per_write.last() > Some(&2.5) {
            break;
        }
    }
    assert!(
        per_write.iter().any(|&p| p > 2.5),
        "requests per writev: {per_write:?}"
    );
}

#[test]
fn unknown_balancer_or_naming_fails_clearly() {
    let e =
        Channel::with_naming("list://127.0.0.1:1", "nope", ChannelOptions::default()).unwrap_err();
    assert_eq!(e.code, libc::EINVAL);
    assert!(e.text.contains("unknown load balancer"), "{e}");
    let e =
        Channel::with_naming("zk://127.0.0.1:1/x", "rr", ChannelOptions::default()).unwrap_err();
    assert!(e.text.contains("unknown naming service"), "{e}");
}

#[test]
fn a_killed_replica_costs_no_call_and_comes_back_after_restart() {
    let mut r: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let ch =
        Channel::with_naming(&list_url(&[&r[0], &r[1], &r[2]]), "rr", options(3, true)).unwrap();
    let load = Load::start(&ch, 4);
    load.wait_calls(200);

    let killed = r.remove(1).kill();
    load.wait_calls(200);
    assert_eq!(load.failures(), 0, "no call fails when a replica dies");

    // Isolated: within 1 s, calls stop going there at all (no attempt,
    // so no retry either).
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..30 {
        let (cntl, ok) = call(&ch);
        assert!(ok);
        assert_eq!(
            cntl.retried_count(),
            0,
            "an attempt went to the dead replica"
        );
        assert_ne!(cntl.remote_side(), Some(killed));
    }

    // Back on the same port: it takes calls again within two health
    // check intervals (400 ms; asserted with room for a loaded machine).
    let back = Replica::start_on(&killed.to_string(), ServerOptions::default());
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || back.calls() > 0),
        "the restarted replica took no call within 3 s"
    );
    let took = t0.elapsed();
    eprintln!("restarted replica took calls after {took:?}");
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(load.finish(), 0, "no call failed");
    drop(back);
}

#[test]
fn without_retries_only_calls_around_the_kill_fail() {
    const THREADS: usize = 4;
    let mut r: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let ch =
        Channel::with_naming(&list_url(&[&r[0], &r[1], &r[2]]), "rr", options(0, true)).unwrap();
    let load = Load::start(&ch, THREADS);
    load.wait_calls(200);
    r.remove(0).kill();
    load.wait_calls(200);
    let failed = load.finish();
    eprintln!("{failed} calls failed around the kill");
    // Each caller may lose the call it had on the replica when it
    // stopped (refused as "stopping", or its connection closed) and one
    // more that picked the replica before its isolation was known.
    assert!(failed <= 2 * THREADS, "{failed} calls failed");

    for _ in 0..30 {
        assert!(call(&ch).1, "a call failed after the isolation");
    }
}

#[test]
fn a_refused_connect_is_retried_on_another_replica_even_if_not_idempotent() {
    let live = [Replica::start(), Replica::start()];
    let dead = dead_addr();
    let url = format!("list://{dead},{},{}", live[0].addr, live[1].addr);
    let ch = Channel::with_naming(&url, "rr", options(1, false)).unwrap();
    let mut retried = 0;
    for _ in 0..6 {
        let (cntl, ok) = call(&ch);
        assert!(ok, "{:?}", cntl.error());
        assert_ne!(cntl.remote_side(), Some(dead));
        if cntl.retried_count() > 0 {
            retried += 1;
            assert_eq!(
                cntl.attempt_errors()[0].code,
                libc::ECONNREFUSED,
                "{:?}",
                cntl.attempt_errors()
            );
        }
    }
    // The dead server is tried once, then isolated.
    assert_eq!(retried, 1);
    assert_eq!(live[0].calls() + live[1].calls(), 6);
}

#[test]
fn a_file_list_change_reaches_the_channel_within_a_second() {
    let r: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let path = std::env::temp_dir().join(format!("fibrpc-cluster-{}.list", std::process::id()));
    std::fs::write(&path, format!("{}\n{}\n", r[0].addr, r[1].addr)).unwrap();
    let ch = Channel::with_naming(
        &format!("file://{}", path.display()),
        "rr",
        options(3, true),
    )
    .unwrap();
    for _ in 0..20 {
        assert!(call(&ch).1);
    }
    assert_eq!((r[0].calls(), r[1].calls(), r[2].calls()), (10, 10, 0));

    std::fs::write(&path, format!("# only the third\n{}\n", r[2].addr)).unwrap();
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || {
            call(&ch);
            r[2].calls() > 0
        }),
        "the new list was not used within 1 s"
    );
    eprintln!("new list used after {:?}", t0.elapsed());
    let before = (r[0].calls(), r[1].calls());
    for _ in 0..10 {
        assert!(call(&ch).1);
    }
    assert_eq!(
        (r[0].calls(), r[1].calls()),
        before,
        "old servers still called"
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn servers_registered_in_etcd_are_reached_and_leave_at_stop() {
    let etcd = Etcd::new("cluster-client");
    let url = format!("etcd://{}/fibrpc/cluster", etcd.endpoint());
    let register = || ServerOptions {
        register: Some(url.clone()),
        ..ServerOptions::default()
    };
    let a = Replica::start_on("127.0.0.1:0", register());
    let b = Replica::start_on("127.0.0.1:0", register());
    let ch = Channel::with_naming(&url, "rr", options(3, true)).unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || {
            call(&ch);
            a.calls() > 0 && b.calls() > 0
        }),
        "both registered servers were not reached within 2 s: {} {}",
        a.calls(),
        b.calls()
    );

    let gone = a.kill();
    // The deregistration is seen (etcd is polled every 250 ms), then no
    // call goes to the server.
    let watcher = fibrpc::channel::naming::NamingWatcher::shared(&url).unwrap();
    assert!(
        wait_until(Duration::from_secs(1), || watcher
            .servers()
            .iter()
            .all(|n| n.addr != gone)),
        "the stopped server is still listed: {:?}",
        watcher.servers()
    );
    let before = b.calls();
    for _ in 0..20 {
        let (cntl, ok) = call(&ch);
        assert!(ok, "{:?}", cntl.error());
        assert_eq!(cntl.retried_count(), 0);
        assert_ne!(cntl.remote_side(), Some(gone));
    }
    assert_eq!(b.calls(), before + 20);
}

#[test]
fn with_every_server_isolated_calls_fail_fast_until_one_is_back() {
    let dead = dead_addr();
    let ch = Channel::with_naming(&format!("list://{dead}"), "rr", options(0, true)).unwrap();
    let (cntl, ok) = call(&ch);
    assert!(!ok);
    assert_eq!(cntl.error_code(), libc::ECONNREFUSED, "{:?}", cntl.error());
    let (cntl, ok) = call(&ch);
    assert!(!ok);
    assert_eq!(cntl.error_code(), libc::EHOSTDOWN, "{:?}", cntl.error());
    assert!(cntl.error_text().contains("isolated"), "{:?}", cntl.error());

    let back = Replica::start_on(&dead.to_string(), ServerOptions::default());
    assert!(
        wait_until(Duration::from_secs(2), || call(&ch).1),
        "the server was not re-admitted within 2 s"
    );
    assert!(back.calls() > 0);
}

#[test]
fn a_call_refused_by_a_stopping_replica_is_retried_on_another() {
    let mut a = Replica::start();
    let b = Replica::start();
    let url = list_url(&[&a, &b]);
    // Consistent hashing: without exclusion, a retry with the same code
    // would go to the same server.
    let ch = Channel::with_naming(&url, "c_murmurhash", options(1, false)).unwrap();
    // Codes are ring positions (hashes): spread the probes over the ring.
    let code_on_a = (0..64u64)
        .map(|k| fibrpc::channel::lb::murmur_hash32(&k.to_le_bytes()) as u64)
        .find(|&code| {
            let mut cntl = Controller::new();
            cntl.set_request_code(code);
            echo(&ch, &mut cntl, &req("probe")).is_ok() && cntl.remote_side() == Some(a.addr)
        })
        .expect("no request code maps to the first server");

    // A slow call keeps the stopping server from finishing its stop
    // (counted before it starts: it may arrive at once).
    let busy = a.calls() + 1;
    let slow = {
        let ch = ch.clone();
        std::thread::spawn(move || {
            let mut cntl = Controller::new();
            cntl.set_request_code(code_on_a);
            let mut r = req("slow");
            r.sleep_ms = Some(600);
            echo(&ch, &mut cntl, &r).is_ok()
        })
    };
    assert!(wait_until(Duration::from_secs(2), || a.calls() == busy));
    a.server.stop();

    // Answered ELOGOFF by the stopping server: sent again, to the other.
    let mut cntl = Controller::new();
    cntl.set_request_code(code_on_a);
    let r = echo(&ch, &mut cntl, &req("moved"));
    assert!(r.is_ok(), "{:?}", cntl.error());
    assert_eq!(cntl.remote_side(), Some(b.addr));
    assert_eq!(cntl.retried_count(), 1);
    assert_eq!(
        cntl.attempt_errors()[0].code,
        fibrpc::errno::ELOGOFF,
        "{:?}",
        cntl.attempt_errors()
    );
    assert!(
        slow.join().unwrap(),
        "the call in flight at the stop completes"
    );
    a.kill();
}

/// An echo service whose every call takes `delay`.
struct Slow {
    delay: Duration,
    calls: Arc<AtomicUsize>,
}

impl fibrpc::Service for Slow {
    fn service_name(&self) -> &'static str {
        rpc_common::SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(
        &self,
        _: usize,
        _: &mut Controller,
        request: &fibrpc::IOBuf,
    ) -> Result<fibrpc::IOBuf, fibrpc::RpcError> {
        let r: rpc_common::EchoRequest = fibrpc::codec::decode_request(request)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !self.delay.is_zero() {
            fibrpc::fiber::sleep(self.delay).unwrap();
        }
        Ok(fibrpc::codec::encode(&rpc_common::EchoResponse {
            message: r.message,
        }))
    }
}

#[test]
fn la_sends_a_stalled_replica_under_a_tenth_of_the_calls() {
    let delays = [0, 0, 200];
    let servers: Vec<(Server, Arc<AtomicUsize>)> = delays
        .iter()
        .map(|&ms| {
            let calls = Arc::new(AtomicUsize::new(0));
            let mut server = Server::new(ServerOptions::default());
            server
                .add_service(Slow {
                    delay: Duration::from_millis(ms),
                    calls: calls.clone(),
                })
                .unwrap();
            server.start("127.0.0.1:0").unwrap();
            (server, calls)
        })
        .collect();
    let addrs: Vec<String> = servers
        .iter()
        .map(|(s, _)| s.listen_addr().unwrap().to_string())
        .collect();
    let url = format!("list://{}", addrs.join(","));
    let ch = Channel::with_naming(&url, "la", options(0, true)).unwrap();
    let counts = || -> Vec<usize> {
        servers
            .iter()
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .collect()
    };
    let load = Load::start(&ch, 8);
    // Warm-up: la learns the latencies.
    std::thread::sleep(Duration::from_secs(1));
    let before = counts();
    std::thread::sleep(Duration::from_secs(3));
    let after = counts();
    assert_eq!(load.finish(), 0, "no call failed");
    let got: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let total: usize = got.iter().sum();
    eprintln!("calls per replica over 3 s: {got:?}");
    assert!(total > 100, "{got:?}");
    assert!(got[2] * 10 < total, "the stalled replica got {got:?}");
}
