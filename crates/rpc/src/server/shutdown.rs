//! Graceful shutdown on SIGINT/SIGTERM: [`shutdown_signal`], the future
//! behind [`Server::run_until_signal`](super::Server::run_until_signal).
//!
//! # How it works
//!
//! Waiting for the signals with `sigwait`/`signalfd` would need them
//! blocked in every thread of the process, and a server's threads (fiber
//! workers, the timer thread) exist before anyone asks to wait. So the
//! signals get a handler instead, which does only async-signal-safe work:
//! it writes the signal number into a pipe and puts the default action
//! back (a second Ctrl-C ends a stop that hangs). A thread of ours reads
//! the pipe and wakes the waiting futures; the stop itself then runs as
//! plain code wherever the future was awaited. That thread unblocks both
//! signals for itself, so they are still taken when a program blocked
//! them in every other thread.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};

/// The signals that ask for a graceful stop.
const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The write end of the pipe, for the handler (-1 until set up).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

static STATE: Mutex<State> = Mutex::new(State {
    fired: 0,
    live: 0,
    armed: false,
    prev: None,
    next_id: 0,
    waiters: Vec::new(),
});

struct State {
    /// Signals taken so far.
    fired: u64,
    /// `ShutdownSignal`s alive.
    live: usize,
    /// Whether our handler is installed.
    armed: bool,
    /// The dispositions before ours, put back when the last
    /// `ShutdownSignal` goes away without a signal.
    prev: Option<[libc::sigaction; 2]>,
    next_id: u64,
    waiters: Vec<(u64, Waker)>,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a
// mask); it holds no pointer that is dereferenced through this state.
unsafe impl Send for State {}

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A future that completes when the process receives SIGINT (Ctrl-C) or
/// SIGTERM, like tokio's `signal::ctrl_c()`. Made by [`shutdown_signal`];
/// pass it to [`Server::run_until`](super::Server::run_until) or
/// [`Server::serve_with_shutdown`](super::Server::serve_with_shutdown).
///
/// From the moment one exists until it completes or every one of them is
/// dropped, SIGINT and SIGTERM no longer end the process: they complete
/// every `ShutdownSignal` alive instead. The first signal puts the default
/// action back at once, so a second one ends the process even while the
/// graceful stop is still waiting. When the last `ShutdownSignal` is
/// dropped before any signal, the dispositions from before are restored.
#[derive(Debug)]
#[must_use = "a ShutdownSignal does nothing unless awaited"]
pub struct ShutdownSignal {
    id: u64,
    /// `State::fired` when this future was made.
    seen: u64,
}

/// Starts taking SIGINT and SIGTERM and returns a future that completes
/// when one of them arrives (a signal that arrived earlier does not
/// count). Fails only if the pipe or the thread it needs cannot be made.
///
/// ```no_run
/// # fn demo(mut server: fibrpc::Server) -> Result<(), fibrpc::RpcError> {
/// let signal = fibrpc::server::shutdown_signal()?;
/// server.serve_with_shutdown("0.0.0.0:8000", signal)?;
/// # Ok(()) }
/// ```
pub fn shutdown_signal() -> io::Result<ShutdownSignal> {
    start_watcher()?;
    let mut st = state();
    if !st.armed {
        st.prev = Some(install()?);
        st.armed = true;
    }
    st.live += 1;
    st.next_id += 1;
    Ok(ShutdownSignal {
        id: st.next_id,
        seen: st.fired,
    })
}

impl Future for ShutdownSignal {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = state();
        if st.fired > self.seen {
            return Poll::Ready(());
        }
        let waker = cx.waker();
        match st.waiters.iter_mut().find(|(id, _)| *id == self.id) {
            Some((_, w)) => w.clone_from(waker),
            None => st.waiters.push((self.id, waker.clone())),
        }
        Poll::Pending
    }
}

impl Drop for ShutdownSignal {
    fn drop(&mut self) {
        let mut st = state();
        st.waiters.retain(|(id, _)| *id != self.id);
        st.live -= 1;
        if st.live == 0 && st.armed {
            st.armed = false;
            if let Some(prev) = st.prev.take() {
                for (sig, old) in SIGNALS.iter().zip(&prev) {
                    // SAFETY: restores a disposition sigaction gave us.
                    unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
                }
            }
        }
    }
}

/// Installs the handler for both signals; returns the old dispositions.
fn install() -> io::Result<[libc::sigaction; 2]> {
    // SAFETY: sigaction is plain data; zeroed is a valid empty value.
    let mut prev: [libc::sigaction; 2] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as *const () as usize;
    // Interrupted system calls restart: the signal must not surface as
    // EINTR in code that does not expect it.
    sa.sa_flags = libc::SA_RESTART;
    for (sig, old) in SIGNALS.iter().zip(prev.iter_mut()) {
        // SAFETY: valid pointers to initialized structs; the handler only
        // makes async-signal-safe calls.
        let rc = unsafe {
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(*sig, &sa, old)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(prev)
}

extern "C" fn handler(sig: libc::c_int) {
    // SAFETY: write(2) and sigaction(2) are async-signal-safe; errno is
    // saved and restored so the interrupted code does not see ours.
    unsafe {
        let errno = *libc::__errno_location();
        let fd = PIPE_WRITE.load(Ordering::Relaxed);
        if fd >= 0 {
            let byte = sig as u8;
            // A full pipe already holds a wake-up: nothing is lost.
            libc::write(fd, (&raw const byte).cast(), 1);
        }
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for s in SIGNALS {
            libc::sigaction(s, &dfl, std::ptr::null_mut());
        }
        *libc::__errno_location() = errno;
    }
}

/// Makes the pipe and the thread that reads it, once per process.
fn start_watcher() -> io::Result<()> {
    static WATCHER: OnceLock<Result<(), (io::ErrorKind, String)>> = OnceLock::new();
    WATCHER
        .get_or_init(|| spawn_watcher().map_err(|e| (e.kind(), e.to_string())))
        .clone()
        .map_err(|(kind, msg)| io::Error::new(kind, msg))
}

fn spawn_watcher() -> io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let [read_fd, write_fd] = fds;
    // The handler must never block.
    // SAFETY: `write_fd` is ours and open.
    unsafe {
        let flags = libc::fcntl(write_fd, libc::F_GETFL);
        libc::fcntl(write_fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let spawned = std::thread::Builder::new()
        .name("fibrpc-signals".into())
        .spawn(move || watch(read_fd));
    if let Err(e) = spawned {
        // SAFETY: both descriptors are ours and nothing else uses them.
        unsafe {
            libc::close(read_fd);
            libc::close(write_fd);
        }
        return Err(e);
    }
    PIPE_WRITE.store(write_fd, Ordering::Release);
    Ok(())
}

/// The watcher thread: each byte read is one signal taken.
fn watch(read_fd: libc::c_int) {
    // SAFETY: sigset_t is plain data, initialized by sigemptyset; the mask
    // change is this thread's only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: `buf` is a live buffer of the given length.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        let waiters = {
            let mut st = state();
            st.fired += 1;
            // The handler put the default action back.
            st.armed = false;
            st.prev = None;
            std::mem::take(&mut st.waiters)
        };
        for (_, w) in waiters {
            w.wake();
        }
    }
}
