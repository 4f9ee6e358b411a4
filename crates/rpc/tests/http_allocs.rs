//! What one plain HTTP/1.1 request costs the server in heap allocations:
//! the shape of the plaintext benchmark (`wrk` against the `http_hello`
//! example: `GET /hello` with only a `Host` header, keep-alive, one
//! request in flight per connection) served over loopback, with a counting
//! global allocator. The client side allocates nothing while it measures
//! (a fixed request, a stack buffer for the response), so the counts are
//! the server's.
//!
//! The figures are printed (`cargo test --test http_allocs -- --nocapture`)
//! and bounded with a generous ceiling: a count, not a time, so the bound
//! does not depend on the machine's load. With `ALLOC_TRACE=1` the test
//! also prints a backtrace of every allocation of one more request: where
//! each one comes from.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fibrpc::http::{header, HeaderValue, HttpContext, Request, Response};
use fibrpc::{IOBuf, Server, ServerOptions};

/// Counts every allocation of the process and its bytes.
struct CountingAlloc;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Print a backtrace per allocation (`ALLOC_TRACE`).
static TRACE: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread is printing a backtrace: its own allocations are not
    /// traced.
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize) {
    if TRACE.load(Ordering::Relaxed) {
        let _ = TRACING.try_with(|busy| {
            if !busy.replace(true) {
                let bt = std::backtrace::Backtrace::force_capture();
                eprintln!("=== allocation of {size} bytes\n{bt}");
                busy.set(false);
            }
        });
    }
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are
// plain atomics, which allocate nothing.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A growth is an allocation of the new size (and a copy).
        count(new_size);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The `http_hello` example's handler.
fn hello(_req: Request<IOBuf>, _ctx: &HttpContext) -> Response<IOBuf> {
    let mut r = Response::new(IOBuf::from("Hello, World!"));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// One keep-alive client connection that allocates nothing per request.
struct Client {
    s: TcpStream,
    request: Vec<u8>,
    /// Requests sent per write (1: as wrk; more: pipelined).
    depth: usize,
}

impl Client {
    fn open(addr: SocketAddr, depth: usize) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // What wrk sends.
        let one = format!("GET /hello HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        Client {
            s,
            request: one.repeat(depth).into_bytes(),
            depth,
        }
    }

    /// Sends `depth` requests and reads their responses, checking each is
    /// a `200 Hello, World!`.
    fn round(&mut self) {
        const BODY: &[u8] = b"Hello, World!";
        self.s.write_all(&self.request).unwrap();
        let mut buf = [0u8; 16 << 10];
        let mut have = 0;
        let mut seen = 0;
        while seen < self.depth {
            let n = self.s.read(&mut buf[have..]).unwrap();
            assert!(n > 0, "the server closed the connection");
            have += n;
            // Whole responses at the front of the buffer.
            while let Some(head) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                let end = head + 4 + BODY.len();
                if have < end {
                    break;
                }
                assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
                assert_eq!(&buf[head + 4..end], BODY);
                buf.copy_within(end..have, 0);
                have -= end;
                seen += 1;
            }
        }
        assert_eq!(have, 0, "more bytes than {} responses", self.depth);
    }
}

/// Allocations and bytes allocated per request over `rounds` rounds of
/// `depth` requests, after a warm-up (connection setup, first-use caches,
/// buffers grown to their working size).
fn per_request(addr: SocketAddr, depth: usize, rounds: usize) -> (f64, f64) {
    let mut c = Client::open(addr, depth);
    for _ in 0..200 {
        c.round();
    }
    let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    for _ in 0..rounds {
        c.round();
    }
    let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    let n = (rounds * depth) as f64;
    ((a1 - a0) as f64 / n, (b1 - b0) as f64 / n)
}

/// One test: the counts are process-wide, so nothing else may run beside
/// it in this binary.
#[test]
fn plain_requests_allocate_little_on_the_server() {
    let mut server = Server::new(ServerOptions::default());
    server.add_http_handler("/hello", hello).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();

    let (allocs, bytes) = per_request(addr, 1, 2000);
    println!("one in flight (wrk's shape): {allocs:.2} allocations, {bytes:.0} bytes per request");
    let (p_allocs, p_bytes) = per_request(addr, 16, 200);
    println!("16 pipelined: {p_allocs:.2} allocations, {p_bytes:.0} bytes per request");
    if std::env::var_os("ALLOC_TRACE").is_some() {
        let mut c = Client::open(addr, 1);
        for _ in 0..200 {
            c.round();
        }
        TRACE.store(true, Ordering::SeqCst);
        c.round();
        TRACE.store(false, Ordering::SeqCst);
    }

    // Ceilings with room over the measured figures: 2 allocations (the
    // handler's response header map; the head arena adds one per ~40
    // requests) and ~700 bytes one in flight. Each allocation the server
    // adds back per request (a header map for the request, its box, the
    // write-list node, an owner for the head's bytes) fails them.
    assert!(allocs <= 2.5, "{allocs:.2} allocations per request");
    assert!(bytes <= 900.0, "{bytes:.0} bytes allocated per request");
    assert!(
        p_allocs <= 12.0,
        "{p_allocs:.2} allocations per pipelined request"
    );
    server.stop();
    server.join();
}
