//! Decoding HPACK's Huffman code (RFC 7541 §5.2, Appendix B).
//!
//! The code is canonical: sorted by length then symbol, each code is the
//! previous one plus one, shifted left by the growth in length. So the
//! codes of one length are a contiguous range, and a decoder needs per
//! length only the first code, how many there are and where their
//! symbols start: a few array reads per bit, no table of 2^30 entries
//! and no allocation.

use std::sync::OnceLock;

use super::tables::HUFFMAN_CODES;

/// The longest code (EOS) is 30 bits.
const MAX_LEN: usize = 30;
const EOS: u16 = 256;

/// The canonical form of the code.
struct Canonical {
    /// The first code of each length.
    first: [u32; MAX_LEN + 1],
    /// How many codes have each length.
    count: [u32; MAX_LEN + 1],
    /// Where the symbols of each length start in `symbols`.
    offset: [u32; MAX_LEN + 1],
    /// The symbols sorted by (length, code).
    symbols: [u16; 257],
}

fn canonical() -> &'static Canonical {
    static C: OnceLock<Canonical> = OnceLock::new();
    C.get_or_init(|| {
        let mut order: Vec<u16> = (0..257).collect();
        order.sort_by_key(|&s| {
            (
                HUFFMAN_CODES[usize::from(s)].1,
                HUFFMAN_CODES[usize::from(s)].0,
            )
        });
        let mut c = Canonical {
            first: [0; MAX_LEN + 1],
            count: [0; MAX_LEN + 1],
            offset: [0; MAX_LEN + 1],
            symbols: [0; 257],
        };
        for (i, &s) in order.iter().enumerate() {
            let (code, len) = HUFFMAN_CODES[usize::from(s)];
            let len = usize::from(len);
            if c.count[len] == 0 {
                c.first[len] = code;
                c.offset[len] = i as u32;
            }
            c.count[len] += 1;
            c.symbols[i] = s;
        }
        c
    })
}

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string (§5.2: an error).
    Eos,
    /// Padding longer than 7 bits, or not the most significant bits of
    /// EOS (all ones).
    Padding,
}

/// Decodes `bytes` and appends the result to `out`.
pub fn decode(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let c = canonical();
    let mut code: u32 = 0;
    let mut len: usize = 0;
    for &byte in bytes {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let idx = code.wrapping_sub(c.first[len]);
            if idx < c.count[len] {
                let sym = c.symbols[(c.offset[len] + idx) as usize];
                if sym == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_LEN {
                // Every 30-bit pattern is a code or the prefix of none:
                // only EOS is 30 bits, and it was handled above.
                return Err(HuffmanError::Eos);
            }
        }
    }
    if len > 7 || code != (1u32 << len) - 1 {
        return Err(HuffmanError::Padding);
    }
    Ok(())
}

/// Encodes `bytes` (for tests and the fuzz target's round trip).
pub fn encode(bytes: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        let (code, len) = HUFFMAN_CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        // Padded with the most significant bits of EOS (ones).
        let pad = 8 - bits;
        out.push(((acc << pad) as u8) | ((1u8 << pad) - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_is_canonical() {
        // The decoder relies on it: codes of one length are contiguous,
        // and each length starts where the previous one ended, shifted.
        let mut order: Vec<usize> = (0..257).collect();
        order.sort_by_key(|&s| (HUFFMAN_CODES[s].1, HUFFMAN_CODES[s].0));
        for w in order.windows(2) {
            let (a, la) = HUFFMAN_CODES[w[0]];
            let (b, lb) = HUFFMAN_CODES[w[1]];
            assert_eq!(b, (a + 1) << (lb - la), "symbols {} and {}", w[0], w[1]);
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let mut enc = Vec::new();
        encode(&all, &mut enc);
        let mut dec = Vec::new();
        decode(&enc, &mut dec).unwrap();
        assert_eq!(dec, all);
    }

    #[test]
    fn rfc_7541_example() {
        // C.4.1: "www.example.com".
        let enc = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut dec = Vec::new();
        decode(&enc, &mut dec).unwrap();
        assert_eq!(dec, b"www.example.com");
    }

    #[test]
    fn bad_padding_and_eos_fail() {
        let mut out = Vec::new();
        // 'a' is 00011 (5 bits); padding of zeros is not EOS's prefix.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(HuffmanError::Padding));
        // A whole byte of padding (8 ones) after a full byte.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::Padding));
        // EOS itself: 30 ones.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xfc], &mut out),
            Err(HuffmanError::Eos)
        );
    }
}
