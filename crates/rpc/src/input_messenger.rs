//! The InputMessenger (bRPC's `InputMessenger::OnNewMessages`): runs in the
//! socket's reader fiber whenever the connection is readable.
//!
//! It reads with an [`IOPortal`](fibrpc_iobuf::IOPortal) until `EAGAIN`,
//! asks the protocols to cut messages (the one that matched last on this
//! connection first), starts a fiber for every message but the last and
//! processes the last one in place — a lone request costs no extra fiber,
//! and a burst is handled in parallel. A malformed frame or a frame over
//! the body limit closes this connection (with the reason logged); other
//! connections never notice.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fibrpc_fiber::io::ReadEvents;

use crate::protocol::{InputMessage, Parsed};
use crate::socket::{InputState, Socket};
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
pub(crate) fn on_readable(sock: &Arc<Socket>, events: &ReadEvents<'_>) {
    let mut last: Option<InputMessage> = None;
    let inline = sock.user.inline();
    'read: loop {
        if sock.failed() || sock.input_closed() {
            break;
        }
        let mut input = sock.input.lock().unwrap_or_else(|e| e.into_inner());
        let offer = input.read_hint.clamp(MIN_READ, MAX_READ);
        let (eof, drained) = match input.portal.append_from_fd(sock.stream(), offer) {
            Ok(0) => (true, true),
            Ok(n) => {
                input.read_hint = if n == offer { offer * 2 } else { n };
                sock.stats.on_read(n);
                // A read that got less than the portal offered emptied the
                // socket: bytes arriving later are a new edge, which
                // `more_read_events` sees, so the EAGAIN read every burst
                // would end with is skipped (tokio does the same). Not
                // after a hang-up, whose edge may be spent already: read
                // on to see the EOF.
                let short = n < input.portal.last_offered();
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
        // Cut every complete message.
        loop {
            match cut(sock, &mut input, eof) {
                Cut::Message(msg) if inline => sock.user.on_message(sock, msg),
                Cut::Message(msg) => {
                    let ends_input = msg.ends_input();
                    if let Some(prev) = last.replace(msg) {
                        spawn_process(sock, prev);
                    }
                    if ends_input {
                        // Nothing after it is read: the connection closes
                        // once it is answered (HTTP `Connection: close`,
                        // or malformed HTTP answered with 400).
                        sock.close_input();
                        break 'read;
                    }
                }
                Cut::NeedMore => break,
                Cut::Bad(reason) => {
                    drop(input);
                    if crate::flags::log_connection_errors() {
                        eprintln!(
                            "fibrpc: closing connection from {}: {reason}",
                            sock.remote_side()
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
        sock.user.on_message(sock, m);
    }
}

// Moved once per message; boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
enum Cut {
    Message(InputMessage),
    NeedMore,
    Bad(String),
}

/// Cuts one message, trying the preferred protocol first, and numbers
/// HTTP requests in their order on the connection.
fn cut(sock: &Socket, input: &mut InputState, eof: bool) -> Cut {
    let mut c = cut_any(sock, &mut input.portal, eof);
    if let Cut::Message(msg) = &mut c {
        sock.stats.on_message_in();
        if let InputMessage::HttpRequest(r) = msg {
            // The messenger runs one reader at a time: numbering
            // under the input lock follows the byte order.
            r.seq = sock.next_http_seq.load(Ordering::Relaxed);
            sock.next_http_seq.store(r.seq + 1, Ordering::Relaxed);
        }
    }
    c
}

fn cut_any(sock: &Socket, buf: &mut fibrpc_iobuf::IOBuf, eof: bool) -> Cut {
    if buf.is_empty() {
        return Cut::NeedMore;
    }
    let protocols = sock.protocols;
    let first = usize::from(sock.preferred.load(Ordering::Relaxed)).min(protocols.len() - 1);
    let order = std::iter::once(first).chain((0..protocols.len()).filter(|&i| i != first));
    for i in order {
        match protocols[i].parse(buf, sock, eof) {
            Parsed::Message(m) => {
                if i != first {
                    sock.preferred.store(i as u8, Ordering::Relaxed);
                }
                return Cut::Message(m);
            }
            Parsed::NeedMore => return Cut::NeedMore,
            Parsed::NotMine => continue,
            Parsed::Bad(why) => return Cut::Bad(format!("{}: {why}", protocols[i].name())),
        }
    }
    Cut::Bad("no protocol recognises the input".into())
}

fn spawn_process(sock: &Arc<Socket>, msg: InputMessage) {
    let s = sock.clone();
    // Counted until the fiber starts: a response written meanwhile waits
    // for this one's to batch with it (see `Socket::write`).
    sock.queued_inputs.fetch_add(1, Ordering::Relaxed);
    let spawned = fibrpc_fiber::Builder::new().spawn(move || {
        s.queued_inputs.fetch_sub(1, Ordering::Relaxed);
        s.user.on_message(&s, msg)
    });
    if let Err(e) = spawned {
        // The closure, and so its decrement, never runs.
        sock.queued_inputs.fetch_sub(1, Ordering::Relaxed);
        eprintln!("fibrpc: cannot start a fiber for a message: {e}");
    }
}
