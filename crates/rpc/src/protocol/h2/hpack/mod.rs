//! HPACK (RFC 7541), fibrpc's own.
//!
//! Why not a crate: `hpack` is unmaintained since 2016; its maintained
//! fork `loona-hpack` (and `fluke-hpack`) builds a 257-entry `HashMap`
//! decoding table for every Huffman string and walks it bit by bit with
//! a hash lookup per bit, so a header block of many one-byte Huffman
//! strings costs milliseconds — CPU an attacker gets for free;
//! `httlib-hpack` has seen no release since 2021. The `h2` crate's HPACK
//! is not public. The decoder here is ~300 lines: a canonical Huffman
//! decoder (a few array reads per bit), a bounded dynamic table, and
//! header-list accounting that stops collecting at the limit while still
//! decoding the block to keep the table in step with the peer.
//!
//! The encoder is stateless: it uses the static table and literals
//! "without indexing", never the dynamic table. Responses are then
//! encoded in their own fibers with no connection lock and no ordering
//! between header blocks, and a peer's `SETTINGS_HEADER_TABLE_SIZE`
//! (even 0) holds without a table size update. The cost is a few bytes a
//! response (`content-type: application/grpc` is 26 bytes every time).

mod decoder;
mod encoder;
pub mod huffman;
mod tables;

pub use decoder::{DecodeError, Decoder};
pub use encoder::encode_header;

/// The dynamic table size every HTTP/2 endpoint starts with (RFC 9113's
/// default `SETTINGS_HEADER_TABLE_SIZE`), which fibrpc never changes.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// What one header counts in a header list's size (RFC 9113 §6.5.2) and
/// in the dynamic table (RFC 7541 §4.1): its name, its value and 32.
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}
