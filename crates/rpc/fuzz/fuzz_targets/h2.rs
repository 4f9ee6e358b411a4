//! Fuzz target for HTTP/2 frame processing and HPACK: the server's own
//! connection code (`FrameReader`, the code `H2Protocol` runs after the
//! preface) is fed the input in chunks, answering each request it cuts;
//! the first byte picks the chunk size, whether the connection reports
//! unwritten output (the flood guards) and how large the answers are.
//! Checks: no panic; `NeedMore` consumes nothing; what the server writes
//! is well-formed frames whose header blocks decode; the HPACK decoder
//! alone stops collecting at its limit; Huffman round-trips.

#![no_main]

use fibrpc::protocol::h2::frame::{FrameHead, HEADER_LEN};
use fibrpc::protocol::h2::hpack::{huffman, Decoder};
use fibrpc::protocol::h2::{FrameReader, H2Options};
use fibrpc::protocol::Parsed;
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;

/// The server's output: whole frames, none over 64 KiB, header blocks
/// that decode on their own (the encoder uses no dynamic table).
fn check_output(out: IOBuf) {
    let bytes = out.to_vec();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        assert!(rest.len() >= HEADER_LEN, "a partial frame header in the output");
        let head = FrameHead::parse(rest[..HEADER_LEN].try_into().unwrap());
        let len = head.len as usize;
        assert!(len <= 64 << 10, "a frame of {len} bytes written");
        assert!(rest.len() >= HEADER_LEN + len, "a partial frame in the output");
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        if head.kind == 0x1 && head.has(0x4) {
            Decoder::default()
                .decode(payload, usize::MAX, |_, _| {})
                .expect("the server's header block decodes");
        }
        rest = &rest[HEADER_LEN + len..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    // HPACK alone: never more than the limit handed to the callback.
    let limit = 64 + usize::from(knob) * 16;
    let mut seen = 0usize;
    let _ = Decoder::new(256).decode(rest, limit, |n, v| seen += n.len() + v.len() + 32);
    assert!(seen <= limit);
    // Huffman: what encodes decodes back.
    let mut enc = Vec::new();
    huffman::encode(rest, &mut enc);
    let mut dec = Vec::new();
    huffman::decode(&enc, &mut dec).unwrap();
    assert_eq!(dec, rest);

    let reader = FrameReader::new(
        H2Options {
            max_concurrent_streams: 8,
            initial_window_size: 1 << 16,
            max_header_list_size: 4096,
            max_reset_streams: 16,
            max_pending_acks: 16,
            ..Default::default()
        },
        1 << 16,
    );
    if knob & 0x80 != 0 {
        reader.set_unwritten(1);
    }
    let chunk = usize::from(knob & 0x0f) * 7 + 1;
    let answer = usize::from(knob >> 4 & 0x7) * 5000;
    let mut input = IOBuf::new();
    let mut fed = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 1_000_000, "no progress");
        let before = input.len();
        match reader.feed(&mut input) {
            Parsed::Message(req) => {
                let body = IOBuf::from(vec![b'a'; answer]);
                reader.respond(req.stream_id(), http::StatusCode::OK, body);
                continue;
            }
            Parsed::Consumed => {
                if !input.is_empty() {
                    continue;
                }
            }
            Parsed::NeedMore => assert_eq!(input.len(), before, "NeedMore consumed bytes"),
            Parsed::NotMine | Parsed::Bad(_) => panic!("the reader never says NotMine or Bad"),
        }
        check_output(reader.take_output());
        if fed == rest.len() {
            break;
        }
        let n = chunk.min(rest.len() - fed);
        input.append(&rest[fed..fed + n]);
        fed += n;
    }
    if reader.is_closed() {
        // Input after the GOAWAY is dropped.
        let mut more = IOBuf::from(&b"\0\0\x08\x06\0\0\0\0\0\0\0\0\0\0\0\0\0"[..]);
        assert!(matches!(reader.feed(&mut more), Parsed::Consumed));
        assert!(more.is_empty());
    }
});
