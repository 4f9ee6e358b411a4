//! `fibrpc-echo-bench`: closed-loop TCP echo load generator for comparing
//! fibrpc's echo server with tokio's and may's.
//!
//! Each of C connections sends S bytes, waits until S bytes came back, and
//! repeats. Connections are spread over T threads, each driving its share
//! with one edge-triggered epoll and no allocation per request: on a 2-core
//! machine the generator competes with the server for CPU, so its own cost
//! is part of every figure (it reports it as `gen_cpu_per_100k`).
//!
//! Phases, all bounded in time: connect (at most `--connect-timeout`), warm
//! up, then the measured window, after which it stops by itself. It prints
//! one human-readable line and one `RESULT {json}` line on stdout. See
//! `--help` for the flags and `benches/net/run.sh` for the full comparison.

mod connect;
mod load;
mod opts;
mod report;
mod tally;

use fibrpc_bench_net::proc_stats;
use load::Schedule;
use opts::Opts;
use report::{Report, ServerUsage};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tally::Tally;

/// How often `--idle` samples the server's RSS.
const RSS_SAMPLE_PERIOD: Duration = Duration::from_millis(100);

/// Where the main thread and the generator threads meet: once when all have
/// connected (or given up), once more when the schedule is set.
struct Gate {
    barrier: Barrier,
    schedule: OnceLock<Schedule>,
    connected: AtomicUsize,
}

/// What one generator thread hands back.
struct ThreadResult {
    tally: Tally,
    connect_failures: usize,
    error: Option<String>,
}

fn main() -> ExitCode {
    exit_on_panic();
    let opts = Opts::from_env();
    let server = opts.server_pid;
    let rss_before = server.and_then(|pid| proc_stats::rss_kb(pid).ok());
    let start = Instant::now();
    let gate = Arc::new(Gate {
        barrier: Barrier::new(opts.threads + 1),
        schedule: OnceLock::new(),
        connected: AtomicUsize::new(0),
    });
    let threads = spawn_generators(&opts, start + opts.connect_timeout, &gate);
    gate.barrier.wait();
    let connected = gate.connected.load(Ordering::Relaxed);
    let connect_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "[{}] connected {connected}/{} in {connect_secs:.2} s",
        opts.label, opts.connections
    );
    let now = Instant::now();
    let schedule = Schedule {
        window_start: now + opts.warmup,
        window_end: now + opts.warmup + opts.duration,
    };
    if gate.schedule.set(schedule).is_err() {
        unreachable!("only the main thread sets the schedule, once");
    }
    gate.barrier.wait();

    sleep_until(schedule.window_start);
    let before = CpuClocks::read(server);
    let rss_peak = watch_rss(server, schedule.window_end, opts.idle);
    let after = CpuClocks::read(server);
    let rss_end = server.and_then(|pid| proc_stats::rss_kb(pid).ok());

    let mut report = Report::new(&opts, connected, connect_secs);
    let mut per_thread = Vec::with_capacity(threads.len());
    for thread in threads {
        let result = thread.join().expect("generator threads exit on panic");
        per_thread.push(result.tally.requests());
        report.tally.merge(&result.tally);
        report.connect_failures += result.connect_failures;
        report.error = result.error.or(report.error.take());
    }
    // Threads with equal shares should finish about equal work; a lopsided
    // split means one of them was starved of CPU and skews the latencies.
    if !opts.idle {
        let label = &opts.label;
        eprintln!("[{label}] requests per generator thread: {per_thread:?}");
    }
    report.gen_cpu_s = difference(before.generator, after.generator);
    report.machine_busy_s = difference(before.machine, after.machine);
    report.server = server.map(|_| ServerUsage {
        cpu_s: difference(before.server, after.server),
        rss_before_kib: rss_before,
        rss_kib: rss_end,
        rss_peak_kib: rss_peak,
    });
    report.print();
    if connected == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Starts the generator threads, C split over T of them (shares differ by
/// at most one connection).
fn spawn_generators(
    opts: &Opts,
    connect_deadline: Instant,
    gate: &Arc<Gate>,
) -> Vec<JoinHandle<ThreadResult>> {
    (0..opts.threads)
        .map(|i| {
            let share = (opts.connections + opts.threads - 1 - i) / opts.threads;
            let (gate, addr, size, idle) = (Arc::clone(gate), opts.addr, opts.size, opts.idle);
            std::thread::Builder::new()
                .name(format!("gen-{i}"))
                .spawn(move || generate(addr, share, size, connect_deadline, idle, &gate))
                .expect("spawning a generator thread")
        })
        .collect()
}

/// One generator thread: connect its share, wait for the others, run the
/// closed loop (or with `idle`, just hold the connections) until the window
/// ends.
fn generate(
    addr: SocketAddr,
    share: usize,
    size: usize,
    connect_deadline: Instant,
    idle: bool,
    gate: &Gate,
) -> ThreadResult {
    let mut result = ThreadResult {
        tally: Tally::new(),
        connect_failures: 0,
        error: None,
    };
    let streams = match connect::connect_all(addr, share, connect_deadline) {
        Ok(connected) => {
            result.connect_failures = connected.failures;
            result.error = connected.last_error.map(|e| format!("connect: {e}"));
            connected.streams
        }
        Err(e) => {
            result.connect_failures = share;
            result.error = Some(format!("connect phase: {e}"));
            Vec::new()
        }
    };
    gate.connected.fetch_add(streams.len(), Ordering::Relaxed);
    gate.barrier.wait();
    gate.barrier.wait();
    let schedule = *gate.schedule.get().expect("set before the second wait");
    if idle {
        // Each connection has echoed its probe (see `connect`), so the
        // server holds it as an accepted, idle connection.
        sleep_until(schedule.window_end);
        return result;
    }
    match load::run(streams, size, schedule) {
        Ok(tally) => result.tally = tally,
        Err(e) => result.error = Some(format!("load loop: {e}")),
    }
    result
}

/// Sleeps until `deadline`; with `sample` set, reads the server's RSS every
/// `RSS_SAMPLE_PERIOD` meanwhile and returns the highest value seen.
fn watch_rss(server: Option<u32>, deadline: Instant, sample: bool) -> Option<u64> {
    let Some(pid) = server.filter(|_| sample) else {
        sleep_until(deadline);
        return None;
    };
    let mut peak = None;
    loop {
        peak = peak.max(proc_stats::rss_kb(pid).ok());
        let now = Instant::now();
        if now >= deadline {
            return peak;
        }
        std::thread::sleep(RSS_SAMPLE_PERIOD.min(deadline - now));
    }
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// CPU seconds used so far, read at both ends of the window.
struct CpuClocks {
    server: Option<f64>,
    generator: Option<f64>,
    machine: Option<f64>,
}

impl CpuClocks {
    fn read(server: Option<u32>) -> Self {
        Self {
            server: server.and_then(|pid| proc_stats::cpu_seconds(pid).ok()),
            generator: proc_stats::cpu_seconds(std::process::id()).ok(),
            machine: proc_stats::machine_busy_seconds().ok(),
        }
    }
}

fn difference(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}

/// A panicking generator thread would leave the others waiting at the gate
/// forever; the benchmark must stop by itself, so any panic ends the process.
fn exit_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
}
