//! Fuzz target for the HTTP/2 client's frame processing: a client
//! connection (`ClientFrameReader`, the code a `GrpcChannel`'s
//! connection runs) with a few requests open reads a hostile server's
//! bytes in chunks. The first byte picks the chunk size, how many
//! streams open, whether a valid SETTINGS leads the input (so the
//! fuzzer gets past the preface check), whether the connection reports
//! unwritten output (the flood guards) and whether a stream is cancelled
//! midway (one stream opens at first, the others once the server's
//! SETTINGS allow). Checks: no panic; `NeedMore` consumes nothing; each call ends
//! at most once and only calls that were opened; after `Bad` the client
//! wrote a GOAWAY and opens no stream; what the client writes is the
//! preface then well-formed frames whose header blocks decode.

#![no_main]

use std::collections::HashSet;

use fibrpc::protocol::h2::frame::{kind, FrameHead, HEADER_LEN, PREFACE};
use fibrpc::protocol::h2::hpack::Decoder;
use fibrpc::protocol::h2::{ClientFrameReader, H2Options};
use fibrpc::protocol::Parsed;
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;

/// The client's output: whole frames, header blocks that decode on
/// their own (the encoder uses no dynamic table). Returns whether a
/// GOAWAY was among them.
fn check_output(bytes: &[u8], max_frame: usize) -> bool {
    let mut rest = bytes;
    let mut goaway = false;
    while !rest.is_empty() {
        assert!(
            rest.len() >= HEADER_LEN,
            "a partial frame header in the output"
        );
        let head = FrameHead::parse(rest[..HEADER_LEN].try_into().unwrap());
        let len = head.len as usize;
        assert!(len <= max_frame, "a frame of {len} bytes written");
        assert!(
            rest.len() >= HEADER_LEN + len,
            "a partial frame in the output"
        );
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        if head.kind == kind::HEADERS && head.has(0x4) {
            Decoder::default()
                .decode(payload, usize::MAX, |_, _| {})
                .expect("the client's header block decodes");
        }
        goaway |= head.kind == kind::GOAWAY;
        rest = &rest[HEADER_LEN + len..];
    }
    goaway
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let reader = ClientFrameReader::new(
        H2Options {
            initial_window_size: 1 << 16,
            max_header_list_size: 4096,
            max_pending_acks: 16,
            ..Default::default()
        },
        1 << 16,
    );
    if knob & 0x80 != 0 {
        reader.set_unwritten(1);
    }
    let chunk = usize::from(knob & 0x07) * 9 + 1;
    let streams = usize::from(knob >> 3 & 0x3) + 1;
    let cancel_one = knob & 0x20 != 0;
    let mut opened = HashSet::new();
    // Bodies past the default window make some DATA wait for one.
    let body = |i: usize| IOBuf::from(vec![b'q'; i * 40_000]);
    // Until the server's SETTINGS come only one stream opens; the others
    // open as soon as they may.
    let cid = reader
        .open(body(0))
        .expect("a fresh connection opens a stream");
    opened.insert(cid);
    let first = reader.take_output().to_vec();
    assert!(first.starts_with(PREFACE), "the preface leads the output");
    let max_frame = 64 << 10;
    check_output(&first[PREFACE.len()..], max_frame);

    let mut input = IOBuf::new();
    if knob & 0x40 != 0 {
        // An empty SETTINGS: the server's preface.
        input.append(&[0, 0, 0, kind::SETTINGS, 0, 0, 0, 0, 0]);
    }
    let mut ended = HashSet::new();
    let mut fed = 0;
    let mut rounds = 0;
    let mut broken = false;
    loop {
        rounds += 1;
        assert!(rounds < 1_000_000, "no progress");
        let before = input.len();
        match reader.feed(&mut input) {
            Parsed::Message(reply) => {
                assert!(opened.contains(&reply.cid), "a reply to a call never made");
                assert!(ended.insert(reply.cid), "a call ended twice");
                continue;
            }
            Parsed::Consumed => {
                if !input.is_empty() {
                    continue;
                }
            }
            Parsed::NeedMore => assert_eq!(input.len(), before, "NeedMore consumed bytes"),
            Parsed::Bad(_) => broken = true,
            Parsed::NotMine => panic!("the client's reader never says NotMine"),
        }
        let out = reader.take_output().to_vec();
        let goaway = check_output(&out, max_frame);
        if broken {
            assert!(goaway, "a broken connection ends with GOAWAY");
            assert!(
                reader.open(IOBuf::new()).is_err(),
                "a stream opened after GOAWAY"
            );
            break;
        }
        while opened.len() < streams {
            match reader.open(body(opened.len())) {
                Ok(cid) => assert!(opened.insert(cid)),
                // The server's stream limit, or its GOAWAY.
                Err(_) => break,
            }
        }
        if fed == rest.len() {
            break;
        }
        if cancel_one && fed >= rest.len() / 2 && fed > 0 {
            // A call that gives up midway: its stream is reset.
            reader.cancel(1);
        }
        let n = chunk.min(rest.len() - fed);
        input.append(&rest[fed..fed + n]);
        fed += n;
    }
});
