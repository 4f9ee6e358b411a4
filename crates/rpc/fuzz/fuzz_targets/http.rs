//! Fuzz target for the HTTP/1.1 parsers: the first byte picks the limits,
//! the chunk size and request or response; the rest is fed in chunks, as a
//! connection delivers it. Checks: no panic; `NeedMore` consumes nothing; a
//! complete request re-encodes to one that parses back to the same method,
//! target and body; an error stops the stream (the server closes).

#![no_main]

use fibrpc::protocol::http::{encode_request, parse_request, parse_response, HttpParse, Limits};
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_header: if knob & 0x40 != 0 { 64 << 10 } else { 64 + (knob as usize & 0x3f) * 8 },
        max_body: if knob & 0x20 != 0 { 1 << 20 } else { (knob as usize & 0x1f) * 4 },
    };
    let chunk = (knob as usize & 0x0f) + 1;
    let responses = knob & 0x80 != 0;
    let mut input = IOBuf::new();
    let mut fed = 0;
    loop {
        let before = input.len();
        let progress = if responses {
            match parse_response(&mut input, limits, knob & 1 != 0, fed == rest.len()) {
                HttpParse::Complete(_) => {
                    assert!(input.len() < before, "a response consumed nothing");
                    true
                }
                HttpParse::NeedMore => false,
                HttpParse::NotMine | HttpParse::Error(_) => return,
            }
        } else {
            match parse_request(&mut input, limits) {
                HttpParse::Complete(req) => {
                    assert!(input.len() < before, "a request consumed nothing");
                    let mut again = IOBuf::new();
                    encode_request(
                        req.method(),
                        req.uri(),
                        None,
                        req.headers(),
                        req.body(),
                        &mut again,
                    );
                    let big = Limits {
                        max_header: usize::MAX,
                        max_body: usize::MAX,
                    };
                    match parse_request(&mut again, big) {
                        HttpParse::Complete(r2) => {
                            assert_eq!(r2.method(), req.method());
                            if let Some(pq) = req.uri().path_and_query() {
                                assert_eq!(r2.uri().path_and_query(), Some(pq));
                            }
                            assert_eq!(r2.body(), req.body());
                            assert!(again.is_empty());
                        }
                        r => panic!("re-encoded request does not parse: {r:?}"),
                    }
                    true
                }
                HttpParse::NeedMore => false,
                HttpParse::NotMine | HttpParse::Error(_) => return,
            }
        };
        if !progress {
            assert_eq!(input.len(), before, "NeedMore consumed bytes");
            if fed == rest.len() {
                return;
            }
            let n = chunk.min(rest.len() - fed);
            input.append(&rest[fed..fed + n]);
            fed += n;
        }
    }
});
