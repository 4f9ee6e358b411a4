//! Taking bytes off an IOBuf: cutting moves references, popping drops them.

use crate::iobuf::IOBuf;
use crate::tls_block;

/// A piece cut from the middle of a ref, at most this long, is copied into
/// a non-empty `out` (through the thread-local block) instead of sharing the
/// ref. Sharing costs two atomic refcount operations, a ring slot and, when
/// written out, one iovec; copying two cache lines costs a few nanoseconds,
/// and consecutive small copies land contiguously in one block, where they
/// just extend `out`'s last ref. Measured in `benches/pipeline.rs`: with
/// 128-byte payloads, copying took the pipeline from 7.0 to 4.9 ms per
/// 16 MiB. Into an empty `out` there is nothing to extend, a copy would need
/// a new counted ref anyway, so the piece is shared.
pub const SMALL_CUT_COPY: usize = 128;

impl IOBuf {
    /// Moves the first `n` bytes (or all, if fewer) to the end of `out`.
    /// Whole references move (no refcount traffic); a reference split in
    /// the middle is shared (one refcount increment), unless the piece is
    /// at most [`SMALL_CUT_COPY`] bytes and `out` is not empty, in which case
    /// it is copied. Returns the number of bytes moved.
    #[inline]
    pub fn cut_to(&mut self, out: &mut IOBuf, n: usize) -> usize {
        // Fast path: the cut ends inside the first ref.
        if let Some(front) = self.q.front() {
            if (front.len() as usize) > n {
                if n > 0 {
                    self.cut_inside_front(out, n);
                }
                return n;
            }
        }
        self.cut_to_slow(out, n)
    }

    /// Moves the first `n` bytes of the front ref to `out`, `0 < n <
    /// front.len()`: copied or shared, see [`SMALL_CUT_COPY`].
    #[inline]
    fn cut_inside_front(&mut self, out: &mut IOBuf, n: usize) {
        if n <= SMALL_CUT_COPY && !out.is_empty() {
            let front = self.q.get(0);
            tls_block::append(&mut out.q, &front.as_slice()[..n]);
            self.q.shrink_front(n as u32);
        } else {
            let r = self.q.split_front(n as u32);
            out.q.push_back(r);
        }
    }

    fn cut_to_slow(&mut self, out: &mut IOBuf, n: usize) -> usize {
        let total = n.min(self.len());
        let mut left = total;
        while left > 0 {
            let front = self.q.get(0).len() as usize;
            if front <= left {
                let r = self.q.pop_front().expect("front exists");
                out.q.push_back(r);
                left -= front;
            } else {
                self.cut_inside_front(out, left);
                left = 0;
            }
        }
        total
    }

    /// Cuts the first `n` bytes (or all, if fewer) into a new IOBuf.
    #[inline]
    pub fn split_to(&mut self, n: usize) -> IOBuf {
        let mut out = IOBuf::new();
        self.cut_to(&mut out, n);
        out
    }

    /// Copies the first `dst.len()` bytes (or all, if fewer) into `dst` and
    /// removes them. Returns the number of bytes copied.
    #[inline]
    pub fn cut_into_slice(&mut self, dst: &mut [u8]) -> usize {
        // Fast path: the first ref has more than enough bytes.
        if let Some(front) = self.q.front() {
            if front.len() as usize > dst.len() {
                dst.copy_from_slice(&front.as_slice()[..dst.len()]);
                if !dst.is_empty() {
                    self.q.shrink_front(dst.len() as u32);
                }
                return dst.len();
            }
        }
        self.cut_into_slice_slow(dst)
    }

    fn cut_into_slice_slow(&mut self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        while done < dst.len() && !self.is_empty() {
            let front = self.q.get(0);
            let len = front.len() as usize;
            let n = len.min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&front.as_slice()[..n]);
            done += n;
            if n == len {
                self.q.pop_front();
            } else {
                self.q.shrink_front(n as u32);
            }
        }
        done
    }

    /// Removes the first `n` bytes (or all). Returns the number removed.
    #[inline]
    pub fn pop_front(&mut self, n: usize) -> usize {
        let total = n.min(self.len());
        let mut left = total;
        while left > 0 {
            let front = self.q.get(0).len() as usize;
            if front <= left {
                self.q.pop_front();
                left -= front;
            } else {
                self.q.shrink_front(left as u32);
                left = 0;
            }
        }
        total
    }

    /// Removes the last `n` bytes (or all). Returns the number removed.
    #[inline]
    pub fn pop_back(&mut self, n: usize) -> usize {
        let total = n.min(self.len());
        let mut left = total;
        while left > 0 {
            let back = self.q.back().expect("back exists").len() as usize;
            if back <= left {
                self.q.pop_back();
                left -= back;
            } else {
                self.q.shrink_back(left as u32);
                left = 0;
            }
        }
        total
    }

    /// For line protocols: when `delim` occurs, moves the bytes before its
    /// first occurrence to `out`, drops the delimiter and returns `true`.
    /// Otherwise leaves both buffers unchanged and returns `false`. An empty
    /// `delim` matches at position 0.
    pub fn cut_until(&mut self, out: &mut IOBuf, delim: &[u8]) -> bool {
        match self.find(delim) {
            Some(pos) => {
                self.cut_to(out, pos);
                self.pop_front(delim.len());
                true
            }
            None => false,
        }
    }

    /// Position of the first occurrence of `needle`, searching across
    /// references. An empty needle is found at 0.
    pub fn find(&self, needle: &[u8]) -> Option<usize> {
        let Some(&first) = needle.first() else {
            return Some(0);
        };
        let mut base = 0;
        for (ri, s) in self.slices().enumerate() {
            let mut from = 0;
            while let Some(p) = s[from..].iter().position(|&b| b == first) {
                let at = from + p;
                if self.matches_at(ri, at, needle) {
                    return Some(base + at);
                }
                from = at + 1;
            }
            base += s.len();
        }
        None
    }

    /// Whether `needle` starts at byte `off` of ref `ri` (may span refs).
    fn matches_at(&self, mut ri: usize, mut off: usize, mut needle: &[u8]) -> bool {
        while !needle.is_empty() {
            let Some(s) = self.backing_block(ri) else {
                return false;
            };
            let avail = &s[off..];
            let n = avail.len().min(needle.len());
            if avail[..n] != needle[..n] {
                return false;
            }
            needle = &needle[n..];
            ri += 1;
            off = 0;
        }
        true
    }
}
