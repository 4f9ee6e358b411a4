//! bRPC stream frames (STRM): cutting any bytes never panics, consumes
//! exactly what it reports, and what it cuts re-encodes to a frame that
//! parses back to the same thing.

#![no_main]

use fibrpc::protocol::streaming::{encode, parse, ParseError, ParseResult};
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = IOBuf::from(data);
    loop {
        let before = input.len();
        match parse(&mut input, 1 << 20) {
            ParseResult::Complete(f) => {
                assert!(input.len() < before);
                let mut out = IOBuf::new();
                encode(&f.meta, &f.payload, &mut out);
                match parse(&mut out, 1 << 21) {
                    ParseResult::Complete(g) => assert_eq!(f, g),
                    r => panic!("{r:?}"),
                }
                assert!(out.is_empty());
            }
            ParseResult::Error(ParseError::BadMeta(_)) => assert!(input.len() < before),
            _ => {
                assert_eq!(input.len(), before);
                break;
            }
        }
    }
});
