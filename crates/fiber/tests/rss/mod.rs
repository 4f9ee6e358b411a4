//! Resident memory of the test process, for the memory-trim suites: the
//! RSS, the mappings that hold it, and the wait for it to come back down.
// Each suite uses what it needs.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The process's resident set in KiB (`VmRSS`).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// Every mapping with its resident KiB and its `/proc/self/smaps` header
/// line, in address order.
pub fn resident_mappings() -> Vec<(u64, String)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut maps = Vec::new();
    let mut head = String::new();
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            let kib = kib
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse()
                .unwrap_or(0);
            maps.push((kib, head.clone()));
        } else if line
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('-'))
        {
            head = line.to_string();
        }
    }
    maps
}

/// The ten mappings of `maps` with the most resident memory, a line each
/// (for a failure message).
pub fn largest(mut maps: Vec<(u64, String)>) -> Vec<String> {
    maps.sort_by_key(|m| std::cmp::Reverse(m.0));
    maps.iter()
        .take(10)
        .map(|(k, h)| format!("{k:>8} KiB  {h}"))
        .collect()
}

/// Waits up to 60 s for the RSS to come back within 20 % of `before`;
/// prints the figures and returns the RSS reached and that bound.
pub fn settle(before: u64, peak: u64) -> (u64, u64) {
    let ended = Instant::now();
    let bound = before + before / 5;
    let mut now = rss_kib();
    while now > bound && ended.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(250));
        now = rss_kib();
    }
    println!(
        "RSS {before} KiB before, {peak} KiB at the peak, {now} KiB {:.1}s after",
        ended.elapsed().as_secs_f64()
    );
    (now, bound)
}
