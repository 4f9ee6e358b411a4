//! `IOBufAppender`: writes straight into block tails (bRPC's
//! `IOBufAppender`), implementing `bytes::BufMut` so that encoders such as
//! `prost` serialize into an IOBuf without an intermediate `Vec`.

use bytes::buf::UninitSlice;
use bytes::BufMut;

use crate::iobuf::IOBuf;
use crate::tail::Tail;
use crate::tls_block;

/// Appends to an [`IOBuf`] by writing into the tail of a block it holds
/// exclusively. Takes the thread's current block on creation and gives it
/// back on drop, so interleaving appenders and `IOBuf::append` stays
/// compact.
///
/// ```
/// use bytes::BufMut;
/// use fibrpc_iobuf::{IOBuf, IOBufAppender};
/// let mut buf = IOBuf::new();
/// let mut w = IOBufAppender::new(&mut buf);
/// w.put_u32(7);
/// w.put_slice(b"abc");
/// drop(w);
/// assert_eq!(buf, b"\0\0\0\x07abc"[..]);
/// ```
pub struct IOBufAppender<'a> {
    buf: &'a mut IOBuf,
    tail: Option<Tail>,
}

impl<'a> IOBufAppender<'a> {
    /// An appender writing to the end of `buf`.
    pub fn new(buf: &'a mut IOBuf) -> IOBufAppender<'a> {
        IOBufAppender {
            buf,
            tail: tls_block::take(),
        }
    }

    /// Copies `data` into the tail.
    #[inline]
    pub fn append(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let t = ready_tail(&mut self.tail);
            let n = t.write(&mut self.buf.q, data);
            data = &data[n..];
        }
    }

    /// Appends one byte.
    #[inline]
    pub fn push_byte(&mut self, b: u8) {
        self.append(std::slice::from_ref(&b));
    }

    /// The buffer written so far.
    pub fn buf(&self) -> &IOBuf {
        self.buf
    }
}

/// The tail in `slot`, replaced by a fresh block when missing or full, so it
/// has room for at least one byte.
#[inline]
fn ready_tail(slot: &mut Option<Tail>) -> &mut Tail {
    if slot.as_ref().is_none_or(Tail::is_full) {
        *slot = Some(Tail::new());
    }
    slot.as_mut().expect("just set")
}

impl Drop for IOBufAppender<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.tail.take() {
            tls_block::give_back(t);
        }
    }
}

// SAFETY: `remaining_mut` is honest (an IOBuf grows without bound, minus the
// usize limit), `chunk_mut` returns the uninitialized tail of a block this
// appender owns exclusively (no ref covers it, see `tail.rs`), and
// `advance_mut` only publishes bytes the caller promises it initialized.
unsafe impl BufMut for IOBufAppender<'_> {
    #[inline]
    fn remaining_mut(&self) -> usize {
        usize::MAX - self.buf.len()
    }

    #[inline]
    unsafe fn advance_mut(&mut self, cnt: usize) {
        let t = self.tail.as_mut().expect("advance_mut without chunk_mut");
        assert!(cnt <= t.spare(), "advance_mut past the chunk");
        // SAFETY: BufMut's contract: the caller initialized the first `cnt`
        // bytes of the chunk returned by `chunk_mut`, i.e. of our tail.
        unsafe { t.commit(&mut self.buf.q, cnt) };
    }

    #[inline]
    fn chunk_mut(&mut self) -> &mut UninitSlice {
        let t = ready_tail(&mut self.tail);
        // SAFETY: `spare()` bytes at `tail_ptr()` are inside the block and
        // written only through this exclusively held tail; the borrow of
        // `self` keeps anyone else from using it meanwhile.
        unsafe { UninitSlice::from_raw_parts_mut(t.tail_ptr(), t.spare()) }
    }

    #[inline]
    fn put_slice(&mut self, src: &[u8]) {
        self.append(src);
    }
}
