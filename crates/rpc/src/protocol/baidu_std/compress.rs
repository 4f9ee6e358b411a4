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
//! expand into gigabytes, and never allocates more than the limit:
//!
//! - gzip and zlib inflate in chunks into an [`IOBuf`] and stop at the
//!   first chunk past the limit (a deflate bomb costs the limit, however
//!   far it would expand);
//! - snappy and lz4 announce their length up front, and the whole output
//!   is allocated at once; that length is attacker-controlled, so it is
//!   checked against the limit and against what the compressed bytes can
//!   possibly expand to ([`SNAPPY_MAX_RATIO`], [`LZ4_MAX_RATIO`]) before
//!   anything is allocated.
//!
//! Servers and channels use [`DEFAULT_MAX_DECOMPRESSED_SIZE`] unless told
//! otherwise (`max_decompressed_size` in their options).

use std::fmt;
use std::io::{self, Read, Write};

use fibrpc_iobuf::IOBuf;

/// Default limit on a decompressed payload: 16 MiB, a quarter of the
/// default body limit. A payload that expands past it fails its call
/// alone (`EREQUEST` on a server, `ERESPONSE` on a client).
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 16 << 20;

/// Snappy's densest element is a 3-byte copy of 64 bytes: no valid block
/// expands by more than 64/3.
pub const SNAPPY_MAX_RATIO: (usize, usize) = (64, 3);

/// An LZ4 sequence's densest form is a match whose length bytes each add
/// 255 to it: no valid block expands by more than 255/1.
pub const LZ4_MAX_RATIO: (usize, usize) = (255, 1);

/// gzip and zlib inflate this much at a time.
const INFLATE_CHUNK: usize = 16 << 10;

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
/// result would be longer than `limit` bytes; at most `limit` bytes (plus
/// one inflate chunk for gzip and zlib) are allocated for the output
/// whatever the input claims. Type 0 returns the input by reference (no
/// copy).
pub fn decompress(compress_type: i32, input: &IOBuf, limit: usize) -> Result<IOBuf, CompressError> {
    let ty =
        CompressType::from_i32(compress_type).ok_or(CompressError::UnknownType(compress_type))?;
    match ty {
        CompressType::None => {
            if input.len() > limit {
                return Err(CompressError::TooLarge { limit });
            }
            Ok(input.clone())
        }
        CompressType::Snappy => {
            let data = input.to_vec();
            let n = snap::raw::decompress_len(&data).map_err(corrupt)?;
            let header = varint_len(&data);
            check_claim("snappy", n, data.len() - header, SNAPPY_MAX_RATIO, limit)?;
            let mut out = vec![0; n];
            let written = snap::raw::Decoder::new()
                .decompress(&data, &mut out)
                .map_err(corrupt)?;
            if written != n {
                return Err(corrupt("snappy block shorter than its length header"));
            }
            Ok(IOBuf::from(out))
        }
        CompressType::Gzip => inflate(flate2::read::GzDecoder::new(input.clone()), limit),
        CompressType::Zlib => inflate(flate2::read::ZlibDecoder::new(input.clone()), limit),
        CompressType::Lz4 => {
            let data = input.to_vec();
            let (n, used) = get_varint32(&data).ok_or_else(|| corrupt("bad lz4 length prefix"))?;
            let n = n as usize;
            check_claim("lz4", n, data.len() - used, LZ4_MAX_RATIO, limit)?;
            let mut out = vec![0; n];
            let written =
                lz4_flex::block::decompress_into(&data[used..], &mut out).map_err(corrupt)?;
            if written != n {
                return Err(corrupt("lz4 block shorter than its length prefix"));
            }
            Ok(IOBuf::from(out))
        }
    }
}

/// Checks the output length `claimed` by a snappy or lz4 header before it
/// is allocated: at most `limit`, and at most what `body` compressed bytes
/// can expand to at `ratio` (so a forged header on a tiny body allocates
/// nothing, even under the limit).
fn check_claim(
    name: &str,
    claimed: usize,
    body: usize,
    (num, den): (usize, usize),
    limit: usize,
) -> Result<(), CompressError> {
    if claimed > limit {
        return Err(CompressError::TooLarge { limit });
    }
    if claimed.saturating_mul(den) > body.saturating_mul(num) {
        return Err(corrupt(format!(
            "{name} header claims {claimed} bytes, more than {body} compressed bytes can hold"
        )));
    }
    Ok(())
}

/// Inflates `r` chunk by chunk into an [`IOBuf`] (8 KiB blocks, no
/// doubling `Vec`), stopping at the first byte past `limit`.
fn inflate(mut r: impl Read, limit: usize) -> Result<IOBuf, CompressError> {
    let mut out = IOBuf::new();
    // On the heap: fiber stacks are small.
    let mut chunk = vec![0u8; INFLATE_CHUNK];
    loop {
        // One byte past the limit is enough to know it is exceeded.
        let want = (limit - out.len()).saturating_add(1).min(chunk.len());
        let n = match r.read(&mut chunk[..want]) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        if out.len() + n > limit {
            return Err(CompressError::TooLarge { limit });
        }
        out.append(&chunk[..n]);
    }
}

fn write_all(w: &mut impl Write, input: &IOBuf) -> io::Result<()> {
    for s in input.slices() {
        w.write_all(s)?;
    }
    Ok(())
}

fn put_varint32(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The length of the varint at the start of `data` (all of it if the
/// varint does not end).
fn varint_len(data: &[u8]) -> usize {
    data.iter()
        .position(|&b| b < 0x80)
        .map_or(data.len(), |i| i + 1)
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

    fn too_large(r: Result<IOBuf, CompressError>) -> usize {
        match r {
            Err(CompressError::TooLarge { limit }) => limit,
            other => panic!("not TooLarge: {other:?}"),
        }
    }

    #[test]
    fn bound_at_exactly_limit_and_one_past() {
        const LIMIT: usize = 100_000;
        let at = IOBuf::from(vec![b'z'; LIMIT]);
        let past = IOBuf::from(vec![b'z'; LIMIT + 1]);
        for ty in CompressType::ALL {
            let c = compress(ty.as_i32(), &at).unwrap();
            let d = decompress(ty.as_i32(), &c, LIMIT).unwrap();
            assert_eq!(d.len(), LIMIT, "{}", ty.name());
            let c = compress(ty.as_i32(), &past).unwrap();
            assert_eq!(
                too_large(decompress(ty.as_i32(), &c, LIMIT)),
                LIMIT,
                "{}",
                ty.name()
            );
        }
    }

    #[test]
    fn densest_blocks_pass_the_claim_check() {
        // Runs of one byte are what snappy and lz4 compress best: the
        // header check must not mistake them for forgeries.
        for n in [1, 64, 65, 4096, 1 << 20] {
            let input = IOBuf::from(vec![0u8; n]);
            for ty in [CompressType::Snappy, CompressType::Lz4] {
                let c = compress(ty.as_i32(), &input).unwrap();
                let d = decompress(ty.as_i32(), &c, n).unwrap();
                assert_eq!(d, input, "{} of {n} zeros", ty.name());
            }
        }
    }

    #[test]
    fn forged_length_headers_allocate_nothing() {
        // 4 GiB - 1 claimed, over any limit.
        let mut lz4 = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        lz4.extend_from_slice(&[0x10, 0x00]);
        assert_eq!(
            too_large(decompress(4, &IOBuf::from(lz4), 1 << 20)),
            1 << 20
        );
        let mut snappy = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        snappy.extend_from_slice(&[0x00, 0x00]);
        assert_eq!(
            too_large(decompress(1, &IOBuf::from(snappy), 1 << 20)),
            1 << 20
        );
        // Exactly the limit claimed, by 2 bytes that cannot hold it.
        let mut lz4 = Vec::new();
        put_varint32(&mut lz4, 1 << 20);
        lz4.extend_from_slice(&[0x10, 0x00]);
        let mut snappy = Vec::new();
        put_varint32(&mut snappy, 1 << 20);
        snappy.extend_from_slice(&[0x00, 0x00]);
        for (ty, c) in [(4, lz4), (1, snappy)] {
            match decompress(ty, &IOBuf::from(c), 1 << 20) {
                Err(CompressError::Corrupt(e)) => assert!(e.contains("claims 1048576"), "{e}"),
                other => panic!("type {ty}: {other:?}"),
            }
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
