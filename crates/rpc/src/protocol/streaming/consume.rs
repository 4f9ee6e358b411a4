//! The fiber that feeds a stream's [`StreamInputHandler`]: one at a
//! time per stream, started when input arrives and none runs, ending
//! when nothing is left. It hands over messages in batches, in order,
//! then idle timeouts, then the end; a batch counts as consumed (and
//! FEEDBACK opens the peer's window) once the handler returned.
//!
//! [`StreamInputHandler`]: super::StreamInputHandler

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::options::StreamInput;
use super::stream::{Event, StreamInner};
use super::Stream;
use crate::server::panic_message;

pub(super) fn run(inner: Arc<StreamInner>) {
    let StreamInput::Handler(handler) = inner.options.input.clone() else {
        return;
    };
    let stream = Stream {
        inner: inner.clone(),
    };
    loop {
        let event = inner.next_event();
        let mut consumed = 0;
        let r = catch_unwind(AssertUnwindSafe(|| match event {
            Event::Messages(mut batch) => {
                consumed = batch.iter().map(|m| m.len() as u64).sum();
                handler.on_received_messages(&stream, &mut batch);
            }
            Event::Idle => handler.on_idle_timeout(&stream),
            Event::End(error) => {
                if let Some(e) = &error {
                    handler.on_failed(&stream, e);
                }
                handler.on_closed(&stream);
            }
            Event::Stop => consumed = u64::MAX,
        }));
        if let Err(p) = r {
            tracing::error!(
                stream = inner.id(),
                panic = %panic_message(&*p),
                "a stream handler panicked; its messages count as consumed"
            );
        }
        match consumed {
            u64::MAX => return,
            0 => {}
            n => inner.consumed(n),
        }
    }
}
