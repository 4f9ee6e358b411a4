//! [`Cursor`]: reading an [`IOBuf`] at a position without consuming it,
//! block by block, so that a parser resuming in the middle of a long
//! input neither copies it nor walks it byte by byte from the front.

use fibrpc_iobuf::IOBuf;

/// A read position in an [`IOBuf`].
pub(crate) struct Cursor<'a> {
    buf: &'a IOBuf,
    /// The reference the position is in, and the offset inside it.
    blk: usize,
    off: usize,
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at `pos` (at most `buf.len()`): one step per reference
    /// before it.
    pub(crate) fn at(buf: &'a IOBuf, pos: usize) -> Cursor<'a> {
        let mut c = Cursor {
            buf,
            blk: 0,
            off: 0,
            pos: 0,
        };
        c.advance(pos);
        c
    }

    /// The position, from the front of the buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes from the position to the end.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The byte at the position.
    pub(crate) fn peek(&self) -> Option<u8> {
        let mut c = [0u8];
        (self.copy(&mut c) == 1).then_some(c[0])
    }

    /// Moves forward `n` bytes (clamped to the end).
    pub(crate) fn advance(&mut self, mut n: usize) {
        n = n.min(self.remaining());
        self.pos += n;
        while n > 0 {
            let Some(s) = self.buf.backing_block(self.blk) else {
                return;
            };
            let left = s.len() - self.off;
            if n < left {
                self.off += n;
                return;
            }
            n -= left;
            self.blk += 1;
            self.off = 0;
        }
        self.normalize();
    }

    /// Skips past the ends of references.
    fn normalize(&mut self) {
        while let Some(s) = self.buf.backing_block(self.blk) {
            if self.off < s.len() {
                break;
            }
            self.blk += 1;
            self.off = 0;
        }
    }

    /// Copies the bytes at the position into `dst` (as many as fit or
    /// remain) without moving. Returns how many.
    pub(crate) fn copy(&self, dst: &mut [u8]) -> usize {
        let mut done = 0;
        let (mut blk, mut off) = (self.blk, self.off);
        while done < dst.len() {
            let Some(s) = self.buf.backing_block(blk) else {
                break;
            };
            let s = &s[off.min(s.len())..];
            let n = s.len().min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&s[..n]);
            done += n;
            blk += 1;
            off = 0;
        }
        done
    }

    /// The offset from the position of the first `b` within the next
    /// `limit` bytes.
    pub(crate) fn find(&self, b: u8, limit: usize) -> Option<usize> {
        let mut seen = 0;
        let (mut blk, mut off) = (self.blk, self.off);
        while seen < limit {
            let s = self.buf.backing_block(blk)?;
            let s = &s[off.min(s.len())..];
            let s = &s[..s.len().min(limit - seen)];
            if let Some(i) = s.iter().position(|&x| x == b) {
                return Some(seen + i);
            }
            seen += s.len();
            blk += 1;
            off = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chained(parts: &[&[u8]]) -> IOBuf {
        let mut b = IOBuf::new();
        for p in parts {
            b.append_owned(IOBuf::from(p.to_vec()));
        }
        b
    }

    #[test]
    fn positions_cross_references() {
        let b = chained(&[b"ab", b"", b"cde", b"f"]);
        let mut c = Cursor::at(&b, 1);
        assert_eq!(c.peek(), Some(b'b'));
        assert_eq!(c.find(b'e', 10), Some(3));
        assert_eq!(c.find(b'e', 3), None);
        c.advance(2);
        assert_eq!((c.pos(), c.remaining(), c.peek()), (3, 3, Some(b'd')));
        let mut d = [0u8; 8];
        assert_eq!(c.copy(&mut d), 3);
        assert_eq!(&d[..3], b"def");
        c.advance(10);
        assert_eq!((c.pos(), c.peek()), (6, None));
    }
}
