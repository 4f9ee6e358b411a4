//! [`SocketId`]: a versioned weak reference to a [`Socket`] (bRPC's
//! `SocketId` over its resource pool).
//!
//! Sockets live in a global slab of slots. An id is the slot index plus
//! the slot's version when the socket was created; failing a socket bumps
//! the version and drops the slab's reference, so every later
//! [`address`](SocketId::address) fails cleanly — a stale id can never
//! reach a socket that reused its slot.

use std::sync::{Arc, Mutex, OnceLock};

use super::Socket;

const SEGMENT: usize = 1024;
const SEGMENTS: usize = 1024;

/// A versioned reference to a socket: cheap to copy, never dangling.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(u64);

impl std::fmt::Debug for SocketId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SocketId({}v{})", self.index(), self.version())
    }
}

impl SocketId {
    fn new(index: usize, version: u32) -> SocketId {
        SocketId(u64::from(version) << 32 | index as u64)
    }

    fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    fn version(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The raw value (for logs and maps).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id whose [`as_u64`](Self::as_u64) is `raw` (from a console
    /// URL). Any value is safe: a stale or made-up id finds no socket.
    pub(crate) fn from_u64(raw: u64) -> SocketId {
        SocketId(raw)
    }

    /// The socket, if it is still alive (not failed, not recycled).
    pub(crate) fn address(self) -> Option<Arc<Socket>> {
        let slot = Slab::get().slot(self.index())?;
        let g = slot.lock().unwrap_or_else(|e| e.into_inner());
        match &*g {
            (v, Some(s)) if *v == self.version() => Some(s.clone()),
            _ => None,
        }
    }
}

/// (version, socket): the version counts the slot's generations.
type Slot = Mutex<(u32, Option<Arc<Socket>>)>;

pub(crate) struct Slab {
    segments: Box<[OnceLock<Box<[Slot]>>]>,
    /// Free slot indexes and the next never-used index.
    free: Mutex<(Vec<usize>, usize)>,
}

impl Slab {
    pub(crate) fn get() -> &'static Slab {
        static SLAB: OnceLock<Slab> = OnceLock::new();
        SLAB.get_or_init(|| Slab {
            segments: (0..SEGMENTS).map(|_| OnceLock::new()).collect(),
            free: Mutex::new((Vec::new(), 0)),
        })
    }

    fn slot(&self, index: usize) -> Option<&Slot> {
        self.segments
            .get(index / SEGMENT)?
            .get()
            .map(|seg| &seg[index % SEGMENT])
    }

    /// Reserves a slot and returns the id the socket will have.
    pub(crate) fn reserve(&self) -> std::io::Result<SocketId> {
        let index = {
            let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
            match f.0.pop() {
                Some(i) => i,
                None if f.1 < SEGMENT * SEGMENTS => {
                    f.1 += 1;
                    f.1 - 1
                }
                None => {
                    return Err(std::io::Error::other(
                        "too many sockets (the socket slab is full)",
                    ))
                }
            }
        };
        let seg = self.segments[index / SEGMENT]
            .get_or_init(|| (0..SEGMENT).map(|_| Mutex::new((1, None))).collect());
        let v = seg[index % SEGMENT]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0;
        Ok(SocketId::new(index, v))
    }

    /// Every live socket of the process (server and client sides), in
    /// slot order: a pass over the slots used so far, one uncontended
    /// lock each. For the console.
    pub(crate) fn live(&self) -> Vec<Arc<Socket>> {
        let used = self.free.lock().unwrap_or_else(|e| e.into_inner()).1;
        (0..used)
            .filter_map(|i| {
                let slot = self.slot(i)?;
                let g = slot.lock().unwrap_or_else(|e| e.into_inner());
                g.1.clone()
            })
            .collect()
    }

    /// Makes `socket` reachable through its id.
    pub(crate) fn publish(&self, id: SocketId, socket: Arc<Socket>) {
        let slot = self.slot(id.index()).expect("reserved slot");
        let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
        debug_assert_eq!(g.0, id.version());
        g.1 = Some(socket);
    }

    /// Invalidates `id` and returns the slab's reference (None if the id
    /// was stale). The slot becomes free for reuse.
    pub(crate) fn remove(&self, id: SocketId) -> Option<Arc<Socket>> {
        let slot = self.slot(id.index())?;
        let taken = {
            let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
            if g.0 != id.version() {
                return None;
            }
            // Skip 0 so that no id is ever 0.
            g.0 = g.0.wrapping_add(1).max(1);
            g.1.take()
        };
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push(id.index());
        taken
    }
}
