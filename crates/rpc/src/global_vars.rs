//! Process-wide bvars every fibrpc server shows on `/vars` (bRPC's
//! `bthread_count`, `process_cpu_usage`, ...), exposed once per process
//! by the first server that starts.

use std::sync::{Mutex, OnceLock};

use fibrpc_bvar::PassiveStatus;

/// Exposes the process and fiber-runtime variables (once).
pub(crate) fn expose() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        if let Err(e) = fibrpc_bvar::expose_process_vars() {
            tracing::warn!(error = %e, "cannot expose the process vars");
        }
        type Read = fn() -> i64;
        let vars: [(&str, Read); 6] = [
            ("fiber_worker_count", || {
                fibrpc_fiber::stats().workers.len() as i64
            }),
            ("fiber_count", || fibrpc_fiber::stats().alive() as i64),
            ("fiber_created", || {
                fibrpc_fiber::stats().total().created as i64
            }),
            ("fiber_switches", || {
                fibrpc_fiber::stats().total().switches as i64
            }),
            ("fiber_steals", || {
                fibrpc_fiber::stats().total().steals as i64
            }),
            ("fiber_timers_scheduled", || {
                fibrpc_fiber::timer::stats().scheduled as i64
            }),
        ];
        // The handles live for the process: dropping one would hide it.
        static KEEP: Mutex<Vec<PassiveStatus>> = Mutex::new(Vec::new());
        let mut keep = KEEP.lock().unwrap_or_else(|e| e.into_inner());
        for (name, read) in vars {
            let v = PassiveStatus::new(read);
            match v.expose(name) {
                Ok(()) => keep.push(v),
                Err(e) => tracing::warn!(var = name, error = %e, "cannot expose a variable"),
            }
        }
    });
}
