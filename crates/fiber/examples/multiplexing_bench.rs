//! The classic select / poll / epoll chart: how long it takes to serve 100
//! active descriptors when N idle ones are watched too, for N = 100, 1k,
//! 5k, 10k. It prints a table and writes an SVG plot.
//!
//! ```sh
//! cargo run --release -p fibrpc-fiber --example multiplexing_bench
//! cargo run --release -p fibrpc-fiber --example multiplexing_bench -- \
//!     --quick --sizes 100,1000,5000,10000 --out target/multiplexing.svg
//! ```
//!
//! About 20 s by default, 2 s with `--quick`; the SVG goes to
//! `target/multiplexing.svg` (relative to the current directory) unless
//! `--out` says otherwise.
//!
//! # What is measured
//!
//! The descriptors are unix socketpair ends. The N idle ones are both ends
//! of N/2 pairs: never written to, never readable, yet watched. The 100
//! active ones are one end of 100 more pairs, spread evenly among the idle
//! ones. One iteration:
//!
//! 1. writes one byte into the peer of each active end (not timed);
//! 2. **timed:** calls the mechanism until all 100 have been reported
//!    (one call, in practice) and collects the ready descriptors from its
//!    answer: the wait plus the dispatch scan of a server's event loop;
//! 3. reads the byte back from each (not timed: the same for every
//!    mechanism), which makes them idle again.
//!
//! Each mechanism is used as a real server uses it:
//!
//! - `select`: the `fd_set` is rebuilt from the watched list before each
//!   call and every watched descriptor is tested afterwards. Only where all
//!   N + 100 descriptor numbers are below `FD_SETSIZE` (1024): with the
//!   default sizes that is N = 100, plus the largest N that fits (about
//!   920), which the benchmark adds so the select curve has an end.
//! - `poll`: one persistent `pollfd` array of all N + 100; the kernel
//!   walks all of it on every call and so does the scan for `revents`.
//! - `epoll`: every descriptor is registered once (not timed);
//!   `epoll_wait` returns the ready ones only. Measured both
//!   edge-triggered (`EPOLLET`, what bRPC's and fibrpc's dispatcher use)
//!   and level-triggered.
//!
//! Per N and mechanism the iterations run in 5 rounds that alternate
//! between the mechanisms (so a burst of load on a shared machine hits all
//! of them), for about 1 s in all; the figure is the median iteration, and
//! the median divided by 100 is the cost per active descriptor.
//!
//! # Reading the chart
//!
//! Both axes are logarithmic. x is the number of idle descriptors N, y the
//! median time per iteration in µs (left) or per active descriptor in ns
//! (right). A curve that rises one decade per decade of N costs in
//! proportion to N: select and poll, whose cost is the scan of every
//! watched descriptor, idle or not. A flat curve costs in proportion to the
//! active descriptors only: epoll. The dashed vertical line is where
//! select runs out of `FD_SETSIZE`. At small N all of them cost about the
//! same, because the 100 active descriptors dominate.
//!
//! # Descriptors
//!
//! N = 10k needs about 10.2k descriptors. The soft `RLIMIT_NOFILE` is
//! raised to the hard limit at start; an N that still does not fit is
//! scaled down to one that does, with a message.

#[path = "multiplexing_bench/fds.rs"]
mod fds;
#[path = "multiplexing_bench/mechanisms.rs"]
mod mechanisms;
#[path = "multiplexing_bench/svg.rs"]
mod svg;

use fds::{Descriptors, NofileLimit};
use mechanisms::{Kind, Mechanism};
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Active descriptors per iteration.
const ACTIVE: usize = 100;
const DEFAULT_SIZES: [usize; 4] = [100, 1_000, 5_000, 10_000];
/// Measurement time per (N, mechanism), at most; less if many sizes would
/// take the whole run past the total budget.
const POINT_BUDGET: Duration = Duration::from_secs(1);
const TOTAL_BUDGET: Duration = Duration::from_secs(20);
const QUICK_TOTAL_BUDGET: Duration = Duration::from_secs(2);
/// Rounds that alternate between mechanisms.
const ROUNDS: u32 = 5;
/// Iterations at the start of each round that are not recorded (caches,
/// branch predictors, the epoll ready list after registration).
const WARMUP: usize = 2;
/// Recorded iterations per round however short the budget.
const MIN_SAMPLES: usize = 5;

const USAGE: &str = "usage: multiplexing_bench [--quick] [--sizes 100,1000,5000,10000] \
                     [--out target/multiplexing.svg]";

struct Options {
    sizes: Vec<usize>,
    quick: bool,
    out: PathBuf,
}

fn parse_sizes(list: &str) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--sizes {list:?}: {e}"))
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        sizes: DEFAULT_SIZES.to_vec(),
        quick: false,
        out: PathBuf::from("target/multiplexing.svg"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--sizes" => opts.sizes = parse_sizes(&value()?)?,
            "--out" => opts.out = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(opts)
}

/// The idle counts to measure: the requested ones, scaled down to what the
/// descriptor limit allows, plus the largest count `select` can watch if a
/// requested count just misses it (N = 1000 needs 1100 of the 1024 slots).
fn plan_sizes(requested: &[usize], limit: &NofileLimit) -> Vec<usize> {
    let max = fds::max_idle(limit, ACTIVE);
    let mut plan: Vec<usize> = requested.iter().map(|&n| n.min(max)).collect();
    for &n in requested.iter().filter(|&&n| n > max) {
        eprintln!(
            "N = {n} does not fit: RLIMIT_NOFILE is {} (hard {}) and {} idle descriptors \
             are the most that fit next to {ACTIVE} active ones and their peers; \
             measuring N = {max} instead",
            limit.soft, limit.hard, max
        );
    }
    let cap = fds::select_max_idle(ACTIVE);
    if cap > 0 && plan.iter().any(|&n| n > cap && n <= libc::FD_SETSIZE) {
        eprintln!(
            "select: N + {ACTIVE} descriptors must all be below FD_SETSIZE = {}; \
             adding N = {cap}, the most that fits",
            libc::FD_SETSIZE
        );
        plan.push(cap);
    }
    plan.sort_unstable();
    plan.dedup();
    plan
}

struct Stats {
    median_ns: f64,
    p10_ns: f64,
    p90_ns: f64,
    samples: usize,
}

impl Stats {
    fn of(mut ns: Vec<f64>) -> Self {
        ns.sort_by(f64::total_cmp);
        let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize];
        Self {
            median_ns: at(0.5),
            p10_ns: at(0.1),
            p90_ns: at(0.9),
            samples: ns.len(),
        }
    }
}

/// One cell of the chart: a mechanism at one N, or why it was skipped.
struct Point {
    n_idle: usize,
    kind: Kind,
    outcome: Result<Stats, String>,
}

impl Point {
    fn skipped(n_idle: usize, kind: Kind, why: String) -> Self {
        Self {
            n_idle,
            kind,
            outcome: Err(why),
        }
    }
}

/// One iteration; returns the timed wait+dispatch part in ns.
fn iteration(fds: &Descriptors, mech: &mut dyn Mechanism, ready: &mut Vec<RawFd>) -> f64 {
    fds.make_active_readable();
    let t = Instant::now();
    mech.wait(ACTIVE, ready);
    let ns = t.elapsed().as_nanos() as f64;
    assert_eq!(ready.len(), ACTIVE, "reported ready: {}", ready.len());
    fds.drain(ready);
    ns
}

/// Runs iterations for `budget` of wall time (setup and the untimed parts
/// included, so the whole run stays bounded), recording into `out`.
fn run_round(fds: &Descriptors, kind: Kind, budget: Duration, out: &mut Vec<f64>) {
    let mut mech = kind.prepare(fds.watched()).expect("set up the mechanism");
    let mut ready = Vec::with_capacity(2 * ACTIVE);
    let start = Instant::now();
    let mut i = 0;
    while i < WARMUP + MIN_SAMPLES || start.elapsed() < budget {
        let ns = iteration(fds, &mut *mech, &mut ready);
        if i >= WARMUP {
            out.push(ns);
        }
        i += 1;
    }
}

fn select_fits(fds: &Descriptors) -> bool {
    (fds.max_watched() as usize) < libc::FD_SETSIZE
}

/// Measures every mechanism that applies at `n_idle` for `budget` each.
fn measure_size(n_idle: usize, nofile: usize, budget: Duration) -> Vec<Point> {
    eprintln!("N = {n_idle}: {} watched descriptors", n_idle + ACTIVE);
    let fds = Descriptors::new(n_idle, ACTIVE, nofile).expect("create socketpairs");
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|&k| k != Kind::Select || select_fits(&fds))
        .collect();
    let mut samples: Vec<Vec<f64>> = kinds.iter().map(|_| Vec::new()).collect();
    for round in 0..ROUNDS as usize {
        // Rotate who goes first so no mechanism always follows another.
        for i in 0..kinds.len() {
            let k = (i + round) % kinds.len();
            run_round(&fds, kinds[k], budget / ROUNDS, &mut samples[k]);
        }
    }
    let mut points: Vec<Point> = kinds
        .iter()
        .zip(samples)
        .map(|(&kind, ns)| Point {
            n_idle,
            kind,
            outcome: Ok(Stats::of(ns)),
        })
        .collect();
    if !kinds.contains(&Kind::Select) {
        let why = format!("fd {} >= FD_SETSIZE", fds.max_watched());
        points.insert(0, Point::skipped(n_idle, Kind::Select, why));
    }
    points
}

/// Measurement time per (N, mechanism): `POINT_BUDGET`, or less so that
/// the whole plan fits the total budget.
fn point_budget(plan: &[usize], quick: bool) -> Duration {
    let cap = fds::select_max_idle(ACTIVE);
    let others = Kind::ALL.len() - 1;
    let points: usize = plan.iter().map(|&n| others + usize::from(n <= cap)).sum();
    let total = if quick {
        QUICK_TOTAL_BUDGET
    } else {
        TOTAL_BUDGET
    };
    POINT_BUDGET.min(total / points.max(1) as u32)
}

fn print_table(points: &[Point]) {
    println!("| N idle | fds watched | mechanism | median µs/iter | ns per active fd | p10–p90 µs | samples |");
    println!("|---:|---:|---|---:|---:|---:|---:|");
    for p in points {
        let head = format!("| {} | {} | {}", p.n_idle, p.n_idle + ACTIVE, p.kind.name());
        match &p.outcome {
            Ok(s) => println!(
                "{head} | {:.1} | {:.0} | {:.1}–{:.1} | {} |",
                s.median_ns / 1e3,
                s.median_ns / ACTIVE as f64,
                s.p10_ns / 1e3,
                s.p90_ns / 1e3,
                s.samples
            ),
            Err(why) => println!("{head} | — | — | skipped: {why} | |"),
        }
    }
}

fn median_of(points: &[Point], n_idle: usize, kind: Kind) -> Option<f64> {
    let p = points
        .iter()
        .find(|p| p.n_idle == n_idle && p.kind == kind)?;
    p.outcome.as_ref().ok().map(|s| s.median_ns)
}

/// "At N = 10000: poll 280x, epoll LT 1.0x the time of epoll ET."
fn print_ratios(points: &[Point], n_idle: usize) {
    let Some(base) = median_of(points, n_idle, Kind::EpollEt) else {
        return;
    };
    let others = [Kind::Select, Kind::Poll, Kind::EpollLt].into_iter();
    let ratios: Vec<String> = others
        .filter_map(|k| {
            Some(format!(
                "{} {:.1}x",
                k.name(),
                median_of(points, n_idle, k)? / base
            ))
        })
        .collect();
    println!(
        "At N = {n_idle}: {} the time of epoll ET.",
        ratios.join(", ")
    );
}

/// The headline ratios: at the largest N select could do, and at the
/// largest N.
fn print_summary(points: &[Point]) {
    let largest = |k: Kind| {
        let ok = points.iter().filter(|p| p.kind == k && p.outcome.is_ok());
        ok.map(|p| p.n_idle).max()
    };
    println!();
    let select_end = largest(Kind::Select);
    if let Some(n) = select_end {
        print_ratios(points, n);
    }
    match largest(Kind::EpollEt) {
        Some(n) if Some(n) != select_end => print_ratios(points, n),
        _ => {}
    }
}

fn style(kind: Kind) -> (&'static str, &'static str, svg::Marker) {
    match kind {
        Kind::Select => ("#d95f02", "", svg::Marker::Square),
        Kind::Poll => ("#c0392b", "", svg::Marker::Circle),
        Kind::EpollEt => ("#1f5fa8", "", svg::Marker::Diamond),
        Kind::EpollLt => ("#27a0a8", "7 4", svg::Marker::Triangle),
    }
}

fn chart_series(points: &[Point]) -> Vec<svg::Series> {
    Kind::ALL
        .into_iter()
        .map(|kind| {
            let (color, dash, marker) = style(kind);
            // N = 0 has no place on a log axis; the table still shows it.
            let pts = points.iter().filter(|p| p.kind == kind && p.n_idle > 0);
            let ok = pts.filter_map(|p| Some((p.n_idle as f64, p.outcome.as_ref().ok()?)));
            svg::Series {
                name: kind.name().to_string(),
                color,
                dash,
                marker,
                points: ok.map(|(n, s)| (n, s.median_ns / 1e3)).collect(),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

fn write_chart(points: &[Point], out: &PathBuf) -> std::io::Result<()> {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let subtitle = format!(
        "median wait + dispatch time per iteration; unix socketpairs; \
         epoll ET = edge-, LT = level-triggered; Linux {}, {cpus} CPUs",
        kernel.trim()
    );
    let series = chart_series(points);
    if series.is_empty() {
        return Err(std::io::Error::other("no point to plot"));
    }
    let select_end = format!("FD_SETSIZE = {}: select ends", libc::FD_SETSIZE);
    let chart = svg::Chart {
        title: "Serving 100 active descriptors among N idle ones",
        subtitle: &subtitle,
        x_label: "idle descriptors N (log scale)",
        y_label: "µs per iteration (log scale)",
        y2_label: "ns per active descriptor",
        y2_per_y: 1e3 / ACTIVE as f64,
        x_marker: Some(((libc::FD_SETSIZE - ACTIVE) as f64, &select_end)),
        series: &series,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, svg::render(&chart))
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| {
        eprintln!("{e}\n{USAGE}");
        std::process::exit(2);
    });
    let limit = fds::raise_nofile_limit().expect("getrlimit(RLIMIT_NOFILE)");
    eprintln!(
        "RLIMIT_NOFILE: soft {} (was {}), hard {}",
        limit.soft, limit.was, limit.hard
    );
    let plan = plan_sizes(&opts.sizes, &limit);
    let budget = point_budget(&plan, opts.quick);
    eprintln!("{budget:?} per (N, mechanism), {ACTIVE} active descriptors");
    let points: Vec<Point> = plan
        .iter()
        .flat_map(|&n| measure_size(n, limit.soft, budget))
        .collect();
    print_table(&points);
    print_summary(&points);
    match write_chart(&points, &opts.out) {
        Ok(()) => println!("\nchart: {}", opts.out.display()),
        Err(e) => eprintln!("writing {}: {e}", opts.out.display()),
    }
}
