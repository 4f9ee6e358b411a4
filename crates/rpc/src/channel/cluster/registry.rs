//! Every cluster of the process, for the builtin `/cluster` page: weak
//! references, so the page never keeps a cluster alive, pruned whenever
//! one registers or the page lists them.

use std::sync::{Arc, Mutex, Weak};

use super::{lock, ClusterRecoverPolicy, ClusterServer, Inner};

static CLUSTERS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Adds a new cluster to the list.
pub(super) fn register(inner: &Arc<Inner>) {
    let mut all = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(inner));
}

/// A cluster as the `/cluster` page shows it.
#[derive(Debug)]
pub(crate) struct ClusterStatus {
    /// The naming service's URL.
    pub naming: String,
    pub lb: &'static str,
    pub circuit_breaker: bool,
    pub recover_policy: Option<ClusterRecoverPolicy>,
    pub recovering: bool,
    pub servers: Vec<ClusterServer>,
}

/// Every live cluster of the process, in creation order.
pub(crate) fn clusters() -> Vec<ClusterStatus> {
    let live: Vec<Arc<Inner>> = {
        let mut all = CLUSTERS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    live.iter()
        // A dropped selector's health checker may hold it a moment longer.
        .filter(|c| !lock(&c.state).stopped)
        .map(|c| ClusterStatus {
            naming: c.name.clone(),
            lb: c.lb.name(),
            circuit_breaker: c.breaker.is_some(),
            recover_policy: c.recovery.as_ref().map(|r| r.policy),
            recovering: c.recovery.as_ref().is_some_and(|r| r.recovering()),
            servers: c.servers(),
        })
        .collect()
}
