//! IOBuf as a `bytes::Buf`, an `io::Read` / `io::Write`, and conversions.

use std::io;

use bytes::{Buf, Bytes};

use crate::iobuf::IOBuf;

impl Buf for IOBuf {
    #[inline]
    fn remaining(&self) -> usize {
        self.len()
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        self.backing_block(0).unwrap_or(&[])
    }

    #[inline]
    fn advance(&mut self, cnt: usize) {
        assert!(cnt <= self.len(), "IOBuf::advance past the end");
        self.pop_front(cnt);
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (d, s) in dst.iter_mut().zip(self.slices()) {
            *d = io::IoSlice::new(s);
            n += 1;
        }
        n
    }

    /// Zero-copy when the bytes sit in one reference: the `Bytes` keeps the
    /// block alive (so `prost` decoding `bytes` fields does not copy).
    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        assert!(len <= self.len(), "IOBuf::copy_to_bytes past the end");
        let part = self.split_to(len);
        match part.backing_block_num() {
            0 => Bytes::new(),
            1 => Bytes::from_owner(SingleRef(part)),
            _ => Bytes::from(part.to_vec()),
        }
    }
}

/// A one-reference IOBuf owning the storage of a `Bytes`.
struct SingleRef(IOBuf);

impl AsRef<[u8]> for SingleRef {
    fn as_ref(&self) -> &[u8] {
        self.0.backing_block(0).unwrap_or(&[])
    }
}

impl io::Read for IOBuf {
    /// Cuts bytes off the front. Returns 0 when empty.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.cut_into_slice(buf))
    }
}

impl io::Write for IOBuf {
    /// Appends (copies) all of `buf`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.append(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl From<Vec<u8>> for IOBuf {
    /// Zero-copy: the vector becomes a user block.
    fn from(v: Vec<u8>) -> IOBuf {
        let mut b = IOBuf::new();
        b.append_user_data(v);
        b
    }
}

impl From<String> for IOBuf {
    /// Small strings are copied into blocks (cheaper than a user block);
    /// from 1 KiB on, the string's buffer becomes a user block (zero-copy).
    fn from(s: String) -> IOBuf {
        if s.len() < 1024 {
            IOBuf::from(s.as_str())
        } else {
            IOBuf::from(s.into_bytes())
        }
    }
}

impl From<Bytes> for IOBuf {
    /// Zero-copy: the `Bytes` becomes a user block.
    fn from(v: Bytes) -> IOBuf {
        let mut b = IOBuf::new();
        b.append_user_data(v);
        b
    }
}

impl From<&[u8]> for IOBuf {
    /// Copies into blocks.
    fn from(v: &[u8]) -> IOBuf {
        let mut b = IOBuf::new();
        b.append(v);
        b
    }
}

impl From<&str> for IOBuf {
    /// Copies into blocks.
    fn from(v: &str) -> IOBuf {
        IOBuf::from(v.as_bytes())
    }
}

impl Extend<u8> for IOBuf {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        let mut tmp = [0u8; 256];
        let mut n = 0;
        for b in iter {
            tmp[n] = b;
            n += 1;
            if n == tmp.len() {
                self.append(&tmp);
                n = 0;
            }
        }
        self.append(&tmp[..n]);
    }
}
