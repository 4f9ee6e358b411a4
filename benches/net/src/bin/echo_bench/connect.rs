//! Opens many connections at once without blocking: up to `IN_FLIGHT`
//! non-blocking connects are outstanding per generator thread, so 10k
//! connections arrive as a steady stream the server's 1024-deep accept queue
//! can absorb rather than one burst that overflows it (an overflowed SYN is
//! only retried by the kernel after a second).

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connects outstanding at once per thread.
const IN_FLIGHT: usize = 128;

/// How long to wait before retrying a connect that was refused or found no
/// free local port: long enough for a starting server to reach `listen`.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// What the connect phase produced.
pub struct Connected {
    /// Established connections with TCP_NODELAY set, not registered anywhere.
    pub streams: Vec<TcpStream>,
    /// Connections that could not be made before the deadline.
    pub failures: usize,
    /// The last reason a connection failed, for the report.
    pub last_error: Option<String>,
}

/// Opens `count` connections to `addr`, retrying refused ones until
/// `deadline`; whatever is not up by then counts as a failure.
pub fn connect_all(addr: SocketAddr, count: usize, deadline: Instant) -> io::Result<Connected> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(IN_FLIGHT);
    let mut slots: Vec<Option<TcpStream>> = (0..IN_FLIGHT).map(|_| None).collect();
    let mut free: Vec<usize> = (0..IN_FLIGHT).rev().collect();
    let mut out = Connected {
        streams: Vec::with_capacity(count),
        failures: 0,
        last_error: None,
    };
    let mut not_started = count;
    let mut pause_until = Instant::now();
    while out.streams.len() + out.failures < count {
        let now = Instant::now();
        if now >= deadline {
            let missing = count - out.streams.len() - out.failures;
            out.failures += missing;
            out.last_error = Some(format!("{missing} not connected before the deadline"));
            break;
        }
        while now >= pause_until && not_started > 0 && !free.is_empty() {
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    let slot = free.pop().expect("checked non-empty");
                    poll.registry()
                        .register(&mut stream, Token(slot), Interest::WRITABLE)?;
                    slots[slot] = Some(stream);
                    not_started -= 1;
                }
                Err(e) if is_retryable(&e) => pause_until = now + RETRY_PAUSE,
                Err(e) => {
                    not_started -= 1;
                    out.fail(e);
                }
            }
        }
        let wait = deadline.min(now + RETRY_PAUSE) - now;
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            let slot = event.token().0;
            let Some(stream) = slots[slot].as_mut() else {
                continue;
            };
            match connect_outcome(stream) {
                Outcome::Pending => continue,
                Outcome::Up => {
                    let mut stream = slots[slot].take().expect("checked above");
                    poll.registry().deregister(&mut stream)?;
                    match stream.set_nodelay(true) {
                        Ok(()) => out.streams.push(stream),
                        Err(e) => out.fail(e),
                    }
                }
                Outcome::Retry => {
                    slots[slot] = None;
                    not_started += 1;
                    pause_until = Instant::now() + RETRY_PAUSE;
                }
                Outcome::Failed(e) => {
                    slots[slot] = None;
                    out.fail(e);
                }
            }
            if slots[slot].is_none() {
                free.push(slot);
            }
        }
    }
    Ok(out)
}

impl Connected {
    fn fail(&mut self, e: io::Error) {
        self.failures += 1;
        self.last_error = Some(e.to_string());
    }
}

enum Outcome {
    Pending,
    Up,
    Retry,
    Failed(io::Error),
}

/// After a writable event on a connecting socket: mio's documented check is
/// `take_error` (did it fail?) then `peer_addr` (is it really up, or was the
/// event spurious?).
fn connect_outcome(stream: &TcpStream) -> Outcome {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) if is_retryable(&e) => return Outcome::Retry,
        Ok(Some(e)) | Err(e) => return Outcome::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Outcome::Up,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Outcome::Pending,
        Err(e) => Outcome::Failed(e),
    }
}

/// Refused (the server is not listening yet) or no free local port for the
/// moment: worth another try shortly.
fn is_retryable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EAGAIN | libc::EADDRNOTAVAIL)
    )
}
