//! The sampler thread (bRPC's `SamplerCollector`): once a second it lets
//! every window take a sample, then appends every exposed numeric variable
//! to its history series. Started on first need: the first window, latency
//! recorder or exposed variable.

use std::sync::{Mutex, Once, Weak};
use std::time::{Duration, Instant};

/// Something that samples once per tick.
pub(crate) trait Tick: Send + Sync {
    /// Takes this second's sample.
    fn tick(&self);
}

static TICKERS: Mutex<Vec<Weak<dyn Tick>>> = Mutex::new(Vec::new());

/// Samples `t` every second from now on, until it is dropped.
pub(crate) fn register(t: Weak<dyn Tick>) {
    TICKERS.lock().unwrap_or_else(|e| e.into_inner()).push(t);
    ensure_started();
}

/// Starts the sampler thread once. Unit tests never start it: they drive
/// ticks by hand so that windows hold exactly the samples a test took.
pub(crate) fn ensure_started() {
    static START: Once = Once::new();
    if cfg!(test) {
        return;
    }
    START.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("bvar_sampler".into())
            .spawn(run);
        // Without the thread windows stay empty and series do not grow;
        // metrics are not worth aborting a program for.
        drop(spawned);
    });
}

fn run() {
    let mut next = Instant::now();
    loop {
        next += Duration::from_secs(1);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Fell behind by more than a tick (suspended machine): skip
            // the missed ticks rather than bursting them.
            next = now;
        }
        sample_now();
    }
}

/// Takes one sample now, as the sampler thread does every second: each
/// window and latency recorder records this interval and each exposed
/// numeric variable's series gets a point.
///
/// For driving windows by hand (tests, or programs that want a different
/// clock). Windows count ticks, not seconds: calling this while the
/// sampler thread runs shortens the span a window covers.
pub fn sample_now() {
    let tickers: Vec<Weak<dyn Tick>> = {
        let mut list = TICKERS.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|t| t.strong_count() > 0);
        list.clone()
    };
    for t in tickers.iter().filter_map(Weak::upgrade) {
        t.tick();
    }
    crate::registry::sample_series();
}
