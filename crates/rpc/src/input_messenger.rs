//! The InputMessenger (bRPC's `InputMessenger::OnNewMessages`): runs in the
//! socket's reader fiber whenever the connection is readable.
//!
//! It reads with an [`IOPortal`](fibrpc_iobuf::IOPortal) until `EAGAIN`,
//! asks the socket's [`InputHandler`] to cut messages (a server tries its
//! protocols, the one that matched last on this connection first), starts
//! a fiber for every message but the last and processes the last one in
//! place — a lone request costs no extra fiber, and a burst is handled in
//! parallel. A malformed frame or a frame over the body limit closes this
//! connection (with the reason logged); other connections never notice.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fibrpc_fiber::io::ReadEvents;

use crate::socket::{Cut, InputHandler, Socket};
use crate::unstarted::IfUnstarted;
use crate::{errno, RpcError};

/// The first read of a burst offers this much; reads that fill what they
/// were offered double it, up to [`MAX_READ`].
const MIN_READ: usize = 8 << 10;
const MAX_READ: usize = 512 << 10;

/// Reads and dispatches everything available on `sock`.
///
/// The last message is processed only after this fiber gave up the
/// reading role (`more_read_events` returned false, as bRPC's
/// `MoreReadEvents`): input arriving while a slow handler runs starts a new
/// reader at once, so one slow call never holds up the others on a
/// multiplexed connection.
pub(crate) fn on_readable<H: InputHandler>(
    handler: &H,
    sock: &Arc<Socket>,
    events: &ReadEvents<'_>,
) {
    let mut last: Option<H::Message> = None;
    let inline = handler.inline();
    'read: loop {
        if sock.failed() || sock.input_closed() {
            break;
        }
        let mut input = sock.input.lock().unwrap_or_else(|e| e.into_inner());
        let offer = input.read_hint.clamp(MIN_READ, MAX_READ);
        // `recv_vectored`: on the io_uring driver an operation on this
        // worker's ring, run by its next enter, not a system call.
        let fd = sock.stream().as_raw_fd();
        let read = input
            .portal
            .append_with(offer, |iov| fibrpc_fiber::io::recv_vectored(fd, iov));
        let (eof, drained) = match read {
            Ok(0) => (true, true),
            Ok(n) => {
                // Filled what it was offered (which may be less than
                // `offer`: one block's tail, see `IOPortal::append_with`):
                // offer more next time.
                let offered = input.portal.last_offered();
                input.read_hint = if n == offered { offer * 2 } else { n };
                sock.stats.on_read(n);
                // A read that got less than the portal offered emptied the
                // socket: bytes arriving later are a new edge, which
                // `more_read_events` sees, so the EAGAIN read every burst
                // would end with is skipped (tokio does the same). Not
                // after a hang-up, whose edge may be spent already: read
                // on to see the EOF.
                let short = n < offered;
                let hung_up = sock.registration().is_some_and(|r| r.read_closed());
                (false, short && !hung_up)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (false, true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                drop(input);
                sock.set_failed(RpcError::new(
                    e.raw_os_error().unwrap_or(errno::EFAILEDSOCKET),
                    format!("read from {}: {e}", sock.remote_side()),
                ));
                break;
            }
        };
        // What the protocols cut: the bytes read, or on a TLS connection
        // what they decrypt to (one branch for plaintext).
        let msgs = if sock.input_mode.load(Ordering::Acquire) == crate::socket::PLAIN {
            &mut *input.portal
        } else {
            match sock.tls_input(&mut input) {
                Ok(buf) => buf,
                Err(reason) => {
                    drop(input);
                    if crate::flags::log_connection_errors() {
                        tracing::warn!(peer = %sock.remote_side(), %reason, "closing connection");
                    }
                    sock.set_failed(RpcError::new(errno::ESSL, reason));
                    break 'read;
                }
            }
        };
        // Cut every complete message.
        loop {
            if msgs.is_empty() {
                break;
            }
            let cut = handler.cut(sock, msgs, eof);
            if let Cut::Message(_) | Cut::Consumed = &cut {
                sock.stats.on_message_in();
            }
            match cut {
                Cut::Message(msg) if inline => handler.process(sock, msg),
                Cut::Message(msg) => {
                    let ends_input = handler.ends_input(&msg);
                    if let Some(prev) = last.replace(msg) {
                        spawn_process::<H>(sock, prev);
                    }
                    if ends_input {
                        // Nothing after it is read: the connection closes
                        // once it is answered (say, a request asking to
                        // close, or a malformed one answered with an
                        // error).
                        sock.close_input();
                        break 'read;
                    }
                }
                Cut::Consumed => {}
                Cut::NeedMore => break,
                Cut::Bad(reason) => {
                    drop(input);
                    if crate::flags::log_connection_errors() {
                        tracing::warn!(
                            peer = %sock.remote_side(),
                            reason = %reason,
                            "closing connection: malformed input"
                        );
                    }
                    sock.set_failed(RpcError::new(errno::EREQUEST, reason));
                    // Messages cut before the bad one are still answered
                    // (their writes fail on the closed socket).
                    break 'read;
                }
            }
        }
        if eof {
            drop(input);
            sock.set_failed(RpcError::new(
                errno::EEOF,
                format!("{} closed the connection", sock.remote_side()),
            ));
            break;
        }
        if drained {
            // EAGAIN: any byte that arrives from now on is a new edge,
            // which `more_read_events` sees: read again only then.
            if input.portal.is_empty() {
                // An idle connection keeps no block.
                input.portal.return_cached_blocks();
            }
            drop(input);
            if !events.more_read_events() {
                break;
            }
        }
    }
    if let Some(m) = last {
        handler.process(sock, m);
    }
}

fn spawn_process<H: InputHandler>(sock: &Arc<Socket>, msg: H::Message) {
    wait_for_room(sock);
    sock.processing.fetch_add(1, Ordering::Relaxed);
    // Counted until the fiber starts: a response written meanwhile waits
    // for this one's to batch with it (see `Socket::write`).
    sock.queued_inputs.fetch_add(1, Ordering::Relaxed);
    // A message whose fiber never starts would never be answered: the
    // connection closes instead, so its peer learns at once.
    let work = IfUnstarted::new(
        (sock.clone(), msg),
        |(s, _msg): (Arc<Socket>, H::Message)| {
            s.queued_inputs.fetch_sub(1, Ordering::Relaxed);
            processed(&s);
            s.set_failed(RpcError::new(
                errno::EINTERNAL,
                "no fiber could start to process a request; closing the connection",
            ));
        },
    );
    let _ = fibrpc_fiber::Builder::new().spawn(move || {
        let (s, msg) = work.take();
        s.queued_inputs.fetch_sub(1, Ordering::Relaxed);
        // The socket's user is the handler that cut the message.
        if let Some(h) = s.user.as_any().downcast_ref::<H>() {
            h.process(&s, msg);
        }
        processed(&s);
    });
}

/// The reader, before it starts another message's fiber: waits while
/// `max_requests` messages of this connection are in process (or until
/// the connection fails). Nothing more is read meanwhile, so the sender
/// meets TCP flow control instead of the server holding a fiber for every
/// request it sends.
fn wait_for_room(sock: &Socket) {
    let max = sock.max_requests().max(2);
    sock.room
        .wait_while(sock, || sock.processing.load(Ordering::SeqCst) >= max);
}

/// A message's processing ended: lets a waiting reader go on.
fn processed(sock: &Socket) {
    sock.processing.fetch_sub(1, Ordering::SeqCst);
    sock.room.freed();
}
