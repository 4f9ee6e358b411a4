//! `Debug` for IOBuf: length, number of refs and the bytes, escaped like a
//! byte-string literal and truncated so a big buffer does not flood a log.

use std::fmt;

use crate::iobuf::IOBuf;

/// Bytes shown before `...`.
const MAX_SHOWN: usize = 256;

impl fmt::Debug for IOBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IOBuf {{ len: {}, refs: {}, data: b\"",
            self.len(),
            self.backing_block_num()
        )?;
        let mut shown = 0;
        'outer: for s in self.slices() {
            for &b in s {
                if shown == MAX_SHOWN {
                    f.write_str("...")?;
                    break 'outer;
                }
                write!(f, "{}", b.escape_ascii())?;
                shown += 1;
            }
        }
        f.write_str("\" }")
    }
}
