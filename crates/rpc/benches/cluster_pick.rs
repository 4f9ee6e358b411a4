//! What the cluster layer adds to each call, outside the network: one
//! attempt's `select`, `feedback` and `answered` on a
//! [`ClusterSelector`] over `list://` of 1 and 3 servers (`rr`, no
//! breaker), against [`SingleServer`] (a plain channel's selector), from
//! one thread as a caller's worker makes them.
//!
//! `cargo bench -p fibrpc --bench cluster_pick`: prints ns per attempt,
//! the median of 7 timed loops.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use fibrpc::channel::cluster::ClusterSelector;
use fibrpc::channel::{AttemptOutcome, ChannelOptions, SelectInput, ServerSelector, SingleServer};

/// One attempt's selector calls, as the engine makes them for a call
/// answered with success.
fn attempt(s: &dyn ServerSelector) {
    let a = s.select(&SelectInput::new(&[], None)).expect("a server");
    let outcome = AttemptOutcome::new(a, None, Duration::from_micros(100));
    s.feedback(&outcome);
    s.answered(&outcome);
    black_box(a);
}

/// ns per attempt: the median of 7 loops of `n`.
fn time(s: &dyn ServerSelector, n: u32) -> f64 {
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                attempt(s);
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[3]
}

fn main() {
    let options = ChannelOptions::default();
    let plain = SingleServer("127.0.0.1:9".parse().expect("an address"));
    let one = ClusterSelector::from_url("list://127.0.0.1:9", "rr", &options).expect("list of 1");
    let three = ClusterSelector::from_url(
        "list://127.0.0.1:9,127.0.0.1:10,127.0.0.1:11",
        "rr",
        &options,
    )
    .expect("list of 3");
    let n = 2_000_000;
    let cases: [(&str, &dyn ServerSelector); 3] = [
        ("single server", &plain),
        ("list of 1", &one),
        ("list of 3", &three),
    ];
    let mut line = String::from("ns per attempt (select + feedback + answered):");
    for (name, s) in cases {
        time(s, n / 10); // warm up
        line += &format!(" {name} {:.1};", time(s, n));
    }
    println!("{line}");
}
