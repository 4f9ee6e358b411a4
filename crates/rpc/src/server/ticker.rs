//! A fiber that wakes once a second while the server runs and turns the
//! connections' counters into per-second rates (for `/connections`).

use std::time::Duration;

use fibrpc_fiber::JoinHandle;

use super::ServerContext;

pub(super) struct Ticker {
    handle: JoinHandle<()>,
}

impl Ticker {
    pub(super) fn start(shared: ServerContext) -> std::io::Result<Ticker> {
        let handle = fibrpc_fiber::Builder::new()
            .name("fibrpc-server-ticker")
            .spawn(move || {
                while !shared.is_stopping() {
                    // Interrupted by `stop`.
                    if fibrpc_fiber::sleep(Duration::from_secs(1)).is_err() {
                        break;
                    }
                    for id in shared.connection_ids() {
                        if let Some(s) = id.address() {
                            s.stats.tick();
                        }
                    }
                }
            })?;
        Ok(Ticker { handle })
    }

    pub(super) fn stop(self) {
        let _ = fibrpc_fiber::interrupt(self.handle.id());
        let _ = self.handle.join();
    }
}
