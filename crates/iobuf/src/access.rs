//! Reading an IOBuf without changing it: copies, contiguous views,
//! comparisons.

use crate::iobuf::IOBuf;

impl IOBuf {
    /// Copies bytes starting at `pos` into `dst` (as many as fit or
    /// remain). Returns the number copied.
    pub fn copy_to(&self, dst: &mut [u8], pos: usize) -> usize {
        let mut skip = pos;
        let mut done = 0;
        for s in self.slices() {
            if done == dst.len() {
                break;
            }
            if skip >= s.len() {
                skip -= s.len();
                continue;
            }
            let s = &s[skip..];
            skip = 0;
            let n = s.len().min(dst.len() - done);
            dst[done..done + n].copy_from_slice(&s[..n]);
            done += n;
        }
        done
    }

    /// A contiguous view of the first `n` bytes: borrowed from the block
    /// when they sit in one reference, otherwise copied into `aux`.
    /// Returns `None` when the buffer holds fewer than `n` bytes.
    ///
    /// # Panics
    /// When a copy is needed and `aux` is shorter than `n`.
    #[inline]
    pub fn fetch<'a>(&'a self, n: usize, aux: &'a mut [u8]) -> Option<&'a [u8]> {
        if self.len() < n {
            return None;
        }
        if n == 0 {
            return Some(&[]);
        }
        let first = self.q.get(0).as_slice();
        if first.len() >= n {
            return Some(&first[..n]);
        }
        assert!(aux.len() >= n, "IOBuf::fetch: aux buffer too small");
        self.copy_to(&mut aux[..n], 0);
        Some(&aux[..n])
    }

    /// Copies all bytes into a new `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for s in self.slices() {
            v.extend_from_slice(s);
        }
        v
    }

    /// Byte-wise comparison with a slice, without copying.
    pub fn equals(&self, mut other: &[u8]) -> bool {
        if self.len() != other.len() {
            return false;
        }
        for s in self.slices() {
            if &other[..s.len()] != s {
                return false;
            }
            other = &other[s.len()..];
        }
        true
    }
}

impl PartialEq<[u8]> for IOBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self.equals(other)
    }
}

impl PartialEq<&[u8]> for IOBuf {
    fn eq(&self, other: &&[u8]) -> bool {
        self.equals(other)
    }
}

impl PartialEq<Vec<u8>> for IOBuf {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.equals(other)
    }
}

impl PartialEq<str> for IOBuf {
    fn eq(&self, other: &str) -> bool {
        self.equals(other.as_bytes())
    }
}

impl PartialEq<&str> for IOBuf {
    fn eq(&self, other: &&str) -> bool {
        self.equals(other.as_bytes())
    }
}

impl PartialEq for IOBuf {
    fn eq(&self, other: &IOBuf) -> bool {
        if self.len() != other.len() {
            return false;
        }
        // Walk both slice lists in step.
        let mut a = self.slices();
        let mut b = other.slices();
        let (mut sa, mut sb): (&[u8], &[u8]) = (&[], &[]);
        loop {
            if sa.is_empty() {
                match a.next() {
                    Some(s) => sa = s,
                    None => return true,
                }
            }
            if sb.is_empty() {
                match b.next() {
                    Some(s) => sb = s,
                    None => return true,
                }
            }
            let n = sa.len().min(sb.len());
            if sa[..n] != sb[..n] {
                return false;
            }
            sa = &sa[n..];
            sb = &sb[n..];
        }
    }
}

impl Eq for IOBuf {}
