//! `IOBuf`: a chain of references into refcounted blocks (bRPC's
//! `butil::IOBuf`). This file has the type and the ways bytes get in; cutting
//! is in `cut.rs`, reading in `access.rs`, fd I/O in `fd.rs`.

use std::any::Any;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::block::Block;
use crate::block_ref::BlockRef;
use crate::ref_queue::RefQueue;
use crate::tls_block;
use crate::user_data::{Deleter, UserData};

/// A non-contiguous, zero-copy byte buffer.
///
/// An `IOBuf` is a list of `{offset, length, block}` references into
/// refcounted blocks (8 KiB by default, or foreign memory appended with
/// [`append_user_data`](IOBuf::append_user_data)). Cloning, appending another
/// `IOBuf` and cutting move or copy references, never bytes. Bytes are
/// immutable once in a buffer: mutating one `IOBuf` never changes what
/// another `IOBuf` sharing its blocks observes.
///
/// ```
/// use fibrpc_iobuf::IOBuf;
/// let mut a = IOBuf::new();
/// a.append(b"hello world");
/// let mut b = a.clone(); // shares the block
/// let mut hello = IOBuf::new();
/// b.cut_to(&mut hello, 5);
/// assert_eq!(hello, b"hello"[..]);
/// assert_eq!(b, b" world"[..]);
/// assert_eq!(a, b"hello world"[..]); // untouched
/// ```
pub struct IOBuf {
    pub(crate) q: RefQueue,
}

impl IOBuf {
    /// An empty buffer. Does not allocate.
    #[inline]
    pub const fn new() -> IOBuf {
        IOBuf { q: RefQueue::new() }
    }

    /// Number of bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.q.nbytes()
    }

    /// True when the buffer holds no byte.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.q.nref() == 0
    }

    /// Drops every byte (releasing block references).
    #[inline]
    pub fn clear(&mut self) {
        self.q.clear();
    }

    /// Copies `data` to the end, filling the tail of the calling thread's
    /// current block first.
    #[inline]
    pub fn append(&mut self, data: &[u8]) {
        tls_block::append(&mut self.q, data);
    }

    /// Appends one byte.
    #[inline]
    pub fn push_byte(&mut self, b: u8) {
        tls_block::append(&mut self.q, std::slice::from_ref(&b));
    }

    /// Appends the bytes of `other` by sharing its blocks: no byte is copied,
    /// `other` is unchanged.
    #[inline]
    pub fn append_buf(&mut self, other: &IOBuf) {
        for i in 0..other.q.nref() {
            self.q.push_back(other.q.get(i).clone());
        }
    }

    /// Appends `other`, moving its references (no refcount traffic when the
    /// refs do not merge).
    #[inline]
    pub fn append_owned(&mut self, mut other: IOBuf) {
        if self.is_empty() {
            std::mem::swap(self, &mut other);
            return;
        }
        while let Some(r) = other.q.pop_front() {
            self.q.push_back(r);
        }
    }

    /// Appends foreign memory without copying it: a `Vec<u8>`, `Box<[u8]>`,
    /// `bytes::Bytes`, `String`, `&'static [u8]`, or any [`UserData`]. The
    /// value is dropped (its deleter runs) when the last reference to its
    /// bytes goes, on whichever thread that happens.
    pub fn append_user_data<T: UserData>(&mut self, data: T) {
        // Box first, then look at the bytes: moving the box never moves
        // the value, so the pointer stays valid for the box's life.
        let boxed = Box::new(data);
        let bytes = boxed.as_bytes();
        let (ptr, len) = (bytes.as_ptr(), bytes.len());
        if len == 0 {
            return;
        }
        let Some(ptr) = NonNull::new(ptr.cast_mut()) else {
            return;
        };
        // SAFETY: `UserData` promises the bytes stay valid, initialized and
        // unmodified while the value lives; `boxed` becomes the owner.
        unsafe { self.append_user_block(ptr, len, boxed) };
    }

    /// Appends `len` bytes at `ptr` without copying; `deleter` runs once
    /// when the last reference to them goes (for an mmap: `munmap`).
    ///
    /// # Safety
    /// The `len` bytes at `ptr` must be initialized, stay valid and must not
    /// be modified until `deleter` is called. `deleter` may run on any
    /// thread.
    pub unsafe fn append_user_data_raw<F>(&mut self, ptr: *const u8, len: usize, deleter: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let owner = Box::new(Deleter::new(deleter));
        let Some(ptr) = NonNull::new(ptr.cast_mut()) else {
            return; // `owner` runs the deleter now
        };
        if len == 0 {
            return;
        }
        // SAFETY: forwarded from the caller's contract.
        unsafe { self.append_user_block(ptr, len, owner) };
    }

    /// # Safety
    /// See `append_user_data_raw`: `owner` keeps `len` bytes at `ptr` valid
    /// and unmodified.
    unsafe fn append_user_block(
        &mut self,
        ptr: NonNull<u8>,
        len: usize,
        owner: Box<dyn Any + Send + Sync>,
    ) {
        if let Ok(len32) = u32::try_from(len) {
            // SAFETY: forwarded; the new block holds the one reference that
            // the ref adopts.
            unsafe {
                let block = Block::new_user(ptr, len32, owner);
                self.q.push_back(BlockRef::adopt(block, 0, len32));
            }
            return;
        }
        // Refs address blocks with 32-bit offsets: split huge user data into
        // several blocks that share the owner through an `Arc`.
        const CHUNK: usize = 1 << 31;
        let shared: Arc<dyn Any + Send + Sync> = Arc::from(owner);
        let mut off = 0;
        while off < len {
            let n = (len - off).min(CHUNK);
            // SAFETY: `off < len`, so the pointer is inside the user range;
            // each chunk's block keeps the shared owner alive.
            unsafe {
                let p = ptr.add(off);
                let block = Block::new_user(p, n as u32, Box::new(Arc::clone(&shared)));
                self.q.push_back(BlockRef::adopt(block, 0, n as u32));
            }
            off += n;
        }
    }

    /// Number of references (bRPC: `backing_block_num`).
    #[inline]
    pub fn backing_block_num(&self) -> usize {
        self.q.nref()
    }

    /// The bytes of the i-th reference (bRPC: `backing_block(i)`).
    #[inline]
    pub fn backing_block(&self, i: usize) -> Option<&[u8]> {
        (i < self.q.nref()).then(|| self.q.get(i).as_slice())
    }

    /// Iterates over the contiguous byte slices, front to back.
    #[inline]
    pub fn slices(&self) -> Slices<'_> {
        Slices { buf: self, i: 0 }
    }

    /// Whether the i-th reference points into the same block as the j-th
    /// reference of `other` (used by tests to check sharing).
    pub fn shares_block_with(&self, i: usize, other: &IOBuf, j: usize) -> bool {
        i < self.q.nref() && j < other.q.nref() && self.q.get(i).block == other.q.get(j).block
    }
}

impl Default for IOBuf {
    fn default() -> Self {
        IOBuf::new()
    }
}

impl Clone for IOBuf {
    /// Shares the blocks: copies references, not bytes.
    fn clone(&self) -> Self {
        let mut b = IOBuf::new();
        b.append_buf(self);
        b
    }
}

/// Iterator over an [`IOBuf`]'s contiguous slices, from [`IOBuf::slices`].
pub struct Slices<'a> {
    buf: &'a IOBuf,
    i: usize,
}

impl<'a> Iterator for Slices<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.buf.backing_block(self.i)?;
        self.i += 1;
        Some(s)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.buf.backing_block_num() - self.i;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Slices<'_> {}
