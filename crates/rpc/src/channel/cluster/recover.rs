//! Throttling while a cluster comes back (bRPC's
//! `DefaultClusterRecoverPolicy`).
//!
//! When every server of a cluster was isolated, the callers' traffic has
//! been piling up; the first server the health check re-admits would take
//! all of it and likely fall over again. So once a call found no usable
//! server, the cluster is **recovering**: each call is rejected with
//! `EREJECT` with probability `1 - usable / min_working_instances`
//! (usable: servers not isolated), so the traffic grows with the servers
//! that are back. Recovery ends when the usable count is not 0 and has not
//! changed for `hold` — the cluster is as back as it will be.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{errno, RpcError};

/// bRPC's `min_working_instances` and `hold_seconds`: see the module
/// docs. Set with
/// [`ChannelOptions::cluster_recover_policy`](crate::ChannelOptions::cluster_recover_policy),
/// or, as in bRPC, in the load balancer's name:
/// `"rr:min_working_instances=2 hold_seconds=5"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterRecoverPolicy {
    /// While recovering, calls pass in proportion to `usable /
    /// min_working_instances` (all once that many servers are back).
    pub min_working_instances: usize,
    /// Recovery ends once the number of usable servers has not changed
    /// for this long.
    pub hold: Duration,
}

impl ClusterRecoverPolicy {
    /// Parses bRPC's load balancer parameters,
    /// `min_working_instances=N hold_seconds=S` (space-separated; both
    /// positive). An empty string is no policy; an unknown key, an empty
    /// or non-numeric value, or only one of the two is `EINVAL`.
    pub fn parse(params: &str) -> Result<Option<ClusterRecoverPolicy>, RpcError> {
        let bad = |why: String| Err(RpcError::new(libc::EINVAL, why));
        let (mut min, mut hold) = (None, None);
        for kv in params.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let Ok(n) = v.parse::<u64>() else {
                return bad(format!(
                    "load balancer parameter `{kv}`: the value must be a number"
                ));
            };
            match k {
                "min_working_instances" => min = Some(n),
                "hold_seconds" => hold = Some(n),
                _ => {
                    return bad(format!(
                        "unknown load balancer parameter `{k}` \
                         (known: min_working_instances, hold_seconds)"
                    ))
                }
            }
        }
        match (min, hold) {
            (None, None) => Ok(None),
            (Some(m), Some(h)) if m > 0 && h > 0 => Ok(Some(ClusterRecoverPolicy {
                min_working_instances: m as usize,
                hold: Duration::from_secs(h),
            })),
            _ => bad(format!(
                "load balancer parameters `{params}`: min_working_instances and \
                 hold_seconds must both be set and positive"
            )),
        }
    }
}

/// A cluster's recovery state under a policy.
#[derive(Debug)]
pub(super) struct Recovery {
    pub policy: ClusterRecoverPolicy,
    /// Read by every select: the only cost outside a recovery.
    recovering: AtomicBool,
    /// The usable count last seen, and since when.
    last: Mutex<(usize, Instant)>,
}

impl Recovery {
    pub(super) fn new(policy: ClusterRecoverPolicy) -> Recovery {
        Recovery {
            policy,
            recovering: AtomicBool::new(false),
            last: Mutex::new((0, Instant::now())),
        }
    }

    /// A call found no usable server: recovery starts.
    pub(super) fn start(&self) {
        if !self.recovering.swap(true, Relaxed) {
            *self.lock() = (0, Instant::now());
        }
    }

    pub(super) fn recovering(&self) -> bool {
        self.recovering.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(EREJECT)` if a call is rejected with `usable` of `total`
    /// servers usable; ends the recovery when it is over.
    pub(super) fn reject(&self, usable: usize, total: usize) -> Option<RpcError> {
        if !self.recovering.load(Relaxed) {
            return None;
        }
        {
            let mut last = self.lock();
            if last.0 != usable {
                *last = (usable, Instant::now());
            } else if usable != 0 && last.1.elapsed() > self.policy.hold {
                self.recovering.store(false, Relaxed);
                return None;
            }
        }
        let min = self.policy.min_working_instances;
        if fastrand::usize(..min) < usable {
            return None;
        }
        Some(
            RpcError::new(
                errno::EREJECT,
                format!(
                    "rejected while the cluster recovers: {usable} of {total} servers usable, \
                     calls pass in proportion up to min_working_instances={min}, until the \
                     usable count holds for {}s",
                    self.policy.hold.as_secs_f64()
                ),
            )
            .into_local(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_brpc_parameters() {
        let p = ClusterRecoverPolicy::parse("min_working_instances=2 hold_seconds=5").unwrap();
        assert_eq!(
            p,
            Some(ClusterRecoverPolicy {
                min_working_instances: 2,
                hold: Duration::from_secs(5)
            })
        );
        assert_eq!(ClusterRecoverPolicy::parse("").unwrap(), None);
        for bad in [
            "min_working_instances=2",
            "min_working_instances=0 hold_seconds=1",
            "min_working_instances= hold_seconds=1",
            "min_working_instances=x hold_seconds=1",
            "weight=1",
        ] {
            let e = ClusterRecoverPolicy::parse(bad).unwrap_err();
            assert_eq!(e.code, libc::EINVAL, "{bad}");
        }
    }

    #[test]
    fn rejects_in_proportion_then_stops_after_the_hold() {
        let r = Recovery::new(ClusterRecoverPolicy {
            min_working_instances: 4,
            hold: Duration::from_millis(300),
        });
        assert!(r.reject(0, 4).is_none(), "not recovering");
        r.start();
        assert_eq!(r.reject(0, 4).unwrap().code, errno::EREJECT);
        let passed = (0..4000).filter(|_| r.reject(1, 4).is_none()).count();
        // 1 of 4 usable: about a quarter passes.
        assert!((700..1300).contains(&passed), "{passed}");
        std::thread::sleep(Duration::from_millis(400));
        assert!(r.reject(1, 4).is_none());
        assert!(!r.recovering());
        assert!((0..100).all(|_| r.reject(1, 4).is_none()));
    }
}
