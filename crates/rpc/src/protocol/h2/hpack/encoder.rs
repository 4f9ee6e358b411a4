//! The stateless HPACK encoder (see the module docs for why it never
//! uses the dynamic table).

use super::tables::STATIC_TABLE;

/// Appends one header to a header block: the static table's index when
/// the whole header is there, else a literal without indexing (with the
/// static table's index of the name when it is there).
pub fn encode_header(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let mut name_index = 0;
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        if *n == name {
            if *v == value {
                integer(i + 1, 7, 0x80, out);
                return;
            }
            if name_index == 0 {
                name_index = i + 1;
            }
        } else if name_index != 0 {
            // Entries of one name are adjacent.
            break;
        }
    }
    integer(name_index, 4, 0x00, out);
    if name_index == 0 {
        string(name, out);
    }
    string(value, out);
}

/// An integer with a `prefix`-bit prefix, the first byte's other bits
/// being `flags` (RFC 7541 §5.1).
fn integer(mut value: usize, prefix: u8, flags: u8, out: &mut Vec<u8>) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A raw (not Huffman) string literal.
fn string(s: &[u8], out: &mut Vec<u8>) {
    integer(s.len(), 7, 0x00, out);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::super::Decoder;
    use super::*;

    #[test]
    fn encodes_what_the_decoder_reads_back() {
        let headers: &[(&[u8], &[u8])] = &[
            (b":status", b"200"),
            (b":status", b"431"),
            (b"content-type", b"application/grpc"),
            (b"grpc-status", b"0"),
            (b"x-long", &[b'z'; 300]),
        ];
        let mut block = Vec::new();
        for (n, v) in headers {
            encode_header(n, v, &mut block);
        }
        // `:status: 200` is static entry 8.
        assert_eq!(block[0], 0x88);
        let mut got = Vec::new();
        Decoder::default()
            .decode(&block, usize::MAX, |n, v| {
                got.push((n.to_vec(), v.to_vec()))
            })
            .unwrap();
        let want: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        assert_eq!(got, want);
    }
}
