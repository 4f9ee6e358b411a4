//! `redis_client_bench`: closed-loop GET/SET load on one redis server from
//! `--callers` concurrent callers, through fibrpc's `RedisChannel` (fibers,
//! one pipelined connection) or the `redis` crate's multiplexed tokio
//! connection (tasks on a 2-worker runtime, one connection) — the same
//! shape on both sides. Half the calls are `SET bench:kN value`, half
//! `GET bench:kN`, over `--keys` keys.
//!
//! ```text
//! redis_client_bench --server 127.0.0.1:6379 --client fibrpc|redis-rs
//!     [--callers 16] [--duration 10] [--keys 1000] [--value-size 16]
//!     [--connection-type per_worker|single]
//! ```
//!
//! fibrpc's channel uses a connection per fiber worker by default
//! (`ConnectionType::PerWorker`): the callers of each worker pipeline on
//! their own connection, whose responses are read on that worker, as the
//! redis crate's callers share one connection driven by one task.
//!
//! Prints `RESULT {"client":...,"ops":N,"ops_per_s":X,"cpu_us_per_op":Y,"errors":E}`
//! (the client process's own CPU per operation, from `/proc/self/stat`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::redis::{RedisChannel, RedisReply, RedisRequest};
use fibrpc::{ChannelOptions, ConnectionType, Controller};
use fibrpc_tools::proc_stats::cpu_seconds;

/// Closed-loop GET/SET load on one redis server.
#[derive(clap::Parser)]
#[command(name = "redis_client_bench")]
struct Flags {
    /// The redis server, HOST:PORT.
    #[arg(long)]
    server: String,
    /// Whose client: fibrpc's RedisChannel or the redis crate's.
    #[arg(long, value_parser = ["fibrpc", "redis-rs"])]
    client: String,
    /// Concurrent callers.
    #[arg(long, default_value_t = 16)]
    callers: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Keys the calls spread over.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Bytes of each SET's value.
    #[arg(long, default_value_t = 16)]
    value_size: usize,
    /// fibrpc's connections: `per_worker` (one per fiber worker, each
    /// worker's callers pipelined on their own) or `single` (one for all).
    #[arg(long, default_value = "per_worker")]
    connection_type: ConnectionType,
}

struct Config {
    server: String,
    client: String,
    callers: usize,
    duration: Duration,
    keys: u64,
    value: Vec<u8>,
    connection_type: ConnectionType,
}

/// Counts of one run.
#[derive(Default)]
struct Counts {
    ops: AtomicU64,
    errors: AtomicU64,
}

fn main() {
    let f = <Flags as clap::Parser>::parse();
    let c = Config {
        server: f.server,
        client: f.client,
        callers: f.callers,
        duration: Duration::from_secs_f64(f.duration),
        keys: f.keys,
        value: vec![b'x'; f.value_size],
        connection_type: f.connection_type,
    };
    let counts = Arc::new(Counts::default());
    let pid = std::process::id();
    let cpu0 = cpu_seconds(pid).unwrap_or(0.0);
    let start = Instant::now();
    match c.client.as_str() {
        "fibrpc" => run_fibrpc(&c, &counts),
        _ => run_redis_rs(&c, &counts),
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let ops = counts.ops.load(Ordering::Relaxed);
    let errors = counts.errors.load(Ordering::Relaxed);
    println!(
        "{}: {ops} ops in {elapsed:.2} s = {:.0} ops/s, client CPU {:.2} us/op, errors {errors}",
        c.client,
        ops as f64 / elapsed,
        cpu * 1e6 / ops.max(1) as f64
    );
    println!(
        "RESULT {{\"client\":\"{}\",\"ops\":{ops},\"ops_per_s\":{:.1},\"cpu_us_per_op\":{:.3},\"errors\":{errors}}}",
        c.client,
        ops as f64 / elapsed,
        cpu * 1e6 / ops.max(1) as f64
    );
}

/// The key and whether to SET for a caller's `i`-th call.
fn op(caller: usize, i: u64, keys: u64) -> (String, bool) {
    let k = (i
        .wrapping_mul(2654435761)
        .wrapping_add(caller as u64 * 7919))
        % keys;
    (format!("bench:k{k}"), i.is_multiple_of(2))
}

fn run_fibrpc(c: &Config, counts: &Arc<Counts>) {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        connection_type: c.connection_type,
        ..Default::default()
    };
    let ch = RedisChannel::new(c.server.as_str(), options).expect("channel");
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..c.callers)
        .map(|caller| {
            let (ch, counts, stop, keys, value) = (
                ch.clone(),
                counts.clone(),
                stop.clone(),
                c.keys,
                c.value.clone(),
            );
            fibrpc::fiber::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (key, set) = op(caller, i, keys);
                    let mut req = RedisRequest::new();
                    if set {
                        req.add_command(&[&b"SET"[..], key.as_bytes(), &value]);
                    } else {
                        req.add_command(&[&b"GET"[..], key.as_bytes()]);
                    }
                    match ch.call(&mut Controller::new(), &req) {
                        Ok(r) if !r.reply(0).is_some_and(RedisReply::is_error) => {
                            counts.ops.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            counts.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(c.duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
}

fn run_redis_rs(c: &Config, counts: &Arc<Counts>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let client = redis::Client::open(format!("redis://{}/", c.server)).expect("client");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = (0..c.callers)
            .map(|caller| {
                let (mut conn, counts, stop, keys, value) = (
                    conn.clone(),
                    counts.clone(),
                    stop.clone(),
                    c.keys,
                    c.value.clone(),
                );
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let (key, set) = op(caller, i, keys);
                        let r = if set {
                            redis::cmd("SET")
                                .arg(&key)
                                .arg(&value[..])
                                .query_async::<()>(&mut conn)
                                .await
                        } else {
                            redis::cmd("GET")
                                .arg(&key)
                                .query_async::<Option<Vec<u8>>>(&mut conn)
                                .await
                                .map(|_| ())
                        };
                        match r {
                            Ok(()) => counts.ops.fetch_add(1, Ordering::Relaxed),
                            Err(_) => counts.errors.fetch_add(1, Ordering::Relaxed),
                        };
                        i += 1;
                    }
                })
            })
            .collect();
        tokio::time::sleep(c.duration).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
    });
}
