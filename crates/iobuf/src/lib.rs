//! fibrpc-iobuf: a zero-copy chain of references into refcounted blocks
//! (bRPC's `butil::IOBuf`).
//!
//! * [`IOBuf`]: the buffer. Appending another IOBuf, cloning and cutting move
//!   references, not bytes; small appends fill the tail of a thread-local
//!   8 KiB block. Bytes in a buffer are immutable, so buffers sharing blocks
//!   never see each other's changes.
//! * [`IOPortal`]: an IOBuf that reads from fds with one `readv` into fresh
//!   block tails.
//! * [`IOBuf::cut_into_fd`] / [`IOBuf::cut_multiple_into_fd`]: `writev` of
//!   up to [`IOV_MAX`] refs, exact on partial writes.
//! * [`FileRegion`]: file bytes to a socket via `sendfile` (or `splice`).
//! * [`IOBufAppender`]: `bytes::BufMut` writing straight into block tails;
//!   `IOBuf` itself is a `bytes::Buf`, `io::Read` and `io::Write`.
//!
//! Layout: `block` (refcounted storage), `block_pool` (per-thread bounded
//! free list), `tail` (exclusive right to write a block's end),
//! `tls_block` (the thread's current append block), `block_ref`,
//! `ref_ring`/`ref_queue` (small and big views), then the IOBuf operations
//! one concern per file, and `sys/` for the Linux system calls.
//!
//! # Fuzzing
//!
//! A cargo-fuzz target replays random operation sequences against a
//! `Vec<u8>` model: `cd crates/iobuf/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run
//! ops -- -max_total_time=300` (see `crates/iobuf/README.md`).

mod access;
mod appender;
mod block;
mod block_pool;
mod block_ref;
mod cut;
mod fd;
mod file_region;
mod fmt;
mod interop;
mod iobuf;
mod portal;
mod ref_queue;
mod ref_ring;
mod sys;
mod tail;
mod tls_block;
mod user_data;

pub use appender::IOBufAppender;
pub use block::DEFAULT_BLOCK_SIZE;
pub use cut::SMALL_CUT_COPY;
pub use fd::IOV_MAX;
pub use file_region::{FileRegion, SendMode};
pub use iobuf::{IOBuf, Slices};
pub use portal::IOPortal;
pub use user_data::UserData;

/// Usable bytes in an owned block (`DEFAULT_BLOCK_SIZE` minus the header).
pub const BLOCK_DATA_SIZE: usize = block::OWNED_CAP;

/// Free blocks cached by the calling thread (for memory tests and
/// diagnostics).
pub fn thread_cached_blocks() -> usize {
    block_pool::pooled_blocks()
}

/// Returns the calling thread's cached blocks to the allocator: the
/// partially filled block that small appends go to and the free list.
/// Useful after a burst or before a thread
/// parks for long; the cache refills on the next append.
pub fn release_thread_cache() {
    tls_block::release();
    block_pool::release();
}

const _: () = assert!(std::mem::size_of::<IOBuf>() <= 40);

/// Compile-time check: buffers move between threads (and can be read from
/// several), appenders and portals can be handed to another thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<IOBuf>();
    send::<IOPortal>();
    send::<IOBufAppender<'static>>();
    send_sync::<FileRegion>();
};
