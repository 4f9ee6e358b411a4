//! `fiber_bench`: fibrpc's fiber runtime side by side with tokio and may,
//! in one invocation: spawn, yield, ping-pong, mutex and channel costs.
//!
//! Every case runs on each runtime with the same worker count (2, or 1 for
//! the "1w" rows), is repeated several times, and the median is reported as
//! time per operation. The table gives the time ratios fibrpc/tokio and
//! fibrpc/may (below 1 = fibrpc faster) and the runtime's target for fibrpc.
//!
//! ```text
//! fiber_bench [--quick] [--case NAME[,NAME]]... [--runtime fibrpc|tokio|may]...
//!             [--reps N] [--target-ms T] [--list]
//! ```
//!
//! Progress and per-cell detail (min, max, spread, n) go to stderr; the
//! table, the effective-core probe and the notes of the median runs (task
//! placement, fibrpc's parks/signals/steals per operation) go to stdout.
//!
//! The mutex and channel rows use `fibrpc_fiber::sync` (feature `sync`, on
//! by default); built without it, fibrpc's column shows "n/a".

mod cases;
mod fib;
mod harness;
mod mayc;
mod tok;

use cases::Case;
use harness::{fmt_ns, measure, measure_interleaved, Budget, Sample, Stats};
use std::process::Command;
use std::time::{Duration, Instant};

/// Command-line options.
struct Opts {
    quick: bool,
    cases: Vec<Case>,
    budget: Budget,
    may_child: Option<Case>,
    /// Runtimes to measure (all by default); `--runtime fibrpc` is for
    /// profiling one runtime at a time.
    runtimes: Vec<String>,
}

/// The flags, as clap parses them.
#[derive(clap::Parser)]
#[command(name = "fiber_bench", after_help = cases_help())]
struct Flags {
    /// A few short runs of every path (a smoke test).
    #[arg(long)]
    quick: bool,
    /// Cases to run (repeatable, or comma-separated; default all).
    #[arg(long = "case", value_delimiter = ',', value_parser = parse_case)]
    cases: Vec<Case>,
    /// Runtimes to measure (repeatable, or comma-separated; default all).
    #[arg(long = "runtime", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(["fibrpc", "tokio", "may"]))]
    runtimes: Vec<String>,
    /// Runs per measurement.
    #[arg(long)]
    reps: Option<usize>,
    /// Target duration of one run, ms.
    #[arg(long)]
    target_ms: Option<u64>,
    /// Internal: measure one may case in this child process.
    #[arg(long, hide = true, value_parser = parse_case)]
    may_child: Option<Case>,
    /// List the cases and exit.
    #[arg(long)]
    list: bool,
}

fn cases_help() -> String {
    format!("cases: {}", Case::ALL.map(|c| c.key()).join(", "))
}

fn parse_case(s: &str) -> Result<Case, String> {
    Case::from_key(s).ok_or_else(|| format!("unknown case {s:?}; {}", cases_help()))
}

fn parse_opts() -> Opts {
    let flags = <Flags as clap::Parser>::parse();
    if flags.list {
        for c in Case::ALL {
            println!("{:<22} {}", c.key(), c.label());
        }
        std::process::exit(0)
    }
    let Flags {
        quick,
        mut cases,
        mut runtimes,
        reps,
        target_ms,
        may_child,
        ..
    } = flags;
    if cases.is_empty() {
        cases = Case::ALL.to_vec();
    }
    if runtimes.is_empty() {
        runtimes = ["fibrpc", "tokio", "may"].map(String::from).to_vec();
    }
    // Full run: 7 runs of ~120 ms per (case, runtime), about a minute in all.
    // Quick: 3 runs of ~5 ms, a smoke test of every path.
    let (def_reps, def_target) = if quick { (3, 5) } else { (7, 120) };
    Opts {
        quick,
        cases,
        budget: Budget {
            target: Duration::from_millis(target_ms.unwrap_or(def_target)),
            reps: reps.unwrap_or(def_reps).max(1),
        },
        may_child,
        runtimes,
    }
}

/// Child-process mode: measure one may case with a 1-worker scheduler and
/// print the stats on one line for the parent.
fn may_child(case: Case, opts: &Opts) {
    mayc::configure(1);
    let stats = measure(
        &mut |n| mayc::run(case, n),
        case.sizing(opts.quick),
        opts.budget,
    );
    match stats {
        Some(s) => println!(
            "MAYCHILD {} {} {} {} {} {}",
            s.median,
            s.min,
            s.max,
            s.n,
            s.reps,
            s.note.unwrap_or_default()
        ),
        None => println!("MAYCHILD none"),
    }
}

/// Runs a 1-worker may case in a child process (may's worker count is fixed
/// per process).
fn may_in_child(case: Case, opts: &Opts) -> Option<Stats> {
    let exe = std::env::current_exe().ok()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--may-child")
        .arg(case.key())
        .arg("--reps")
        .arg(opts.budget.reps.to_string())
        .arg("--target-ms")
        .arg(opts.budget.target.as_millis().to_string());
    if opts.quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("MAYCHILD "))?;
    let mut f = line.split(' ').skip(1);
    let median = f.next()?.parse().ok()?;
    let min = f.next()?.parse().ok()?;
    let max = f.next()?.parse().ok()?;
    let n = f.next()?.parse().ok()?;
    let reps = f.next()?.parse().ok()?;
    let note: String = f.collect::<Vec<_>>().join(" ");
    Some(Stats {
        median,
        min,
        max,
        n,
        reps,
        note: (!note.is_empty()).then_some(note),
    })
}

/// One row's results.
struct Row {
    case: Case,
    fib: Option<Stats>,
    tok: Option<Stats>,
    may: Option<Stats>,
}

fn report(case: Case, who: &str, s: &Option<Stats>) {
    match s {
        Some(s) => eprintln!(
            "  {:<22} {:<7} median {:>10}  min {:>10}  max {:>10}  spread {:>5.1}%  n={} x{}{}",
            case.key(),
            who,
            fmt_ns(s.median),
            fmt_ns(s.min),
            fmt_ns(s.max),
            s.spread_pct(),
            s.n,
            s.reps,
            s.note
                .as_deref()
                .map(|n| format!("  [{n}]"))
                .unwrap_or_default()
        ),
        None => eprintln!("  {:<22} {:<7} n/a", case.key(), who),
    }
}

fn ratio(a: &Option<Stats>, b: &Option<Stats>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b.median > 0.0 => format!("{:.2}", a.median / b.median),
        _ => "—".into(),
    }
}

fn cell(s: &Option<Stats>) -> String {
    s.as_ref()
        .map_or_else(|| "n/a".to_string(), |s| fmt_ns(s.median))
}

/// The notes of the median runs (placement, scheduler counters), below the
/// table.
fn print_notes(rows: &[Row]) {
    println!("\nNotes (median run):");
    for r in rows {
        for (who, s) in [("fibrpc", &r.fib), ("tokio", &r.tok), ("may", &r.may)] {
            if let Some(note) = s.as_ref().and_then(|s| s.note.as_deref()) {
                println!("- {} / {who}: {note}", r.case.key());
            }
        }
    }
}

fn print_table(rows: &[Row]) {
    println!("| case | fibrpc | tokio | may | fibrpc/tokio | fibrpc/may | goal (fibrpc) |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.case.label(),
            cell(&r.fib),
            cell(&r.tok),
            cell(&r.may),
            ratio(&r.fib, &r.tok),
            ratio(&r.fib, &r.may),
            r.case.goal()
        );
    }
}

/// How many cores this process can use right now: two threads doing the
/// same CPU work as one, compared by wall time (2.0 on an idle 2-core
/// machine; near 1.0 when another process keeps a core busy, and then the
/// imbalanced case cannot show any balancing gain).
fn effective_cores() -> f64 {
    // Best of three: a single try is easily hit by a scheduler hiccup.
    (0..3).map(|_| effective_cores_once()).fold(0.0, f64::max)
}

fn effective_cores_once() -> f64 {
    let work = || {
        for _ in 0..100 {
            cases::cpu_chunk();
        }
    };
    let t = Instant::now();
    work();
    let one = t.elapsed();
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(work);
        s.spawn(work);
    });
    let two = t.elapsed();
    2.0 * one.as_secs_f64() / two.as_secs_f64().max(1e-9)
}

/// Times one CPU chunk of the imbalanced case, to state the work size.
fn chunk_time() -> Duration {
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        cases::cpu_chunk();
    }
    t.elapsed() / reps
}

fn main() {
    let opts = parse_opts();
    if let Some(case) = opts.may_child {
        may_child(case, &opts);
        return;
    }
    // Before any other may call: its worker count is fixed at first use.
    mayc::configure(2);
    let fib = fib::Fib::new();
    let tok = tok::Tok::new();
    let started = Instant::now();
    eprintln!(
        "fiber_bench: {} runs of ~{} ms per measurement, median reported; sync feature: {}",
        opts.budget.reps,
        opts.budget.target.as_millis(),
        cfg!(feature = "sync")
    );
    let cores_before = effective_cores();
    eprintln!(
        "  effective cores now ≈ {cores_before:.2}; imbalanced case: {} tasks, CPU chunk ≈ {:?}",
        cases::IMBALANCED_TASKS,
        chunk_time(),
    );
    let mut rows = Vec::new();
    for &case in &opts.cases {
        let sizing = case.sizing(opts.quick);
        let on = |r: &str| opts.runtimes.iter().any(|x| x == r);
        // may's 1-worker cases run in a child process, measured on their own.
        let may_here = on("may") && !case.one_worker();
        let mut fib_run = |n| on("fibrpc").then(|| fib.run(case, n)).flatten();
        let mut tok_run = |n| on("tokio").then(|| tok.run(case, n)).flatten();
        let mut may_run = |n| may_here.then(|| mayc::run(case, n)).flatten();
        let mut runs: [&mut dyn FnMut(u64) -> Option<Sample>; 3] =
            [&mut fib_run, &mut tok_run, &mut may_run];
        let mut stats = measure_interleaved(&mut runs, sizing, opts.budget).into_iter();
        let f = stats.next().flatten();
        let t = stats.next().flatten();
        let mut m = stats.next().flatten();
        if on("may") && case.one_worker() {
            m = may_in_child(case, &opts);
        }
        report(case, "fibrpc", &f);
        report(case, "tokio", &t);
        report(case, "may", &m);
        rows.push(Row {
            case,
            fib: f,
            tok: t,
            may: m,
        });
    }
    let cores_after = effective_cores();
    eprintln!("total {:.1} s", started.elapsed().as_secs_f64());
    print_table(&rows);
    println!(
        "\n{} runs of ~{} ms per cell, median shown; effective cores before/after: \
         {cores_before:.2}/{cores_after:.2} (2.00 = both cores free)",
        opts.budget.reps,
        opts.budget.target.as_millis()
    );
    print_notes(&rows);
}
