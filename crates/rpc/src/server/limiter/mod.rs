//! Per-method concurrency limiters (bRPC's `ConcurrencyLimiter`, set with
//! `MaxConcurrencyOf`): a request over its method's limit is answered
//! with `ELIMIT` at once, before its handler runs.
//!
//! [`AdaptiveMaxConcurrency`] says which limiter a method has: none, a
//! constant (`"100"`), or bRPC's `"auto"` ([`AutoConcurrencyLimiter`],
//! `auto.rs`), which moves the limit with the method's measured no-load
//! latency and peak qps. Set for every method with
//! [`ServerOptions::method_max_concurrency`](crate::ServerOptions::method_max_concurrency)
//! or for one with [`Server::set_max_concurrency_of`](crate::Server::set_max_concurrency_of).
//! The server-wide [`ServerOptions::max_concurrency`](crate::ServerOptions::max_concurrency)
//! applies on top.

mod auto;
mod constant;

use std::time::Duration;

pub use auto::{AutoConcurrencyLimiter, AutoConcurrencyOptions};
pub use constant::ConstantConcurrencyLimiter;

/// Decides whether a method takes one more request (bRPC's
/// `ConcurrencyLimiter`). Called on every request of the method:
/// implementations keep the admission path to atomics.
pub trait ConcurrencyLimiter: Send + Sync + 'static {
    /// Whether a request is admitted when `current_concurrency` requests
    /// (this one included) are in the method.
    fn on_requested(&self, current_concurrency: usize) -> bool;

    /// An admitted request ended: `error_code` 0 for a success, after
    /// `latency` (from its arrival).
    fn on_responded(&self, error_code: i32, latency: Duration);

    /// The limit now (for `/status` and tests).
    fn max_concurrency(&self) -> usize;

    /// The limiter's kind as `/status` shows it (bRPC's
    /// `AdaptiveMaxConcurrency::type()`: `"constant"`, `"auto"`).
    /// Default: `"custom"`.
    fn kind(&self) -> &'static str {
        "custom"
    }
}

/// Which limiter a method gets (bRPC's `AdaptiveMaxConcurrency`). Parsed
/// from bRPC's strings: `"unlimited"` (or `"0"`), a number, `"auto"`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AdaptiveMaxConcurrency {
    /// No per-method limit (the default).
    #[default]
    Unlimited,
    /// At most this many requests in the method at once.
    Constant(usize),
    /// bRPC's auto limiter, with these settings
    /// ([`AutoConcurrencyOptions::default`] for bRPC's flags).
    Auto(AutoConcurrencyOptions),
}

impl AdaptiveMaxConcurrency {
    /// The auto limiter with bRPC's default settings.
    pub fn auto() -> AdaptiveMaxConcurrency {
        AdaptiveMaxConcurrency::Auto(AutoConcurrencyOptions::default())
    }

    /// A new limiter of this kind, `None` for unlimited.
    pub(crate) fn build(&self) -> Option<Box<dyn ConcurrencyLimiter>> {
        match self {
            AdaptiveMaxConcurrency::Unlimited | AdaptiveMaxConcurrency::Constant(0) => None,
            AdaptiveMaxConcurrency::Constant(n) => {
                Some(Box::new(ConstantConcurrencyLimiter::new(*n)))
            }
            AdaptiveMaxConcurrency::Auto(o) => {
                Some(Box::new(AutoConcurrencyLimiter::new(o.clone())))
            }
        }
    }
}

impl From<usize> for AdaptiveMaxConcurrency {
    /// A constant limit (0: unlimited).
    fn from(n: usize) -> Self {
        if n == 0 {
            AdaptiveMaxConcurrency::Unlimited
        } else {
            AdaptiveMaxConcurrency::Constant(n)
        }
    }
}

impl std::str::FromStr for AdaptiveMaxConcurrency {
    type Err = String;

    /// bRPC's forms: `unlimited`, `auto`, or a number (0: unlimited).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "unlimited" => Ok(AdaptiveMaxConcurrency::Unlimited),
            "auto" => Ok(AdaptiveMaxConcurrency::auto()),
            n => n.parse::<usize>().map(Into::into).map_err(|_| {
                format!("bad max concurrency {s:?} (a number, \"unlimited\" or \"auto\")")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_brpc_forms() {
        assert_eq!("unlimited".parse(), Ok(AdaptiveMaxConcurrency::Unlimited));
        assert_eq!("0".parse(), Ok(AdaptiveMaxConcurrency::Unlimited));
        assert_eq!(" 12 ".parse(), Ok(AdaptiveMaxConcurrency::Constant(12)));
        assert_eq!("auto".parse(), Ok(AdaptiveMaxConcurrency::auto()));
        assert!("-1".parse::<AdaptiveMaxConcurrency>().is_err());
        assert!("fast".parse::<AdaptiveMaxConcurrency>().is_err());
        assert!(AdaptiveMaxConcurrency::Unlimited.build().is_none());
        assert_eq!(
            AdaptiveMaxConcurrency::Constant(3)
                .build()
                .unwrap()
                .max_concurrency(),
            3
        );
    }
}
