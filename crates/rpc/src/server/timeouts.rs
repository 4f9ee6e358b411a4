//! The connection timeouts ([`ServerOptions::read_message_timeout`],
//! [`ServerOptions::write_timeout`], [`ServerOptions::idle_timeout`]),
//! checked by the server's ticker.
//!
//! Nothing is stamped on the hot path: the ticker compares each
//! connection's traffic counters (bytes and messages in, bytes out, which
//! the reader and writer keep anyway) with what it saw at its last look,
//! and remembers since when each has stood still. A look at a connection
//! costs a few loads and one `try_lock` of its input; the price is that a
//! timeout fires up to one tick late (ticks come at a quarter of the
//! shortest timeout, at most once a second).
//!
//! [`ServerOptions::read_message_timeout`]: super::ServerOptions::read_message_timeout
//! [`ServerOptions::write_timeout`]: super::ServerOptions::write_timeout
//! [`ServerOptions::idle_timeout`]: super::ServerOptions::idle_timeout

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ServerOptions;
use crate::socket::{Socket, SocketId, SocketStatsSnapshot};
use crate::{errno, RpcError};

/// How often the ticker must look for `options`' timeouts to fire within
/// a quarter of the shortest one (`None`: no timeout is set).
pub(super) fn period(options: &ServerOptions) -> Option<Duration> {
    [
        options.read_message_timeout,
        options.write_timeout,
        options.idle_timeout,
    ]
    .into_iter()
    .flatten()
    .min()
    .map(|t| (t / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)))
}

/// What the ticker saw of one connection.
struct Seen {
    stats: SocketStatsSnapshot,
    /// Since when no byte came in or went out.
    quiet_since: Instant,
    /// Since when queued bytes wait and none went out.
    stalled_since: Option<Instant>,
    /// Since when a partial message waits in the input, with no message
    /// completed.
    partial_since: Option<Instant>,
}

/// The ticker's memory of every connection it looks at.
#[derive(Default)]
pub(super) struct Timeouts {
    seen: HashMap<SocketId, Seen>,
}

impl Timeouts {
    /// Looks at every connection once; closes those past a timeout.
    pub(super) fn check(&mut self, options: &ServerOptions, socks: &[Arc<Socket>], now: Instant) {
        // Forget connections that are gone.
        if self.seen.len() > socks.len() {
            let live: std::collections::HashSet<SocketId> = socks.iter().map(|s| s.id()).collect();
            self.seen.retain(|id, _| live.contains(id));
        }
        for sock in socks {
            if let Some(reason) = self.look(options, sock, now) {
                if crate::flags::log_connection_errors() {
                    tracing::warn!(peer = %sock.remote_side(), %reason, "closing connection");
                }
                sock.set_failed(RpcError::new(errno::ERPCTIMEDOUT, reason));
                self.seen.remove(&sock.id());
            }
        }
    }

    /// One connection: the timeout it is past, if any.
    fn look(&mut self, options: &ServerOptions, sock: &Socket, now: Instant) -> Option<String> {
        let stats = sock.stats();
        // `try_lock`: a reader holding the input is at work on it (or
        // holds it back on purpose), which is not the peer being slow.
        // A TLS handshake under way is a message not yet complete.
        let partial =
            sock.tls_handshaking() || sock.input.try_lock().is_ok_and(|input| input.has_partial());
        let queued = sock.unwritten_bytes() > 0;
        let seen = self.seen.entry(sock.id()).or_insert(Seen {
            stats,
            quiet_since: now,
            stalled_since: None,
            partial_since: None,
        });
        let moved_in = stats.in_bytes != seen.stats.in_bytes;
        let moved_out = stats.out_bytes != seen.stats.out_bytes;
        if moved_in || moved_out {
            seen.quiet_since = now;
        }
        seen.stalled_since = match (queued, moved_out) {
            (false, _) | (true, true) => None,
            (true, false) => Some(seen.stalled_since.unwrap_or(now)),
        };
        seen.partial_since = match (partial, stats.in_messages != seen.stats.in_messages) {
            (false, _) => None,
            // A message completed since the last look: what waits now
            // is a newer one.
            (true, true) => Some(now),
            (true, false) => Some(seen.partial_since.unwrap_or(now)),
        };
        seen.stats = stats;
        let past = |since: Option<Instant>, limit: Option<Duration>| match (since, limit) {
            (Some(since), Some(limit)) => now.duration_since(since) >= limit,
            _ => false,
        };
        if past(seen.partial_since, options.read_message_timeout) {
            return Some(format!(
                "a message was not complete within read_message_timeout ({:?})",
                options.read_message_timeout.unwrap_or_default()
            ));
        }
        if past(seen.stalled_since, options.write_timeout) {
            return Some(format!(
                "{} queued bytes made no progress within write_timeout ({:?})",
                sock.unwritten_bytes(),
                options.write_timeout.unwrap_or_default()
            ));
        }
        // A connection carrying streams is not idle (as bRPC's): its
        // streams decide when it ends.
        if past(Some(seen.quiet_since), options.idle_timeout)
            && crate::protocol::streaming::streams_on(sock) == 0
        {
            return Some(format!(
                "idle for idle_timeout ({:?})",
                options.idle_timeout.unwrap_or_default()
            ));
        }
        None
    }
}
