//! `floor_hello`: the least a server can do per request, as a yardstick.
//!
//! ```text
//! floor_hello [--port P (8103; 0 = any)] [--workers W (2)]
//! ```
//!
//! Not a peer but the floor under every peer ([`fibrpc_tools::floor`]: raw
//! edge-triggered epoll per thread, no runtime, no parser). Every
//! `\r\n\r\n` read counts as one request, whatever its path, and is
//! answered with what hyper sends for `/hello`: 200 `text/plain`
//! `Hello, World!` with `content-length` and `date`; the answers to one
//! read burst go out in one `write`. Its requests/s under the same `wrk`
//! shows what a server doing one read and one write per request can get on
//! this machine with next to no user-space work: a yardstick, not a proven
//! maximum (`benches/http/README.md`).

use fibrpc_bench_http::{announce_listening, server_flags, HELLO_BODY, LISTEN_BACKLOG};
use fibrpc_tools::floor::{serve, Protocol};

const USAGE: &str = "usage: floor_hello [--port P (8103; 0 = any)] [--workers W (2)]";

fn main() -> std::io::Result<()> {
    let (port, workers) = server_flags(USAGE, 8103);
    serve::<Hello>(port, workers, LISTEN_BACKLOG, announce_listening)
}

/// One connection: how much of a `\r\n\r\n` the input so far ends with.
#[derive(Default)]
struct Hello {
    matched: u8,
}

impl Protocol for Hello {
    fn on_input(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.matched = match (self.matched, b) {
                (0 | 2, b'\r') => self.matched + 1,
                (1 | 3, b'\n') => self.matched + 1,
                (_, b'\r') => 1,
                _ => 0,
            };
            if self.matched == 4 {
                self.matched = 0;
                RESPONSE.with(|r| out.extend_from_slice(r.borrow_mut().bytes()));
            }
        }
    }
}

thread_local! {
    static RESPONSE: std::cell::RefCell<Response> = std::cell::RefCell::new(Response::default());
}

/// The answer, rebuilt when the second (and so the `date`) changes.
#[derive(Default)]
struct Response {
    second: libc::time_t,
    bytes: Vec<u8>,
}

impl Response {
    fn bytes(&mut self) -> &[u8] {
        // SAFETY: time(NULL) has no preconditions (a vDSO call).
        let now = unsafe { libc::time(std::ptr::null_mut()) };
        if now != self.second || self.bytes.is_empty() {
            self.second = now;
            self.bytes = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\ndate: {}\r\n\r\n{HELLO_BODY}",
                HELLO_BODY.len(),
                http_date(now)
            )
            .into_bytes();
        }
        &self.bytes
    }
}

/// `now` as an HTTP date (`Tue, 24 Nov 2026 10:44:00 GMT`).
fn http_date(now: libc::time_t) -> String {
    // SAFETY: an all-zero `tm` is a valid value; gmtime_r fills it, and
    // strftime writes at most `buf.len()` bytes into `buf`, returning how
    // many.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&now, &mut tm);
        let mut buf = [0u8; 64];
        let fmt = c"%a, %d %b %Y %H:%M:%S GMT";
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}
