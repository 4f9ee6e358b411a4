//! Frame checksums, `RpcMeta.checksum_type` / `checksum_value`.
//!
//! Type 1 is CRC32C computed as bRPC's `crc32c_checksum.cpp` does:
//! CRC32C (Castagnoli) of the payload bytes as they are on the wire (after
//! compression), followed by the attachment when `checksum_with_attachment`
//! is set; then *masked* as LevelDB does (`((crc >> 15) | (crc << 17)) +
//! 0xa282ead8`) and written as 4 bytes big-endian. The golden request frame
//! pins this down: payload `0a 0b "hello world"` has CRC32C `0xe0371884`,
//! masked `0xd38cab46`, sent as `d3 8c ab 46`.
//!
//! `checksum_value` means nothing when `checksum_type` is 0 (bRPC echoes a
//! request's value in its response anyway): [`verify`] ignores it then.

use std::fmt;

use fibrpc_iobuf::IOBuf;

use super::meta::RpcMeta;

/// `checksum_type` 0: no checksum.
pub const CHECKSUM_NONE: i32 = 0;
/// `checksum_type` 1: masked CRC32C.
pub const CHECKSUM_CRC32C: i32 = 1;

const MASK_DELTA: u32 = 0xa282_ead8;

/// LevelDB's (and bRPC's) CRC mask.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Inverse of [`mask`].
pub fn unmask(masked: u32) -> u32 {
    masked.wrapping_sub(MASK_DELTA).rotate_left(15)
}

/// Plain CRC32C of the concatenation of `bufs`.
pub fn crc32c(bufs: &[&IOBuf]) -> u32 {
    bufs.iter()
        .flat_map(|b| b.slices())
        .fold(0, crc32c::crc32c_append)
}

/// The 4-byte `checksum_value` for `checksum_type` 1 over `payload` (and
/// `attachment` when given).
pub fn crc32c_value(payload: &IOBuf, attachment: Option<&IOBuf>) -> [u8; 4] {
    let crc = match attachment {
        Some(a) => crc32c(&[payload, a]),
        None => crc32c(&[payload]),
    };
    mask(crc).to_be_bytes()
}

/// Sets `checksum_type` = 1 and `checksum_value` in `meta` for this payload
/// (and the attachment when `meta.checksum_with_attachment` is set).
pub fn fill_crc32c(meta: &mut RpcMeta, payload: &IOBuf, attachment: &IOBuf) {
    let att = meta.checksum_with_attachment().then_some(attachment);
    meta.checksum_type = Some(CHECKSUM_CRC32C);
    meta.checksum_value = Some(crc32c_value(payload, att).to_vec());
}

/// Why [`verify`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumError {
    /// `checksum_type` is not 0 or 1.
    UnknownType(i32),
    /// `checksum_value` is not 4 bytes.
    BadValue(usize),
    /// The data does not match the checksum.
    Mismatch {
        /// CRC32C (unmasked) from the meta.
        expected: u32,
        /// CRC32C (unmasked) of the data.
        actual: u32,
    },
}

impl fmt::Display for ChecksumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChecksumError::UnknownType(t) => write!(f, "unknown checksum_type={t}"),
            ChecksumError::BadValue(n) => write!(f, "checksum_value has {n} bytes, not 4"),
            ChecksumError::Mismatch { expected, actual } => write!(
                f,
                "checksum mismatch: expected crc32c={expected:#010x}, got {actual:#010x}"
            ),
        }
    }
}

impl std::error::Error for ChecksumError {}

/// Checks a received frame's checksum. `payload` is the payload as received
/// (before decompression). Type 0 always passes, whatever `checksum_value`
/// holds.
pub fn verify(meta: &RpcMeta, payload: &IOBuf, attachment: &IOBuf) -> Result<(), ChecksumError> {
    match meta.checksum_type() {
        CHECKSUM_NONE => Ok(()),
        CHECKSUM_CRC32C => {
            let v = meta.checksum_value();
            let v: [u8; 4] = v.try_into().map_err(|_| ChecksumError::BadValue(v.len()))?;
            let expected = unmask(u32::from_be_bytes(v));
            let actual = if meta.checksum_with_attachment() {
                crc32c(&[payload, attachment])
            } else {
                crc32c(&[payload])
            };
            if expected == actual {
                Ok(())
            } else {
                Err(ChecksumError::Mismatch { expected, actual })
            }
        }
        t => Err(ChecksumError::UnknownType(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_value() {
        let payload = IOBuf::from(&b"\x0a\x0bhello world"[..]);
        assert_eq!(crc32c(&[&payload]), 0xe037_1884);
        assert_eq!(crc32c_value(&payload, None), [0xd3, 0x8c, 0xab, 0x46]);
        assert_eq!(unmask(mask(0x1234_5678)), 0x1234_5678);
    }

    #[test]
    fn fill_then_verify() {
        let payload = IOBuf::from("payload");
        let att = IOBuf::from("attachment");
        for with_att in [false, true] {
            let mut meta = RpcMeta {
                checksum_with_attachment: Some(with_att),
                ..Default::default()
            };
            fill_crc32c(&mut meta, &payload, &att);
            assert_eq!(verify(&meta, &payload, &att), Ok(()));
            let other = IOBuf::from("other");
            assert_eq!(verify(&meta, &payload, &other).is_err(), with_att);
            assert!(matches!(
                verify(&meta, &other, &att),
                Err(ChecksumError::Mismatch { .. })
            ));
        }
        let meta = RpcMeta {
            checksum_type: Some(0),
            checksum_value: Some(b"junk".to_vec()),
            ..Default::default()
        };
        assert_eq!(verify(&meta, &payload, &att), Ok(()));
    }
}
