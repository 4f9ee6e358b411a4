//! Fuzz target for the baidu_std frame parser: the first input byte picks a
//! body limit and a chunk size; the rest is fed to `parse` in chunks, as a
//! connection would deliver it. Checks: no panic; `NotEnoughData` consumes
//! nothing; a complete frame consumes exactly header + body; it re-encodes
//! to a frame that parses back to the same meta, payload and attachment;
//! every frame's compressed payload and checksum are handled without panic.

#![no_main]

use fibrpc::protocol::baidu_std::{checksum, compress, encode, parse, probe, ParseResult, HEADER_LEN};
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let max_body = if knob & 0x80 != 0 { 1 << 20 } else { (knob as usize) * 8 };
    let chunk = (knob as usize & 0x1f) + 1;
    let mut input = IOBuf::new();
    let mut fed = 0;
    let _ = probe(&IOBuf::from(rest));
    loop {
        let before = input.len();
        match parse(&mut input, max_body) {
            ParseResult::NotEnoughData => {
                assert_eq!(input.len(), before, "NotEnoughData consumed bytes");
                if fed == rest.len() {
                    return;
                }
                let n = chunk.min(rest.len() - fed);
                input.append(&rest[fed..fed + n]);
                fed += n;
            }
            ParseResult::Complete(f) => {
                let meta_len = f.meta.encoded_len();
                assert!(f.payload.len() + f.attachment.len() + HEADER_LEN <= before);
                assert!(before - input.len() >= HEADER_LEN + f.payload.len() + f.attachment.len());
                let _ = meta_len;
                let _ = checksum::verify(&f.meta, &f.payload, &f.attachment);
                let _ = compress::decompress(f.meta.compress_type(), &f.payload, 1 << 20);
                let mut meta = f.meta.clone();
                meta.attachment_size = Some(f.attachment.len() as i32);
                let mut again = IOBuf::new();
                encode(&meta, &f.payload, &f.attachment, &mut again).unwrap();
                match parse(&mut again, usize::MAX) {
                    ParseResult::Complete(g) => {
                        assert_eq!(g.meta, meta);
                        assert_eq!(g.payload, f.payload);
                        assert_eq!(g.attachment, f.attachment);
                        assert!(again.is_empty());
                    }
                    r => panic!("re-encoded frame does not parse: {r:?}"),
                }
            }
            ParseResult::Error(_) => return,
        }
    }
});
