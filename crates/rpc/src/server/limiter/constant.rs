//! [`ConstantConcurrencyLimiter`]: a fixed limit (bRPC's
//! `ConstantConcurrencyLimiter`).

use std::time::Duration;

use super::ConcurrencyLimiter;

/// Admits a request while at most `max` are in the method, itself
/// included.
#[derive(Debug, Clone, Copy)]
pub struct ConstantConcurrencyLimiter {
    max: usize,
}

impl ConstantConcurrencyLimiter {
    /// A limit of `max` requests at once.
    pub fn new(max: usize) -> ConstantConcurrencyLimiter {
        ConstantConcurrencyLimiter { max }
    }
}

impl ConcurrencyLimiter for ConstantConcurrencyLimiter {
    fn on_requested(&self, current_concurrency: usize) -> bool {
        current_concurrency <= self.max
    }

    fn on_responded(&self, _: i32, _: Duration) {}

    fn max_concurrency(&self) -> usize {
        self.max
    }

    fn kind(&self) -> &'static str {
        "constant"
    }
}
