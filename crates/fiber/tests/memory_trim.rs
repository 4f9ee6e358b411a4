//! Memory comes back after a burst: fibers that went deep into their
//! stacks, all alive at once, end; within 60 s the resident size is back
//! within 20 % of where it was before (the trimmer unmaps idle stacks,
//! workers keep only a few, and the deep pages of those are released).
//!
//! One test per binary: it measures the whole process's RSS.

mod rss;

use fibrpc_fiber as fiber;
use rss::{rss_kib, settle};
use std::sync::Arc;
use std::time::Duration;

/// Fibers alive at the peak of the burst.
const FIBERS: usize = 500;
/// Stack each of them touches.
const DEPTH: usize = 256 << 10;

/// The ten mappings with the most resident memory, from
/// `/proc/self/smaps` (for a failure message), and how many 1 MiB+guard
/// stack mappings hold any.
fn largest_mappings() -> String {
    let maps = rss::resident_mappings();
    let stacks: Vec<u64> = maps
        .iter()
        .filter(|(k, h)| {
            *k > 0
                && h.split_whitespace().count() == 5
                && h.split_whitespace().next().is_some_and(|r| {
                    let mut it = r
                        .split('-')
                        .map(|x| u64::from_str_radix(x, 16).unwrap_or(0));
                    let (a, b) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
                    b - a == 1 << 20
                })
        })
        .map(|(k, _)| *k)
        .collect();
    let mut out = rss::largest(maps);
    out.push(format!(
        "{} stacks hold {} KiB",
        stacks.len(),
        stacks.iter().sum::<u64>()
    ));
    out.join("\n")
}

/// Writes every page of `depth` bytes of this fiber's stack.
#[inline(never)]
fn touch_stack(depth: usize) -> u8 {
    let mut buf = [0u8; 16 << 10];
    for i in (0..buf.len()).step_by(1024) {
        buf[i] = i as u8 | 1;
    }
    let buf = std::hint::black_box(buf);
    if depth > buf.len() {
        touch_stack(depth - buf.len()).wrapping_add(buf[1024])
    } else {
        buf[0]
    }
}

/// `n` fibers, each `touch_stack(DEPTH)` and then wait for `gate`; returns
/// once all have touched their stacks, with their handles.
fn burst(n: usize, gate: &Arc<fiber::sync::CountdownEvent>) -> Vec<fiber::JoinHandle<u8>> {
    let ready = Arc::new(fiber::sync::CountdownEvent::new(n as u32));
    let hs = (0..n)
        .map(|_| {
            let (ready, gate) = (ready.clone(), gate.clone());
            fiber::spawn(move || {
                let v = touch_stack(DEPTH);
                ready.signal(1);
                gate.wait();
                v
            })
        })
        .collect();
    ready.wait();
    hs
}

#[test]
fn rss_returns_after_a_burst_of_deep_fibers() {
    let rt = fiber::Runtime::builder()
        .workers(2)
        .memory_trim_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    // The level to come back to is that of a process that has run fibers
    // (threads, the timer, the stacks a worker keeps, code paged in): a
    // small burst first, then a few trim intervals to settle.
    rt.block_on(|| {
        let gate = Arc::new(fiber::sync::CountdownEvent::new(0));
        for h in burst(64, &gate) {
            h.join().unwrap();
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let before = rss_kib();

    let peak = rt.block_on(|| {
        let gate = Arc::new(fiber::sync::CountdownEvent::new(1));
        let hs = burst(FIBERS, &gate);
        let peak = rss_kib();
        gate.signal(1);
        for h in hs {
            h.join().unwrap();
        }
        peak
    });
    let touched = (FIBERS * DEPTH / 1024) as u64;
    assert!(
        peak >= before + touched / 2,
        "the burst should have made {touched} KiB resident: {before} -> {peak} KiB"
    );

    let (now, bound) = settle(before, peak);
    assert!(
        now <= bound,
        "RSS still {now} KiB 60 s after the burst (before: {before} KiB, peak: {peak} KiB); \
         largest mappings:\n{}",
        largest_mappings()
    );
}
