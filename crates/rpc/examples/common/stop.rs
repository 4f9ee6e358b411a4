//! When the server examples stop: on SIGINT/SIGTERM (the library's
//! `shutdown_signal`), or after `--duration` if one was given.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Completes on SIGINT/SIGTERM or once `limit` has passed.
pub fn signal_or_after(limit: Option<Duration>) -> impl Future<Output = ()> {
    let mut signal = fibrpc::server::shutdown_signal().expect("take SIGINT/SIGTERM");
    // The timer's side: (fired, who waits).
    let timer = limit.map(|d| {
        let state: Arc<Mutex<(bool, Option<Waker>)>> = Arc::default();
        let fire = state.clone();
        fibrpc::fiber::timer::add_after(d, move || {
            let mut s = fire.lock().unwrap();
            s.0 = true;
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        state
    });
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        if Pin::new(&mut signal).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if let Some(t) = &timer {
            let mut t = t.lock().unwrap();
            if t.0 {
                return Poll::Ready(());
            }
            t.1 = Some(cx.waker().clone());
        }
        Poll::Pending
    })
}

/// Parses `--duration SECS` (fractions allowed) for clap.
// Not every example that includes this file takes `--duration`.
#[allow(dead_code)]
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}
