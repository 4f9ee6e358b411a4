//! [`RetryBudget`]: retries capped as a share of a channel's recent
//! calls, so that when every replica fails, retries do not multiply the
//! load on a service that is already down (gRPC's retry throttling,
//! Finagle's `RetryBudget`).
//!
//! A token bucket per channel: each call puts `token_ratio` of a token
//! in (up to `max_tokens`), each retry takes one out, and a retry
//! finding less than one token is not made. The bucket starts full. So
//! over any stretch of `n` calls at most `max_tokens + n × token_ratio`
//! retries are made: a failing cluster sees at most
//! `n × (1 + token_ratio) + max_tokens` attempts instead of
//! `n × (1 + max_retry)`. Deposits past the cap are lost, which is what
//! makes the budget follow *recent* calls.

use std::sync::atomic::{AtomicU64, Ordering};

/// Thousandths of a token: the bucket's unit, so a ratio of 0.1 is a
/// whole number of units.
const UNIT: u64 = 1000;

/// How many retries a channel may make (see the module docs). Set with
/// [`ChannelOptions::retry_budget`](super::ChannelOptions::retry_budget).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// The bucket's size: the retries a burst of failures may take at
    /// once, beyond the ratio (default 100).
    pub max_tokens: u32,
    /// Tokens each call adds: the share of calls that may be retried in
    /// the long run (default 0.1, 10 %, as Finagle's). Read to the
    /// thousandth.
    pub token_ratio: f64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            max_tokens: 100,
            token_ratio: 0.1,
        }
    }
}

/// A channel's bucket.
#[derive(Debug)]
pub(super) struct RetryTokens {
    /// In [`UNIT`]s.
    tokens: AtomicU64,
    cap: u64,
    deposit: u64,
}

impl RetryTokens {
    /// A full bucket for `budget`.
    pub(super) fn new(budget: &RetryBudget) -> RetryTokens {
        let cap = u64::from(budget.max_tokens) * UNIT;
        let ratio = if budget.token_ratio.is_finite() {
            budget.token_ratio.max(0.0)
        } else {
            0.0
        };
        RetryTokens {
            tokens: AtomicU64::new(cap),
            cap,
            deposit: ((ratio * UNIT as f64).round() as u64).min(cap.max(UNIT)),
        }
    }

    /// A call started. A full bucket (the healthy steady state) costs a
    /// load: no write to the shared line.
    pub(super) fn deposit(&self) {
        if self.deposit == 0 || self.tokens.load(Ordering::Relaxed) >= self.cap {
            return;
        }
        let before = self.tokens.fetch_add(self.deposit, Ordering::Relaxed);
        if before + self.deposit > self.cap {
            self.tokens.fetch_min(self.cap, Ordering::Relaxed);
        }
    }

    /// Takes a token for a retry; false if there is less than one.
    pub(super) fn withdraw(&self) -> bool {
        self.tokens
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                t.checked_sub(UNIT)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_capped_by_the_bucket_and_the_ratio() {
        let b = RetryTokens::new(&RetryBudget {
            max_tokens: 5,
            token_ratio: 0.1,
        });
        let mut retries = 0;
        for _ in 0..1000 {
            b.deposit();
            if b.withdraw() {
                retries += 1;
            }
        }
        // 5 at first, then one per ten calls.
        assert!((100..=105).contains(&retries), "{retries}");
    }

    #[test]
    fn deposits_past_the_cap_are_lost() {
        let b = RetryTokens::new(&RetryBudget {
            max_tokens: 2,
            token_ratio: 1.0,
        });
        for _ in 0..100 {
            b.deposit();
        }
        assert!(b.withdraw() && b.withdraw());
        assert!(!b.withdraw());
    }
}
