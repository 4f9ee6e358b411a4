//! Fuzz target for payload decompression: the first input byte picks a
//! compress type and an output limit; the rest is decompressed as it is
//! (a hostile payload) and also compressed first (a valid one). Checks: no
//! panic; no output longer than the limit; `TooLarge` names the limit
//! given; what the calling thread allocates stays within the limit plus
//! twice the input plus inflate state, whatever a length header claims;
//! a valid payload decompresses to its input when the limit allows it
//! and is refused with `TooLarge` when it is one byte short.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use fibrpc::protocol::baidu_std::compress::{compress, decompress, CompressError, CompressType};
use fibrpc_iobuf::IOBuf;
use libfuzzer_sys::fuzz_target;

/// Counts the bytes the current thread has live, and their peak.
struct CountingAlloc;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// const-initialized thread-locals without destructors, which allocate
// nothing and are safe to touch from inside the allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64);
            count(-(layout.size() as i64));
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Inflate state, its input buffer and the output chunk, with room.
const SLACK: usize = 256 << 10;

/// Decompresses, checking the result and what it allocated.
fn checked(ty: i32, input: &IOBuf, limit: usize) -> Result<IOBuf, CompressError> {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = decompress(ty, input, limit);
    let peak = (PEAK.with(Cell::get) - start).max(0) as usize;
    let bound = limit + 2 * input.len() + SLACK;
    assert!(peak <= bound, "type {ty}: {peak} bytes allocated, bound {bound}");
    match &r {
        Ok(out) => assert!(out.len() <= limit, "{} bytes over a limit of {limit}", out.len()),
        Err(CompressError::TooLarge { limit: l }) => assert_eq!(*l, limit),
        Err(_) => {}
    }
    r
}

fuzz_target!(|data: &[u8]| {
    let Some((&knob, rest)) = data.split_first() else {
        return;
    };
    let ty = CompressType::ALL[knob as usize % CompressType::ALL.len()].as_i32();
    // Small limits find the edges; the big one lets valid payloads through.
    let limit = if knob & 0x80 != 0 { 1 << 20 } else { (knob as usize >> 3) * 64 };
    let hostile = IOBuf::from(rest);
    let _ = checked(ty, &hostile, limit);

    let valid = compress(ty, &hostile).expect("compressing never fails");
    match checked(ty, &valid, rest.len()) {
        Ok(out) => assert_eq!(out, hostile, "type {ty} does not round-trip"),
        Err(e) => panic!("type {ty}: a valid payload refused: {e}"),
    }
    if !rest.is_empty() {
        assert!(matches!(
            checked(ty, &valid, rest.len() - 1),
            Err(CompressError::TooLarge { .. })
        ));
    }
});
