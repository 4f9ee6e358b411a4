//! Decompression bombs: small compressed payloads that expand past
//! `max_decompressed_size` (gzip, zlib, snappy and lz4, and snappy and lz4
//! headers that lie about the length). Each fails its own call with a
//! clear error, the connection and every other call go on, and the
//! memory the attack costs stays under a stated bound: the server's RSS
//! (it runs in this process) and the bytes `decompress` allocates.

mod rpc_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc::protocol::baidu_std::compress::{
    self, CompressError, CompressType, DEFAULT_MAX_DECOMPRESSED_SIZE,
};
use fibrpc::protocol::baidu_std::{self, ParseResult, RpcMeta, RpcRequestMeta, RpcResponseMeta};
use fibrpc::{codec, errno, Channel, ChannelOptions, Controller, IOBuf, ServerOptions};
use rpc_common::*;

/// Counts the bytes the current thread has live, and their peak, so a
/// test can see what one `decompress` call allocates.
struct CountingAlloc;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn count(delta: i64) {
    // `try_with`: a thread being torn down still allocates.
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
            // Counted as if moved: old and new are both live for a moment.
            count(new_size as i64);
            count(-(layout.size() as i64));
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// The most bytes the calling thread had live at once while `f` ran,
/// above what it had before.
fn peak_allocated<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - start).max(0) as usize)
}

/// The RSS checks read the whole process: one attack at a time.
static PROCESS: Mutex<()> = Mutex::new(());

/// The bombs decode, if decompressed in full, to an `EchoRequest` (or
/// response) this long: under the 64 MiB body limit, so a server bounded
/// by the body limit alone would decompress it and answer.
const BOMB_MESSAGE: usize = 40 << 20;

const LIMIT: usize = DEFAULT_MAX_DECOMPRESSED_SIZE;

/// The attack may grow the server's RSS by less than this.
const RSS_BOUND: usize = 2 * LIMIT;

/// What a payload over the default limit is refused with.
fn too_large_text() -> String {
    format!("larger than {LIMIT} bytes")
}

fn bomb_message() -> IOBuf {
    codec::encode(&req(&"a".repeat(BOMB_MESSAGE)))
}

/// A snappy or lz4 payload whose header claims `claimed` bytes, followed
/// by a few bytes that hold far less.
fn forged(ty: CompressType, claimed: u32) -> IOBuf {
    let mut out = Vec::new();
    let mut v = claimed;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    match ty {
        // A literal of one byte.
        CompressType::Snappy => out.extend_from_slice(&[0x00, b'a']),
        // A last sequence: one literal.
        CompressType::Lz4 => out.extend_from_slice(&[0x10, b'a']),
        _ => unreachable!("only snappy and lz4 have a length header"),
    }
    IOBuf::from(out)
}

fn request_frame(ty: CompressType, correlation_id: i64, payload: &IOBuf) -> IOBuf {
    let meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: SERVICE.into(),
            method_name: "Echo".into(),
            ..Default::default()
        }),
        correlation_id: Some(correlation_id),
        compress_type: Some(ty.as_i32()),
        ..Default::default()
    };
    let mut out = IOBuf::new();
    baidu_std::encode(&meta, payload, &IOBuf::new(), &mut out).unwrap();
    out
}

/// Reads one whole baidu_std frame from a blocking stream.
fn read_frame(s: &mut TcpStream) -> baidu_std::Frame {
    let mut buf = IOBuf::new();
    let mut chunk = vec![0u8; 64 << 10];
    // Bounded by the stream's read timeout and the frame limit.
    loop {
        match baidu_std::parse(&mut buf, 128 << 20) {
            ParseResult::Complete(f) => return f,
            ParseResult::NotEnoughData => {}
            ParseResult::Error(e) => panic!("bad frame: {e}"),
        }
        let n = s.read(&mut chunk).expect("a response before the timeout");
        assert!(n > 0, "the server closed the connection");
        buf.append(&chunk[..n]);
    }
}

fn vm_status(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: usize = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// Gives the heap's free memory back to the system, so that memory the
/// attack reuses (freed by building the bombs, or by an earlier test)
/// counts as growth.
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's peak RSS while `f` runs: the kernel's high-water mark
/// (reset first, where allowed) and a 1 ms sampler, whichever is higher.
fn peak_rss_during(f: impl FnOnce()) -> usize {
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(vm_status("VmRSS:").unwrap()));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            // Bounded: the attack ends within the test's timeouts.
            while !done.load(Ordering::Acquire) {
                if let Some(rss) = vm_status("VmRSS:") {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    f();
    done.store(true, Ordering::Release);
    sampler.join().unwrap();
    let mut p = peak.load(Ordering::Relaxed);
    if hwm_reset {
        p = p.max(vm_status("VmHWM:").unwrap_or(0));
    }
    p
}

/// Sends each of `bombs` (compressed as `ty`) on one raw connection to a
/// real server and checks that each is answered with `EREQUEST` and an
/// error text containing the expected words, that a normal request on the
/// same connection and a call on another one are answered, and that the
/// server's RSS grew by less than [`RSS_BOUND`].
fn attack(ty: CompressType, bombs: impl FnOnce() -> Vec<(IOBuf, String)>) {
    let _one_at_a_time = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let bombs = bombs();
    assert_eq!(ServerOptions::default().max_decompressed_size, LIMIT);
    let (server, calls) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let other = Channel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(10)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        echo(&other, &mut Controller::new(), &req("warm"))
            .unwrap()
            .message,
        "warm"
    );
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let frames: Vec<(IOBuf, String)> = bombs
        .into_iter()
        .enumerate()
        .map(|(i, (payload, words))| (request_frame(ty, i as i64 + 1, &payload), words))
        .collect();
    let normal = request_frame(
        ty,
        1000,
        &compress::compress(ty.as_i32(), &codec::encode(&req("after"))).unwrap(),
    );

    release_free_memory();
    let before = vm_status("VmRSS:").unwrap();
    let peak = peak_rss_during(|| {
        for (i, (frame, words)) in frames.iter().enumerate() {
            raw.write_all(&frame.to_vec()).unwrap();
            let resp = read_frame(&mut raw);
            assert_eq!(resp.meta.correlation_id(), i as i64 + 1);
            let meta = resp.meta.response.as_ref().expect("a response meta");
            assert_eq!(
                meta.error_code(),
                errno::EREQUEST,
                "{} bomb {i}: {:?}",
                ty.name(),
                meta.error_text()
            );
            assert!(
                meta.error_text().contains(words.as_str()),
                "{} bomb {i}: {:?} should say {words:?}",
                ty.name(),
                meta.error_text()
            );
        }
    });
    let grown = peak.saturating_sub(before);
    assert!(
        grown < RSS_BOUND,
        "{}: RSS grew by {} MiB during the attack (bound {} MiB)",
        ty.name(),
        grown >> 20,
        RSS_BOUND >> 20
    );
    assert_eq!(
        calls.load(Ordering::Relaxed),
        1,
        "no bomb reached the handler"
    );

    // The same connection still answers...
    raw.write_all(&normal.to_vec()).unwrap();
    let resp = read_frame(&mut raw);
    assert_eq!(resp.meta.correlation_id(), 1000);
    assert_eq!(resp.meta.response.as_ref().unwrap().error_code(), 0);
    let body = compress::decompress(resp.meta.compress_type(), &resp.payload, LIMIT).unwrap();
    let answer: EchoResponse = codec::decode_response(&body).unwrap();
    assert_eq!(answer.message, "after");
    // ...and so does another one.
    assert_eq!(
        echo(&other, &mut Controller::new(), &req("other"))
            .unwrap()
            .message,
        "other"
    );
    assert_eq!(server.connection_count(), 2);
}

/// The bomb of `ty` (the big message compressed), with what its error says.
fn message_bomb(ty: CompressType) -> (IOBuf, String) {
    let c = compress::compress(ty.as_i32(), &bomb_message()).unwrap();
    assert!(c.len() < 2 << 20, "{}: {} bytes", ty.name(), c.len());
    (c, too_large_text())
}

#[test]
fn gzip_bomb_fails_alone_with_bounded_memory() {
    attack(CompressType::Gzip, || {
        vec![message_bomb(CompressType::Gzip)]
    });
}

#[test]
fn zlib_bomb_fails_alone_with_bounded_memory() {
    attack(CompressType::Zlib, || {
        vec![message_bomb(CompressType::Zlib)]
    });
}

/// The big message, plus headers claiming 4 GiB - 1 (over any limit) and
/// exactly the limit (but carried by 3 bytes).
fn length_header_bombs(ty: CompressType) -> Vec<(IOBuf, String)> {
    vec![
        message_bomb(ty),
        (forged(ty, u32::MAX), too_large_text()),
        (forged(ty, LIMIT as u32), format!("claims {LIMIT} bytes")),
    ]
}

#[test]
fn snappy_bombs_fail_alone_with_bounded_memory() {
    attack(CompressType::Snappy, || {
        length_header_bombs(CompressType::Snappy)
    });
}

#[test]
fn lz4_bombs_fail_alone_with_bounded_memory() {
    attack(CompressType::Lz4, || length_header_bombs(CompressType::Lz4));
}

/// What one `decompress` call allocates, whatever the payload claims: at
/// most the limit (gzip and zlib: plus their inflate state and chunk),
/// plus a copy of the compressed input (snappy and lz4 decode from one
/// slice).
#[test]
fn decompress_allocates_at_most_the_limit() {
    const SMALL: usize = 1 << 20;
    const SLACK: usize = 128 << 10;
    let _one_at_a_time = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let zeros = IOBuf::from(vec![0u8; 8 * SMALL]);
    for ty in [
        CompressType::Gzip,
        CompressType::Zlib,
        CompressType::Snappy,
        CompressType::Lz4,
    ] {
        let mut bombs = vec![compress::compress(ty.as_i32(), &zeros).unwrap()];
        if matches!(ty, CompressType::Snappy | CompressType::Lz4) {
            bombs.push(forged(ty, u32::MAX));
            bombs.push(forged(ty, SMALL as u32));
        }
        for bomb in bombs {
            let (r, peak) = peak_allocated(|| compress::decompress(ty.as_i32(), &bomb, SMALL));
            assert!(
                matches!(
                    r,
                    Err(CompressError::TooLarge { .. } | CompressError::Corrupt(_))
                ),
                "{}: {r:?}",
                ty.name()
            );
            let bound = match ty {
                CompressType::Gzip | CompressType::Zlib => SMALL + SLACK,
                _ => bomb.len() + SLACK,
            };
            assert!(
                peak <= bound,
                "{} bomb of {} bytes: {peak} bytes allocated (bound {bound})",
                ty.name(),
                bomb.len()
            );
        }
    }
}

/// A response bomb fails its call with `ERESPONSE`; the next call on the
/// same connection is answered.
#[test]
fn response_bomb_fails_its_call_alone() {
    let _one_at_a_time = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bomb = compress::compress(
        CompressType::Gzip.as_i32(),
        &codec::encode(&EchoResponse {
            message: "a".repeat(BOMB_MESSAGE),
        }),
    )
    .unwrap();
    // A server that answers the first request with the bomb and the
    // second normally, on its one accepted connection.
    let fake = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        for (ct, payload) in [
            (CompressType::Gzip, bomb),
            (
                CompressType::None,
                codec::encode(&EchoResponse {
                    message: "after".into(),
                }),
            ),
        ] {
            let request = read_frame(&mut s);
            let meta = RpcMeta {
                response: Some(RpcResponseMeta {
                    error_code: Some(0),
                    error_text: None,
                }),
                correlation_id: request.meta.correlation_id,
                compress_type: Some(ct.as_i32()),
                ..Default::default()
            };
            let mut out = IOBuf::new();
            baidu_std::encode(&meta, &payload, &IOBuf::new(), &mut out).unwrap();
            s.write_all(&out.to_vec()).unwrap();
        }
    });
    let ch = Channel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(20)),
            max_retry: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ch.options().max_decompressed_size, LIMIT);
    let mut cntl = Controller::new();
    let e = match echo(&ch, &mut cntl, &req("bomb")) {
        // Not the response itself in the message: it is 40 MiB.
        Ok(r) => panic!("the bomb was decompressed: {} bytes", r.message.len()),
        Err(e) => e,
    };
    assert_eq!(e.code, errno::ERESPONSE, "{e}");
    assert!(e.text.contains(&too_large_text()), "{e}");
    assert_eq!(
        echo(&ch, &mut Controller::new(), &req("after"))
            .unwrap()
            .message,
        "after"
    );
    fake.join().unwrap();
}

/// Requests in process on one connection share its budget for
/// decompressed payloads (its `max_body_size`): with a 20 MiB budget and
/// a slow handler, a second 15 MiB request waits for nothing and fails
/// alone, while the first is answered.
#[test]
fn decompressed_requests_in_process_share_the_connections_budget() {
    let _one_at_a_time = PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let (server, _) = start_server(ServerOptions {
        max_body_size: 20 << 20,
        ..ServerOptions::default()
    });
    let mut raw = TcpStream::connect(server.listen_addr().unwrap()).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut slow = req(&"a".repeat(15 << 20));
    slow.sleep_ms = Some(500);
    let payload = compress::compress(CompressType::Gzip.as_i32(), &codec::encode(&slow)).unwrap();
    let mut both = request_frame(CompressType::Gzip, 1, &payload);
    both.append_buf(&request_frame(CompressType::Gzip, 2, &payload));
    raw.write_all(&both.to_vec()).unwrap();
    let mut answers = [read_frame(&mut raw), read_frame(&mut raw)];
    answers.sort_by_key(|f| f.meta.correlation_id());
    let codes: Vec<i32> = answers
        .iter()
        .map(|f| {
            f.meta
                .response
                .as_ref()
                .and_then(|r| r.error_code)
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(codes.iter().filter(|&&c| c == 0).count(), 1, "{codes:?}");
    assert!(codes.contains(&errno::EREQUEST), "{codes:?}");
    let refused = answers
        .iter()
        .find_map(|f| f.meta.response.as_ref()?.error_text.clone())
        .unwrap();
    assert!(refused.contains("max_body_size"), "{refused}");
}
