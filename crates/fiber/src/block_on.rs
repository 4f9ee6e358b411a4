//! Running a `Future` to completion from synchronous code.

use crate::butex::Butex;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Wakes the blocked fiber or thread by bumping a butex.
struct ButexWaker(Butex);

impl Wake for ButexWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.value().fetch_add(1, Ordering::Release);
        self.0.wake_all();
    }
}

/// Polls `future` to completion. In a fiber, only the fiber waits between
/// polls (the waker makes it ready again); on a plain thread, the thread
/// blocks. The future may be woken from any thread, or from any runtime's
/// reactor (e.g. a tokio I/O driver running elsewhere).
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let signal = Arc::new(ButexWaker(Butex::new(0)));
    let waker = Waker::from(signal.clone());
    let mut cx = Context::from_waker(&waker);
    let mut interrupted = false;
    loop {
        // Read before polling: a wake during the poll changes the value, so
        // the wait below returns at once instead of missing it.
        let seen = signal.0.value().load(Ordering::Acquire);
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            if interrupted {
                crate::task::restore_interrupt();
            }
            return v;
        }
        // Interrupts do not cancel a future: keep waiting, and hand the
        // interrupt back afterwards. Spurious returns just poll again.
        if signal.0.wait(seen, None) == Err(crate::butex::WaitError::Interrupted) {
            interrupted = true;
        }
    }
}
