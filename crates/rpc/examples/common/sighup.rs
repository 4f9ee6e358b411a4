//! Runs a callback on every SIGHUP (the echo server reloads its TLS
//! certificate then), in a thread of its own.
//!
//! SIGHUP is blocked in the calling thread, which every thread started
//! afterwards inherits, and taken with `sigwait` by the one thread
//! started here: so call [`block`] first thing in `main`, before anything
//! starts a thread, and [`on_sighup`] once there is something to do.

/// Blocks SIGHUP in this thread (and so in every thread it starts).
pub fn block() {
    let set = sighup();
    // SAFETY: `set` is an initialized signal set; a null old set is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "pthread_sigmask");
}

/// Calls `f` on every SIGHUP, from a thread of its own (after [`block`]).
pub fn on_sighup(f: impl Fn() + Send + 'static) {
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || loop {
            let set = sighup();
            let mut sig = 0;
            // SAFETY: both pointers are valid for the call; SIGHUP is
            // blocked in every thread, so it waits here until taken.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                f();
            }
        })
        .expect("start the SIGHUP thread");
}

fn sighup() -> libc::sigset_t {
    // SAFETY: sigemptyset initializes the set it is given, which is then
    // only read after it.
    unsafe {
        let mut set = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}
