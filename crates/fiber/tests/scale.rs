//! Many fibers at once, and what happens when stacks run out.

mod common;

use fibrpc_fiber as fiber;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    s.lines()
        .find(|l| l.starts_with("Rss:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn map_budget() -> usize {
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65530);
    let used = std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0);
    // Each guarded stack costs two maps; leave room for the rest of the
    // test binary (other tests run concurrently).
    max.saturating_sub(used + 20_000) / 2
}

#[test]
fn a_hundred_thousand_fibers_asleep_at_once() {
    let want = 100_000;
    let n = want.min(map_budget());
    if n < want {
        eprintln!(
            "vm.max_map_count allows only {n} guarded stacks here; \
             raise it (sysctl -w vm.max_map_count=262144) to run {want}"
        );
    }
    let rt = fiber::Runtime::builder().workers(2).build().unwrap();
    let before = rss_kib();
    let asleep = Arc::new(AtomicUsize::new(0));
    let a = asleep.clone();
    let (woke, peak) = rt.block_on(move || {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let a = a.clone();
                fiber::Builder::new()
                    .stack(fiber::StackClass::Small)
                    .spawn(move || {
                        a.fetch_add(1, Ordering::Relaxed);
                        // Asleep until interrupted below.
                        fiber::sleep(Duration::from_secs(3600)) == Err(fiber::Interrupted)
                    })
                    .unwrap()
            })
            .collect();
        while a.load(Ordering::Relaxed) < n {
            fiber::sleep(Duration::from_millis(5)).unwrap();
        }
        // Let the last ones reach their sleep.
        fiber::sleep(Duration::from_millis(50)).unwrap();
        let peak = rss_kib();
        for h in &hs {
            fiber::interrupt(h.id()).unwrap();
        }
        let woke = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&ok| ok)
            .count();
        (woke, peak)
    });
    assert_eq!(woke, n);
    assert_eq!(asleep.load(Ordering::Relaxed), n);
    let per_fiber = (peak.saturating_sub(before)) * 1024 / n as u64;
    eprintln!("{n} sleeping fibers: RSS {before} KiB -> {peak} KiB, {per_fiber} bytes per fiber");
}

const CHILD_ENV: &str = "FIBRPC_TEST_STACK_EXHAUSTION_CHILD";

/// Run in a child process with a small address-space limit.
#[test]
fn stack_exhaustion_child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    let rt = fiber::Runtime::builder().workers(1).build().unwrap();
    // Leave ~200 MiB of address space above what the process uses now.
    let vm: u64 = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmSize:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let limit = (vm + 200 * 1024) * 1024;
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: plain syscall with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) }, 0);
    let gate = Arc::new(fiber::butex::Butex::new(0));
    let mut handles = Vec::new();
    let mut failure = None;
    for _ in 0..1000 {
        let g = gate.clone();
        let h = fiber::Builder::new()
            .stack(fiber::StackClass::Large)
            .spawn_on(&rt, move || while g.wait(0, None).is_ok() {})
            .unwrap();
        std::thread::sleep(Duration::from_millis(1));
        if h.is_finished() {
            failure = Some(h.join().unwrap_err());
            break;
        }
        handles.push(h);
    }
    let e = failure.expect("stacks must run out under a 200 MiB address-space limit");
    println!("CHILD-ERROR: {e}");
    gate.value().store(1, Ordering::Release);
    gate.wake_all();
    for h in handles {
        h.join().unwrap();
    }
    println!("CHILD-RECOVERED");
}

#[test]
fn running_out_of_stacks_is_a_clean_error() {
    let out = common::run_child("stack_exhaustion_child", CHILD_ENV);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("CHILD-ERROR: fiber could not start"),
        "{stdout}"
    );
    assert!(stdout.contains("max_map_count"), "{stdout}");
    assert!(stdout.contains("CHILD-RECOVERED"), "{stdout}");
}
