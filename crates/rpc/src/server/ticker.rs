//! A fiber that wakes periodically while the server runs: once a second it
//! turns the connections' counters into per-second rates (for
//! `/connections`), and at every tick it closes connections past a
//! timeout (see [`super::timeouts`]).

use std::time::{Duration, Instant};

use fibrpc_fiber::JoinHandle;

use super::timeouts::{self, Timeouts};
use super::ServerContext;

const RATE_PERIOD: Duration = Duration::from_secs(1);

pub(super) struct Ticker {
    handle: JoinHandle<()>,
}

impl Ticker {
    pub(super) fn start(shared: ServerContext) -> std::io::Result<Ticker> {
        let handle = fibrpc_fiber::Builder::new()
            .name("fibrpc-server-ticker")
            .spawn(move || run(shared))?;
        Ok(Ticker { handle })
    }

    pub(super) fn stop(self) {
        let _ = fibrpc_fiber::interrupt(self.handle.id());
        let _ = self.handle.join();
    }
}

fn run(shared: ServerContext) {
    let check = timeouts::period(shared.options());
    let period = check.unwrap_or(RATE_PERIOD).min(RATE_PERIOD);
    let mut timeouts = Timeouts::default();
    let mut last_rates = Instant::now();
    while !shared.is_stopping() {
        // Interrupted by `stop`.
        if fibrpc_fiber::sleep(period).is_err() {
            break;
        }
        let socks: Vec<_> = shared
            .connection_ids()
            .into_iter()
            .filter_map(|id| id.address())
            .collect();
        let now = Instant::now();
        if now.duration_since(last_rates) >= RATE_PERIOD {
            last_rates = now;
            for s in &socks {
                s.stats.tick();
            }
        }
        if check.is_some() {
            timeouts.check(shared.options(), &socks, now);
        }
    }
}
