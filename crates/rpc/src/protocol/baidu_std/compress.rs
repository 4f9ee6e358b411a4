//! Payload compression, `RpcMeta.compress_type`.
//!
//! Only the payload is compressed, never the meta or the attachment. The
//! formats are the ones bRPC writes:
//!
//! | type | name   | format |
//! |------|--------|--------|
//! | 0    | none   | the bytes as they are |
//! | 1    | snappy | raw snappy (`snappy::Compress`, no framing): varint length + block |
//! | 2    | gzip   | gzip stream (RFC 1952) |
//! | 3    | zlib   | zlib stream (RFC 1950) |
//! | 4    | lz4    | varint32 uncompressed length, then one raw LZ4 block (bRPC's `lz4_compress.cpp`) |
//!
//! Snappy, gzip and zlib are what bRPC's `snappy_compress.cpp` /
//! `gzip_compress.cpp` produce (snappy's raw `Compress`, protobuf's
//! `GzipOutputStream` in GZIP and ZLIB formats). The lz4 layout follows
//! bRPC's `lz4_compress.cpp`; older bRPC releases do not register an lz4
//! handler at all, and no captured frame covers any compression, so lz4
//! interop with a real bRPC peer is unverified.
//!
//! Decompression takes a limit on the output so that a small frame cannot
//! expand into gigabytes.

use std::fmt;
use std::io::{self, Read, Write};

use fibrpc_iobuf::IOBuf;

/// The values of `RpcMeta.compress_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressType {
    /// 0: not compressed.
    None,
    /// 1: raw snappy.
    Snappy,
    /// 2: gzip.
    Gzip,
    /// 3: zlib.
    Zlib,
    /// 4: lz4 block with a varint length prefix.
    Lz4,
}

impl CompressType {
    /// Every type, in wire order.
    pub const ALL: [CompressType; 5] = [
        CompressType::None,
        CompressType::Snappy,
        CompressType::Gzip,
        CompressType::Zlib,
        CompressType::Lz4,
    ];

    /// The type for a wire value, `None` for values bRPC does not define
    /// (a server answers those with `EREQUEST`).
    pub fn from_i32(v: i32) -> Option<CompressType> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// The wire value.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// bRPC's name of the type (`"snappy"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CompressType::None => "none",
            CompressType::Snappy => "snappy",
            CompressType::Gzip => "gzip",
            CompressType::Zlib => "zlib",
            CompressType::Lz4 => "lz4",
        }
    }
}

/// Why a payload cannot be compressed or decompressed.
#[derive(Debug)]
pub enum CompressError {
    /// `compress_type` is not one bRPC defines.
    UnknownType(i32),
    /// The decompressed payload would exceed the limit.
    TooLarge {
        /// The limit given.
        limit: usize,
    },
    /// The compressed bytes are corrupt (or compression failed).
    Corrupt(String),
}

impl fmt::Display for CompressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressError::UnknownType(t) => write!(f, "unknown compress_type={t}"),
            CompressError::TooLarge { limit } => {
                write!(f, "decompressed payload is larger than {limit} bytes")
            }
            CompressError::Corrupt(e) => write!(f, "corrupt compressed payload: {e}"),
        }
    }
}

impl std::error::Error for CompressError {}

fn corrupt(e: impl fmt::Display) -> CompressError {
    CompressError::Corrupt(e.to_string())
}

/// Compresses `input` with the wire type `compress_type`. Type 0 returns
/// the input by reference (no copy).
pub fn compress(compress_type: i32, input: &IOBuf) -> Result<IOBuf, CompressError> {
    let ty =
        CompressType::from_i32(compress_type).ok_or(CompressError::UnknownType(compress_type))?;
    let out = match ty {
        CompressType::None => return Ok(input.clone()),
        CompressType::Snappy => snap::raw::Encoder::new()
            .compress_vec(&input.to_vec())
            .map_err(corrupt)?,
        CompressType::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            write_all(&mut enc, input).map_err(corrupt)?;
            enc.finish().map_err(corrupt)?
        }
        CompressType::Zlib => {
            let mut enc =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            write_all(&mut enc, input).map_err(corrupt)?;
            enc.finish().map_err(corrupt)?
        }
        CompressType::Lz4 => {
            let block = lz4_flex::block::compress(&input.to_vec());
            let mut out = Vec::with_capacity(block.len() + 5);
            put_varint32(&mut out, input.len() as u32);
            out.extend_from_slice(&block);
            out
        }
    };
    Ok(IOBuf::from(out))
}

/// Decompresses `input` of wire type `compress_type`, failing when the
/// result would be longer than `limit` bytes. Type 0 returns the input by
/// reference (no copy).
pub fn decompress(compress_type: i32, input: &IOBuf, limit: usize) -> Result<IOBuf, CompressError> {
    let ty =
        CompressType::from_i32(compress_type).ok_or(CompressError::UnknownType(compress_type))?;
    let out = match ty {
        CompressType::None => {
            if input.len() > limit {
                return Err(CompressError::TooLarge { limit });
            }
            return Ok(input.clone());
        }
        CompressType::Snappy => {
            let data = input.to_vec();
            let n = snap::raw::decompress_len(&data).map_err(corrupt)?;
            if n > limit {
                return Err(CompressError::TooLarge { limit });
            }
            snap::raw::Decoder::new()
                .decompress_vec(&data)
                .map_err(corrupt)?
        }
        CompressType::Gzip => read_limited(flate2::read::GzDecoder::new(input.clone()), limit)?,
        CompressType::Zlib => read_limited(flate2::read::ZlibDecoder::new(input.clone()), limit)?,
        CompressType::Lz4 => {
            let data = input.to_vec();
            let (n, used) = get_varint32(&data).ok_or_else(|| corrupt("bad lz4 length prefix"))?;
            if n as usize > limit {
                return Err(CompressError::TooLarge { limit });
            }
            let out = lz4_flex::block::decompress(&data[used..], n as usize).map_err(corrupt)?;
            if out.len() != n as usize {
                return Err(corrupt("lz4 block shorter than its length prefix"));
            }
            out
        }
    };
    Ok(IOBuf::from(out))
}

fn write_all(w: &mut impl Write, input: &IOBuf) -> io::Result<()> {
    for s in input.slices() {
        w.write_all(s)?;
    }
    Ok(())
}

fn read_limited(r: impl Read, limit: usize) -> Result<Vec<u8>, CompressError> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(corrupt)?;
    if out.len() > limit {
        return Err(CompressError::TooLarge { limit });
    }
    Ok(out)
}

fn put_varint32(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a varint32 at the start of `data`: (value, bytes used).
fn get_varint32(data: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &b) in data.iter().enumerate().take(5) {
        v |= u32::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IOBuf {
        let mut b = IOBuf::new();
        for i in 0..3000u32 {
            b.append(format!("hello {} ", i % 17).as_bytes());
        }
        b
    }

    #[test]
    fn every_type_round_trips() {
        let input = sample();
        for ty in CompressType::ALL {
            let c = compress(ty.as_i32(), &input).unwrap();
            if ty != CompressType::None {
                assert!(c.len() < input.len(), "{}", ty.name());
            }
            let d = decompress(ty.as_i32(), &c, 1 << 20).unwrap();
            assert_eq!(d, input, "{}", ty.name());
            assert!(matches!(
                decompress(ty.as_i32(), &c, input.len() - 1),
                Err(CompressError::TooLarge { .. })
            ));
        }
        let empty = IOBuf::new();
        for ty in CompressType::ALL {
            let c = compress(ty.as_i32(), &empty).unwrap();
            assert!(decompress(ty.as_i32(), &c, 0).unwrap().is_empty());
        }
    }

    #[test]
    fn known_formats() {
        // Raw snappy: varint length, then a literal tag.
        let c = compress(1, &IOBuf::from("abc")).unwrap().to_vec();
        assert_eq!(c, [3, 0x08, b'a', b'b', b'c']);
        let c = compress(2, &IOBuf::from("abc")).unwrap().to_vec();
        assert_eq!(&c[..2], [0x1f, 0x8b]);
        let c = compress(3, &IOBuf::from("abc")).unwrap().to_vec();
        assert_eq!(c[0], 0x78);
        // LZ4: varint32 length, then a block of one literal run.
        let c = compress(4, &IOBuf::from("abc")).unwrap().to_vec();
        assert_eq!(c, [3, 0x30, b'a', b'b', b'c']);
    }

    #[test]
    fn unknown_and_corrupt() {
        assert!(matches!(
            compress(5, &IOBuf::new()),
            Err(CompressError::UnknownType(5))
        ));
        assert!(matches!(
            decompress(-1, &IOBuf::new(), 10),
            Err(CompressError::UnknownType(-1))
        ));
        assert_eq!(CompressType::from_i32(4), Some(CompressType::Lz4));
        for ty in 1..=4 {
            assert!(decompress(ty, &IOBuf::from("\u{7f}garbage!!"), 1 << 20).is_err());
        }
    }
}
