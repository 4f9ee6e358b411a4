//! Fuzz target for the W3C `traceparent` parser that HTTP servers run on
//! every traced request's header. Checks: no panic; whatever parses has
//! non-zero ids, and what rpcz would send for it parses back to the same
//! ids.

#![no_main]

use fibrpc::rpcz::traceparent::{format, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(p) = parse(data) else {
        return;
    };
    assert!(p.trace_id != 0 && p.parent_id != 0, "{p:?}");
    let again = parse(format(p.trace_id, p.parent_id).as_bytes()).expect("our own header parses");
    assert_eq!((again.trace_id, again.parent_id, again.sampled), (p.trace_id, p.parent_id, true));
});
