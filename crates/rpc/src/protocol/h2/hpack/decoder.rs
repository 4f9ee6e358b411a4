//! The HPACK decoder: one per connection, fed whole header blocks in
//! order (RFC 7541 §3).

use std::collections::VecDeque;

use super::tables::STATIC_TABLE;
use super::{entry_size, huffman, DEFAULT_TABLE_SIZE};

/// Why a header block did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Malformed: the decoder's state is lost, the connection must end
    /// with `COMPRESSION_ERROR`.
    Compression(&'static str),
    /// Well formed, but the decoded list passes the limit: the block was
    /// decoded whole (the table is in step), the headers past the limit
    /// were dropped. The request is refused; the connection goes on.
    ListTooLarge,
}

/// A header as the dynamic table keeps it: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// One connection's HPACK decoding state: the dynamic table.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first.
    table: VecDeque<Entry>,
    /// The table's size as RFC 7541 counts it.
    size: usize,
    /// The size the peer's encoder chose (size updates), at most `limit`.
    max_size: usize,
    /// What we allow (our `SETTINGS_HEADER_TABLE_SIZE`).
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_TABLE_SIZE)
    }
}

impl Decoder {
    /// A decoder whose dynamic table may grow to `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
        }
    }

    /// Decodes one whole header block, calling `f` with each header in
    /// order until their list size (§6.5.2 of RFC 9113) would pass
    /// `max_list`; then it decodes the rest without calling `f` and
    /// returns [`DecodeError::ListTooLarge`].
    pub fn decode(
        &mut self,
        mut block: &[u8],
        max_list: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let mut list = 0usize;
        let mut over = false;
        let mut first = true;
        let mut emit = |name: &[u8], value: &[u8]| {
            list = list.saturating_add(entry_size(name, value));
            if list > max_list {
                over = true;
            }
            if !over {
                f(name, value);
            }
        };
        while let Some(&b) = block.first() {
            if b & 0x80 != 0 {
                // Indexed field (§6.1).
                let (index, n) = integer(block, 7)?;
                block = &block[n..];
                let (name, value) = self.get(index)?;
                emit(name, value);
            } else if b & 0xc0 == 0x40 {
                // Literal with incremental indexing (§6.2.1).
                let ((name, value), n) = self.literal(block, 6)?;
                block = &block[n..];
                emit(&name, &value);
                self.insert(name, value);
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3): only at the start of
                // a block (§4.2).
                if !first {
                    return Err(DecodeError::Compression(
                        "a table size update after the first header",
                    ));
                }
                let (size, n) = integer(block, 5)?;
                block = &block[n..];
                if size > self.limit {
                    return Err(DecodeError::Compression(
                        "a table size update over SETTINGS_HEADER_TABLE_SIZE",
                    ));
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                // Literal without indexing (0000) or never indexed (0001)
                // (§6.2.2, §6.2.3).
                let ((name, value), n) = self.literal(block, 4)?;
                block = &block[n..];
                emit(&name, &value);
            }
            first = false;
        }
        if over {
            Err(DecodeError::ListTooLarge)
        } else {
            Ok(())
        }
    }

    /// Entry `index` of the static table then the dynamic one.
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        match index {
            0 => Err(DecodeError::Compression("index 0")),
            1..=61 => Ok(STATIC_TABLE[index - 1]),
            _ => self
                .table
                .get(index - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or(DecodeError::Compression("index past the dynamic table")),
        }
    }

    /// A literal field: its name (indexed with a `prefix`-bit index, or a
    /// string), its value, and the bytes it took.
    fn literal(&self, block: &[u8], prefix: u8) -> Result<(Entry, usize), DecodeError> {
        let (index, mut n) = integer(block, prefix)?;
        let name: Box<[u8]> = if index == 0 {
            let (s, m) = string(&block[n..])?;
            n += m;
            s.into()
        } else {
            self.get(index)?.0.into()
        };
        let (value, m) = string(&block[n..])?;
        Ok(((name, value.into()), n + m))
    }

    /// Adds an entry, evicting the oldest ones to make room (§4.4); an
    /// entry larger than the table empties it and is not added.
    fn insert(&mut self, name: Box<[u8]>, value: Box<[u8]>) {
        let size = entry_size(&name, &value);
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table.push_front((name, value));
    }

    /// Evicts until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= entry_size(&n, &v),
                None => break,
            }
        }
    }
}

/// An integer with a `prefix`-bit prefix (§5.1): the value and the bytes
/// it took. Values past 2^28 are refused (no header needs them, and the
/// shifts stay in range).
fn integer(block: &[u8], prefix: u8) -> Result<(usize, usize), DecodeError> {
    let mask = (1usize << prefix) - 1;
    let first = usize::from(
        *block
            .first()
            .ok_or(DecodeError::Compression("truncated integer"))?,
    );
    let mut value = first & mask;
    if value < mask {
        return Ok((value, 1));
    }
    let mut shift = 0;
    for (i, &b) in block[1..].iter().enumerate() {
        if shift > 21 {
            return Err(DecodeError::Compression("integer too large"));
        }
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((value, i + 2));
        }
    }
    Err(DecodeError::Compression("truncated integer"))
}

/// A string literal (§5.2): its bytes and the bytes it took.
fn string(block: &[u8]) -> Result<(Vec<u8>, usize), DecodeError> {
    let huffman = block
        .first()
        .ok_or(DecodeError::Compression("truncated string"))?
        & 0x80
        != 0;
    let (len, n) = integer(block, 7)?;
    let raw = block
        .get(n..n + len)
        .ok_or(DecodeError::Compression("truncated string"))?;
    if huffman {
        let mut out = Vec::with_capacity(len + len / 2);
        huffman::decode(raw, &mut out).map_err(|e| match e {
            huffman::HuffmanError::Eos => DecodeError::Compression("EOS in a Huffman string"),
            huffman::HuffmanError::Padding => DecodeError::Compression("bad Huffman padding"),
        })?;
        Ok((out, n + len))
    } else {
        Ok((raw.to_vec(), n + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.decode(block, usize::MAX, |n, v| {
            out.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        })
        .unwrap();
        out
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn rfc_7541_c3_requests_without_huffman() {
        let mut d = Decoder::default();
        let c31 = [
            0x82, 0x86, 0x84, 0x41, 0x0f, b'w', b'w', b'w', b'.', b'e', b'x', b'a', b'm', b'p',
            b'l', b'e', b'.', b'c', b'o', b'm',
        ];
        assert_eq!(
            decode_all(&mut d, &c31),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.size, 57);
        let c32 = [
            0x82, 0x86, 0x84, 0xbe, 0x58, 0x08, b'n', b'o', b'-', b'c', b'a', b'c', b'h', b'e',
        ];
        assert_eq!(
            decode_all(&mut d, &c32),
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        assert_eq!(d.size, 110);
    }

    #[test]
    fn rfc_7541_c4_requests_with_huffman() {
        let mut d = Decoder::default();
        let c41 = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        assert_eq!(
            decode_all(&mut d, &c41)[3],
            (":authority".to_string(), "www.example.com".to_string())
        );
    }

    #[test]
    fn eviction_and_size_updates() {
        let mut d = Decoder::new(64);
        // A 40-byte entry ("aaaa"+"bbbb"+32), then another: the first goes.
        let lit = |n: &[u8], v: &[u8]| {
            let mut b = vec![0x40, n.len() as u8];
            b.extend_from_slice(n);
            b.push(v.len() as u8);
            b.extend_from_slice(v);
            b
        };
        decode_all(&mut d, &lit(b"aaaa", b"bbbb"));
        decode_all(&mut d, &lit(b"cccc", b"dddd"));
        assert_eq!(d.table.len(), 1);
        assert_eq!(decode_all(&mut d, &[0xbe])[0].0, "cccc");
        // Size update to 0 empties the table; over the limit is an error.
        decode_all(&mut d, &[0x20, 0x82]);
        assert!(d.table.is_empty());
        assert!(matches!(
            d.decode(&[0x3f, 0x30, 0x82], usize::MAX, |_, _| {}),
            Err(DecodeError::Compression(_))
        ));
        // Not after a header.
        assert!(d.decode(&[0x82, 0x20], usize::MAX, |_, _| {}).is_err());
    }

    #[test]
    fn list_limit_stops_collecting_but_decodes_the_block() {
        let mut d = Decoder::default();
        let mut block = vec![0x40, 1, b'x', 100];
        block.extend_from_slice(&[b'v'; 100]);
        // 133 bytes each; the same entry again by index 62, 100 times.
        block.extend(std::iter::repeat_n(0xbe, 100));
        let mut seen = 0;
        let r = d.decode(&block, 1000, |_, _| seen += 1);
        assert_eq!(r, Err(DecodeError::ListTooLarge));
        assert_eq!(seen, 7);
        // The table stayed in step: the entry is there.
        assert_eq!(d.table.len(), 1);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut d = Decoder::default();
        for bad in [
            &[0x80][..],                           // index 0
            &[0xff, 0x80],                         // truncated integer
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // integer too large
            &[0xbe],                               // empty dynamic table
            &[0x40, 0x05, b'a'],                   // truncated string
        ] {
            assert!(
                matches!(
                    d.decode(bad, usize::MAX, |_, _| {}),
                    Err(DecodeError::Compression(_))
                ),
                "{bad:?}"
            );
        }
    }
}
