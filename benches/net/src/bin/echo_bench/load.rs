//! The closed loop on one generator thread: every connection writes S bytes,
//! reads until S bytes came back, and starts over, all driven by one
//! edge-triggered epoll (mio). Nothing is allocated per request: all
//! connections write from one constant buffer and read into one scratch
//! buffer (the echo's bytes are counted, not compared).

use crate::tally::Tally;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// When the loop runs.
#[derive(Clone, Copy)]
pub struct Schedule {
    /// Requests completing from here on are measured...
    pub window_start: Instant,
    /// ...until here, where the loop stops (in-flight requests are dropped).
    pub window_end: Instant,
}

/// Longest sleep in epoll, so the loop notices the end of the window even
/// if no connection makes progress (a stuck server).
const MAX_WAIT: Duration = Duration::from_millis(50);

/// Read size cap: a request larger than this is read in several pieces.
const SCRATCH_SIZE: usize = 64 * 1024;

struct Conn {
    stream: TcpStream,
    /// Bytes of the current request written so far.
    sent: usize,
    /// Bytes of its echo read so far.
    received: usize,
    /// When the current request's first byte was written.
    started: Instant,
    /// Closed or failed, or the window is over: no more reading.
    finished: bool,
}

/// Runs the loop on `streams` until `schedule.window_end` and returns what
/// it saw: requests and latencies inside the window, errors at any time.
pub fn run(streams: Vec<TcpStream>, size: usize, schedule: Schedule) -> io::Result<Tally> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut conns = Vec::with_capacity(streams.len());
    let now = Instant::now();
    for (i, mut stream) in streams.into_iter().enumerate() {
        // Writable too: a large request may not fit the send buffer at once.
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry().register(&mut stream, Token(i), interest)?;
        conns.push(Conn {
            stream,
            sent: 0,
            received: 0,
            started: now,
            finished: false,
        });
    }
    let mut io = Io {
        request: vec![0x5a; size],
        scratch: vec![0; size.min(SCRATCH_SIZE)],
        schedule,
        tally: Tally::new(),
    };
    for conn in &mut conns {
        io.drive(conn);
    }
    loop {
        let now = Instant::now();
        if now >= schedule.window_end {
            break;
        }
        match poll.poll(&mut events, Some(MAX_WAIT.min(schedule.window_end - now))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            let conn = &mut conns[event.token().0];
            if !conn.finished {
                io.drive(conn);
            }
        }
    }
    Ok(io.tally)
}

/// The buffers and bookkeeping shared by one thread's connections.
struct Io {
    request: Vec<u8>,
    scratch: Vec<u8>,
    schedule: Schedule,
    tally: Tally,
}

impl Io {
    /// Moves `conn` as far as it goes without blocking: writes what is left
    /// of the request, reads what has come back, and on a complete echo
    /// records it and writes the next request.
    ///
    /// Edge-triggered epoll reports only new readiness, so a read that stops
    /// short of `WouldBlock` must know nothing is left: that holds after a
    /// complete echo, since the server sends nothing until the next request.
    /// Right after writing a request we go back to epoll instead of trying
    /// to read: its echo is not there yet, and that read would be a wasted
    /// syscall per request (its arrival raises a new edge anyway).
    fn drive(&mut self, conn: &mut Conn) {
        let size = self.request.len();
        if !self.write_rest(conn) {
            return;
        }
        loop {
            // Read even while the request is partly written: a large echo
            // must drain, or server and generator both block on full buffers.
            while conn.received < size {
                let want = (size - conn.received).min(self.scratch.len());
                match conn.stream.read(&mut self.scratch[..want]) {
                    Ok(0) => return self.fail(conn, None),
                    Ok(n) => conn.received += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return self.fail(conn, Some(e)),
                }
            }
            // Echo complete (all of it came back, so all of it was sent).
            let now = Instant::now();
            if now >= self.schedule.window_start && now < self.schedule.window_end {
                self.tally.record(now - conn.started);
            }
            if now >= self.schedule.window_end {
                conn.finished = true;
                return;
            }
            conn.sent = 0;
            conn.received = 0;
            conn.started = now;
            if !self.write_rest(conn) || conn.sent == size {
                return;
            }
        }
    }

    /// Writes what is left of the current request; false if the connection
    /// failed (`WouldBlock` is fine: the writable edge brings us back).
    fn write_rest(&mut self, conn: &mut Conn) -> bool {
        while conn.sent < self.request.len() {
            match conn.stream.write(&self.request[conn.sent..]) {
                Ok(n) => conn.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(conn, Some(e));
                    return false;
                }
            }
        }
        true
    }

    /// The connection failed, or (`None`) the server closed it: a short
    /// echo if it closed after sending part of one, else a reset.
    fn fail(&mut self, conn: &mut Conn, error: Option<io::Error>) {
        conn.finished = true;
        if error.is_none() && conn.received > 0 {
            self.tally.short_echoes += 1;
        } else {
            self.tally.resets += 1;
        }
    }
}
