//! What the console shows of the open streams.

use std::net::SocketAddr;
use std::time::SystemTime;

use super::registry;
use super::stream::{Phase, StreamStats};

/// One open stream, for display (`/streams`).
#[derive(Clone, Debug)]
pub struct StreamStatus {
    /// This side's id.
    pub id: i64,
    /// The peer's id (-1 until connected).
    pub remote_id: i64,
    /// The peer's address, once bound to a connection.
    pub remote_side: Option<SocketAddr>,
    /// Whether the stream is connected (else still opening).
    pub connected: bool,
    /// The window (`max_buf_size`).
    pub max_buf_size: usize,
    /// The counters.
    pub stats: StreamStats,
    /// When it was created.
    pub created: SystemTime,
}

/// The open streams of this process, oldest first.
pub fn open_streams() -> Vec<StreamStatus> {
    let mut v: Vec<StreamStatus> = registry::all()
        .into_iter()
        .map(|s| {
            let stats = s.stats();
            let st = s.lock();
            StreamStatus {
                id: s.id(),
                remote_id: st.remote_id,
                remote_side: st.sock.as_ref().map(|k| k.remote_side()),
                connected: st.phase == Phase::Connected,
                max_buf_size: s.options.max_buf_size,
                stats,
                created: s.created,
            }
        })
        .collect();
    v.sort_by_key(|s| (s.created, s.id));
    v
}
