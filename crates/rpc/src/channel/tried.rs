//! The servers a call's attempts went to (bRPC's `ExcludedServers`),
//! handed to the selector so that a retry or a backup request goes to
//! another replica. Inline for the first few, so a call that is retried
//! or backed up once allocates nothing for it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// Servers kept inline: the first attempt, a backup or a retry, one more.
const INLINE: usize = 3;

/// A filler for the unused inline slots (never read).
const UNSET: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// See the module docs.
#[derive(Debug, Clone)]
pub(super) struct TriedServers {
    inline: [SocketAddr; INLINE],
    len: u8,
    /// All of them, once there are more than [`INLINE`].
    spill: Vec<SocketAddr>,
}

impl Default for TriedServers {
    fn default() -> Self {
        TriedServers {
            inline: [UNSET; INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }
}

impl TriedServers {
    /// Adds `server` unless it is there already.
    pub(super) fn add(&mut self, server: SocketAddr) {
        if self.as_slice().contains(&server) {
            return;
        }
        let n = usize::from(self.len);
        if n < INLINE {
            self.inline[n] = server;
            self.len += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.inline);
        }
        self.spill.push(server);
    }

    /// The servers, in the order they were tried.
    pub(super) fn as_slice(&self) -> &[SocketAddr] {
        if self.spill.is_empty() {
            &self.inline[..usize::from(self.len)]
        } else {
            &self.spill
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_uniqueness_past_the_inline_slots() {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let mut t = TriedServers::default();
        assert!(t.as_slice().is_empty());
        for p in [1, 2, 1, 3, 4, 2, 5] {
            t.add(a(p));
        }
        assert_eq!(t.as_slice(), &[a(1), a(2), a(3), a(4), a(5)]);
    }
}
