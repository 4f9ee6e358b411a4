//! Raw TCP echo server: one fiber per connection, plain blocking code.
//!
//! ```text
//! cargo run --release -p fibrpc-fiber --example tcp_echo_server -- --port 7000 --workers 2
//! ```
//!
//! `--io-driver epoll|uring|auto` picks what the I/O dispatchers wait in
//! (default: epoll, or `FIBRPC_IO_DRIVER`); the one that runs is printed.
//!
//! Each connection gets a fiber that reads up to 4 KiB and writes it back
//! until the peer closes. While it waits for input it holds no buffer
//! (see `serve`), so an idle connection costs about 4.5 KiB of memory
//! (`idle_conn_rss` measures it). `benches/net/run.sh` drives it against tokio and
//! may servers with the same semantics.

use fiber::net::{TcpListener, TcpStream};
use fibrpc_fiber as fiber;

fn main() -> std::io::Result<()> {
    let mut port = 7000u16;
    let mut workers = None;
    let mut stats = false;
    let mut migratable = false;
    let mut io_driver = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).expect("--port N"),
            "--workers" => workers = args.next().and_then(|v| v.parse().ok()),
            "--stats" => stats = true,
            "--migratable" => migratable = true,
            "--io-driver" => {
                io_driver = Some(match args.next().as_deref() {
                    Some("epoll") => fiber::io::IoDriver::Epoll,
                    Some("uring") => fiber::io::IoDriver::Uring,
                    Some("auto") => fiber::io::IoDriver::Auto,
                    _ => panic!("--io-driver epoll|uring|auto"),
                })
            }
            other => panic!(
                "unknown argument {other}; use --port N --workers N [--stats] [--migratable] [--io-driver epoll|uring|auto]"
            ),
        }
    }
    let mut builder = fiber::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    if let Some(d) = io_driver {
        builder = builder.io_driver(d);
    }
    let rt = builder.build()?;
    if stats {
        let rt = rt.clone();
        std::thread::spawn(move || print_stats(&rt));
    }
    rt.block_on(move || {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        println!(
            "listening on {} (I/O driver: {:?})",
            listener.local_addr()?,
            fiber::io::active_driver()?
        );
        loop {
            // Out of descriptors is handled inside `accept` (it backs off);
            // anything else ends this accept, not the server.
            match listener.accept() {
                Ok((conn, _)) => spawn_conn(conn, migratable),
                Err(e) => eprintln!("accept: {e}"),
            }
        }
    })
}

/// One fiber per connection. With `--migratable` the fiber may resume on
/// any worker (measured in BENCHMARKS.md against the pinned default).
fn spawn_conn(conn: TcpStream, migratable: bool) {
    let mut b = fiber::Builder::new();
    if migratable {
        // SAFETY: `serve` holds nothing tied to its OS thread across its
        // blocking reads and writes: the stream and an owned buffer (taken
        // from one thread's free list, it may go back to another's).
        b = unsafe { b.migratable() };
    }
    if let Err(e) = b.spawn(move || serve(conn)) {
        eprintln!("cannot start a connection fiber: {e}");
    }
}

/// Echoes until EOF or an error (a reset peer ends only this connection).
///
/// The connection holds no buffer while it waits for input: `readable`
/// suspends the fiber until bytes are there, and only then does the fiber
/// borrow a 4 KiB buffer from its worker thread's free list, for the read
/// and the write back. An idle connection costs its fiber's one touched
/// stack page and its control blocks; holding a buffer across the wait, as
/// the tokio peer does, would add 4 KiB to each.
fn serve(conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    loop {
        if conn.readable().is_err() {
            return;
        }
        let mut buf = EchoBuf::take();
        let buf = buf.bytes();
        match conn.try_read(buf) {
            Ok(0) => return,
            Ok(n) => {
                // Sent when this worker has run the other connections
                // ready now (see `TcpStream::write_all_batched`).
                if conn.write_all_batched(&buf[..n]).is_err() {
                    return;
                }
            }
            // A spurious wakeup: wait again, buffer given back.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Buffers a worker thread keeps for its connections' reads. Only
/// connections in the middle of an echo hold one, so a handful suffice; a
/// thread keeps at most this many and frees the rest (after a burst of
/// slow writers the extra go back to the allocator).
const FREE_BUFS_PER_THREAD: usize = 16;

thread_local! {
    static FREE_BUFS: std::cell::RefCell<Vec<Box<[u8; 4096]>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A 4 KiB buffer borrowed from the thread's free list, returned on drop.
struct EchoBuf(Option<Box<[u8; 4096]>>);

impl EchoBuf {
    fn take() -> EchoBuf {
        let cached = FREE_BUFS.with(|f| f.borrow_mut().pop());
        EchoBuf(Some(cached.unwrap_or_else(|| Box::new([0u8; 4096]))))
    }

    fn bytes(&mut self) -> &mut [u8; 4096] {
        match &mut self.0 {
            Some(b) => b,
            None => unreachable!("an EchoBuf holds its buffer until dropped"),
        }
    }
}

impl Drop for EchoBuf {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            FREE_BUFS.with(|f| {
                let mut f = f.borrow_mut();
                if f.len() < FREE_BUFS_PER_THREAD {
                    f.push(b);
                }
            });
        }
    }
}

/// Once a second: per-worker fiber switches, parks and steals (`--stats`).
fn print_stats(rt: &fiber::Runtime) {
    let mut last = rt.stats();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let now = rt.stats();
        let line: Vec<String> = now
            .workers
            .iter()
            .zip(&last.workers)
            .enumerate()
            .map(|(i, (n, l))| {
                format!(
                    "w{i}: {} switches {} parks {} steals",
                    n.switches - l.switches,
                    n.parks - l.parks,
                    n.steals - l.steals
                )
            })
            .collect();
        eprintln!("{}", line.join(" | "));
        last = now;
    }
}
