//! [`StreamSink`]: what a streaming request's stream shares between the
//! connection's reader (which puts the server's DATA in it) and the
//! caller's handle (which takes it out, gives the window back, and waits
//! for room to send).
//!
//! The server's DATA is held here, not gathered into one body: at most
//! the stream's receive window (`H2Options::initial_window_size`), which
//! is given back only as the caller takes the bytes, so a caller that
//! reads slowly stops the server rather than growing this buffer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Instant;

use fibrpc_fiber::sync::{Condvar, Mutex, MutexGuard};
use fibrpc_iobuf::IOBuf;
use http::HeaderMap;

/// The shared state of one streaming request's stream (see the module
/// docs).
#[derive(Debug)]
pub struct StreamSink {
    state: Mutex<SinkState>,
    cond: Condvar,
    /// Request bytes queued on the stream and not yet written (the
    /// server's windows hold them back), kept by the sending half.
    unsent: AtomicUsize,
    /// The stream's receive window as this side opened it.
    initial_window: u32,
}

#[derive(Debug)]
struct SinkState {
    /// The server's DATA not yet taken.
    data: IOBuf,
    /// What the server may still send on the stream.
    window: i64,
    /// Bytes taken (or padding) not yet given back to the server.
    consumed: u32,
    /// The response's `:status` and headers, once they came.
    head: Option<(u16, HeaderMap)>,
    /// The stream ended (its outcome went to the call), or the caller
    /// gave it up: no more data comes.
    ended: bool,
    /// An asynchronous receiver to wake.
    waker: Option<Waker>,
}

/// What [`StreamSink::take`] found.
#[derive(Debug)]
pub enum Taken {
    /// Bytes of the response body, and the window to give back now
    /// (0: not yet worth a WINDOW_UPDATE).
    Data(IOBuf, u32),
    /// The stream ended and every byte was taken.
    Ended,
    /// Nothing yet.
    Empty,
}

impl StreamSink {
    /// A sink for a stream whose receive window is `initial_window`.
    pub fn new(initial_window: u32) -> StreamSink {
        StreamSink {
            state: Mutex::new(SinkState {
                data: IOBuf::new(),
                window: i64::from(initial_window),
                consumed: 0,
                head: None,
                ended: false,
                waker: None,
            }),
            cond: Condvar::new(),
            unsent: AtomicUsize::new(0),
            initial_window,
        }
    }

    fn wake(&self, mut s: MutexGuard<'_, SinkState>) {
        let waker = s.waker.take();
        drop(s);
        self.cond.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The response's headers came (the reader).
    pub(super) fn set_head(&self, status: u16, headers: HeaderMap) {
        let mut s = self.state.lock();
        s.head = Some((status, headers));
        self.wake(s);
    }

    /// The response's `:status` and headers, if they came.
    pub fn head(&self) -> Option<(u16, HeaderMap)> {
        self.state.lock().head.clone()
    }

    /// A DATA frame of `len` bytes (with padding) brought `data` (the
    /// reader). `false`: past the stream's window, a flow-control error.
    pub(super) fn receive(&self, len: u32, data: IOBuf) -> bool {
        let mut s = self.state.lock();
        if i64::from(len) > s.window {
            return false;
        }
        s.window -= i64::from(len);
        // Padding is never taken: it counts as consumed at once.
        s.consumed += len - data.len() as u32;
        s.data.append_owned(data);
        self.wake(s);
        true
    }

    /// No more data comes: the stream ended or was given up.
    pub fn end(&self) {
        let mut s = self.state.lock();
        s.ended = true;
        self.wake(s);
    }

    /// Whether the stream ended.
    pub fn ended(&self) -> bool {
        self.state.lock().ended
    }

    /// Takes what arrived, without waiting; `waker` (an asynchronous
    /// receiver) is woken when more comes.
    pub fn take(&self, waker: Option<&Waker>) -> Taken {
        let mut s = self.state.lock();
        self.take_locked(&mut s, waker)
    }

    fn take_locked(&self, s: &mut SinkState, waker: Option<&Waker>) -> Taken {
        if !s.data.is_empty() {
            let data = std::mem::take(&mut s.data);
            s.consumed += data.len() as u32;
            let mut give = 0;
            if !s.ended && s.consumed >= self.initial_window / 2 {
                give = s.consumed;
                s.window += i64::from(give);
                s.consumed = 0;
            }
            return Taken::Data(data, give);
        }
        if s.ended {
            return Taken::Ended;
        }
        if let Some(w) = waker {
            s.waker = Some(w.clone());
        }
        Taken::Empty
    }

    /// [`take`](Self::take), waiting until something arrives, the stream
    /// ends, or `deadline` (then `Empty`).
    pub fn take_wait(&self, deadline: Option<Instant>) -> Taken {
        let mut s = self.state.lock();
        loop {
            match self.take_locked(&mut s, None) {
                Taken::Empty => {}
                t => return t,
            }
            s = match deadline {
                Some(d) => {
                    if Instant::now() >= d {
                        return Taken::Empty;
                    }
                    self.cond.wait_deadline(s, d).0
                }
                None => self.cond.wait(s),
            };
        }
    }

    /// Request bytes held back by the windows (the sending half).
    pub fn unsent(&self) -> usize {
        self.unsent.load(Ordering::Acquire)
    }

    /// The sending half's count of held-back bytes changed; a sender
    /// waiting for room hears it.
    pub(super) fn set_unsent(&self, n: usize) {
        let before = self.unsent.swap(n, Ordering::AcqRel);
        if n < before {
            // Under the lock: a sender checks the count under it.
            let s = self.state.lock();
            drop(s);
            self.cond.notify_all();
        }
    }

    /// Waits until fewer than `limit` request bytes are held back, the
    /// stream ends, or `deadline`. Returns whether there is room.
    pub fn wait_room(&self, limit: usize, deadline: Option<Instant>) -> bool {
        let mut s = self.state.lock();
        loop {
            if self.unsent() < limit {
                return true;
            }
            if s.ended {
                return false;
            }
            s = match deadline {
                Some(d) => {
                    if Instant::now() >= d {
                        return false;
                    }
                    self.cond.wait_deadline(s, d).0
                }
                None => self.cond.wait(s),
            };
        }
    }
}
