//! Opens many connections without blocking and without overflowing the
//! server's accept queue.
//!
//! A connection counts as up only once the server has echoed one probe byte
//! on it: only then do we know it was accepted (the kernel finishes the
//! handshake long before the application calls `accept`). With at most
//! `IN_FLIGHT` connections per thread between `connect` and that echo, the
//! accept queue (1024 deep) never holds more than the generator's threads
//! times `IN_FLIGHT`. Without the probe, a generator that connects faster
//! than the server accepts overflows the queue, and every dropped SYN costs
//! a one-second retransmit (then two, then four...).

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connections between `connect` and their probe's echo, per thread.
const IN_FLIGHT: usize = 128;

/// How long to wait before retrying a connect that was refused or found no
/// free local port: long enough for a starting server to reach `listen`.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// What the connect phase produced.
pub struct Connected {
    /// Established connections with TCP_NODELAY set, nothing left unread,
    /// not registered anywhere.
    pub streams: Vec<TcpStream>,
    /// Connections that could not be made before the deadline.
    pub failures: usize,
    /// The last reason a connection failed, for the report.
    pub last_error: Option<String>,
}

/// A connection on its way up.
struct Pending {
    stream: TcpStream,
    /// The handshake is done and the probe byte sent; waiting for its echo.
    probing: bool,
}

/// Opens `count` connections to `addr`, retrying refused ones until
/// `deadline`; whatever is not up by then counts as a failure.
pub fn connect_all(addr: SocketAddr, count: usize, deadline: Instant) -> io::Result<Connected> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(IN_FLIGHT);
    let mut slots: Vec<Option<Pending>> = (0..IN_FLIGHT).map(|_| None).collect();
    let mut free: Vec<usize> = (0..IN_FLIGHT).rev().collect();
    let mut out = Connected {
        streams: Vec::with_capacity(count),
        failures: 0,
        last_error: None,
    };
    let mut not_started = count;
    let mut pause_until = Instant::now();
    // Why the last retried connect failed, to say why the deadline passed.
    let mut retry_reason = None;
    while out.streams.len() + out.failures < count {
        let now = Instant::now();
        if now >= deadline {
            let missing = count - out.streams.len() - out.failures;
            out.failures += missing;
            let reason = retry_reason.map_or(String::new(), |e| format!(" (last retry: {e})"));
            out.last_error = Some(format!(
                "{missing} not connected within the connect timeout{reason}"
            ));
            break;
        }
        while now >= pause_until && not_started > 0 && !free.is_empty() {
            match TcpStream::connect(addr) {
                Ok(mut stream) => {
                    let slot = free.pop().expect("checked non-empty");
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    poll.registry()
                        .register(&mut stream, Token(slot), interest)?;
                    slots[slot] = Some(Pending {
                        stream,
                        probing: false,
                    });
                    not_started -= 1;
                }
                Err(e) if is_retryable(&e) => {
                    pause_until = now + RETRY_PAUSE;
                    retry_reason = Some(e);
                }
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
            let Some(pending) = slots[slot].as_mut() else {
                continue;
            };
            match advance(pending) {
                Step::Wait => continue,
                Step::Up => {
                    let mut up = slots[slot].take().expect("checked above");
                    poll.registry().deregister(&mut up.stream)?;
                    out.streams.push(up.stream);
                }
                Step::Retry(e) => {
                    retry_reason = Some(e);
                    slots[slot] = None;
                    not_started += 1;
                    pause_until = Instant::now() + RETRY_PAUSE;
                }
                Step::Failed(e) => {
                    slots[slot] = None;
                    out.fail(e);
                }
            }
            free.push(slot);
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

enum Step {
    Wait,
    Up,
    Retry(io::Error),
    Failed(io::Error),
}

/// Moves a pending connection on after an event: handshake done → send the
/// probe; probe echoed → up.
fn advance(pending: &mut Pending) -> Step {
    if !pending.probing {
        match handshake_outcome(&pending.stream) {
            Step::Up => {}
            other => return other,
        }
        if let Err(e) = pending.stream.set_nodelay(true) {
            return Step::Failed(e);
        }
        // One byte always fits an empty send buffer.
        if let Err(e) = pending.stream.write_all(&[0x5a]) {
            return Step::Failed(e);
        }
        pending.probing = true;
    }
    // Edge-triggered: this read must run now, the echo may already be here.
    let mut echo = [0u8; 1];
    match pending.stream.read(&mut echo) {
        Ok(1) => Step::Up,
        Ok(_) => Step::Failed(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection before echoing the probe",
        )),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Wait,
        Err(e) => Step::Failed(e),
    }
}

/// After an event on a connecting socket: mio's documented check is
/// `take_error` (did it fail?) then `peer_addr` (is it really up, or was the
/// event spurious?).
fn handshake_outcome(stream: &TcpStream) -> Step {
    match stream.take_error() {
        Ok(Some(e)) | Err(e) if is_retryable(&e) => return Step::Retry(e),
        Ok(Some(e)) | Err(e) => return Step::Failed(e),
        Ok(None) => {}
    }
    match stream.peer_addr() {
        Ok(_) => Step::Up,
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Step::Wait,
        Err(e) => Step::Failed(e),
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
