//! The library logs through `tracing`: a connection closed for malformed
//! input is a `WARN` event naming the peer, and the `log_connection_errors`
//! flag turns those events off.
//!
//! A minimal `tracing::Subscriber`, installed as the global default (the
//! events come from the server's worker threads), records every event.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use fibrpc::{Server, ServerOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event: its level, target and fields (`message` included),
/// each field formatted with `Debug`.
#[derive(Clone, Debug)]
struct Captured {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

/// Every event recorded so far, in order.
static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

/// Records every event in [`EVENTS`]; spans get distinct ids and are
/// otherwise ignored.
struct Capture {
    next_span: AtomicU64,
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        EVENTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Captured {
                level: *event.metadata().level(),
                target: event.metadata().target().to_string(),
                fields: fields.0,
            });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Installs [`Capture`] as the process-wide subscriber (once).
fn capture() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let c = Capture {
            next_span: AtomicU64::new(1),
        };
        tracing::subscriber::set_global_default(c)
            .expect("no other global subscriber in this test binary");
    });
}

/// The events recorded so far whose `peer` field is `peer`.
fn events_from(peer: SocketAddr) -> Vec<Captured> {
    let peer = peer.to_string();
    EVENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|e| e.field("peer") == Some(peer.as_str()))
        .cloned()
        .collect()
}

/// Sends `bytes` on a fresh connection to `server`, reads until the server
/// closes it, and returns the events logged about that connection.
fn send_and_wait_for_close(server: SocketAddr, bytes: &[u8]) -> Vec<Captured> {
    let mut c = TcpStream::connect(server).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = c.local_addr().unwrap();
    c.write_all(bytes).unwrap();
    let mut rest = Vec::new();
    let start = Instant::now();
    // The server logs before it fails the connection, so once the close is
    // seen the event (if any) is recorded.
    match c.read_to_end(&mut rest) {
        Ok(_) => {}
        // A reset also says the server closed the connection.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the server did not close the connection from {me} ({e}, after {:?})",
            start.elapsed()
        ),
    }
    events_from(me)
}

// One test: `log_connection_errors` is process-wide, and the cases toggle it.
#[test]
fn malformed_input_is_logged_through_tracing_unless_the_flag_is_off() {
    capture();
    let mut server = Server::new(ServerOptions::default());
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();

    // Bytes no protocol recognises.
    let garbage = [0xffu8; 64];
    // A well-formed baidu_std frame (magic, body size 0, meta size 0)
    // whose empty meta carries no request.
    let no_request_meta = *b"PRPC\0\0\0\0\0\0\0\0";

    fibrpc::flags::set("log_connection_errors", "true").unwrap();

    let events = send_and_wait_for_close(addr, &garbage);
    let closing: Vec<_> = events
        .iter()
        .filter(|e| e.field("message") == Some("closing connection: malformed input"))
        .collect();
    assert_eq!(closing.len(), 1, "events: {events:#?}");
    let e = closing[0];
    assert_eq!(e.level, Level::WARN, "{e:#?}");
    assert!(e.target.starts_with("fibrpc"), "{e:#?}");
    assert!(
        e.field("reason")
            .is_some_and(|r| r.contains("no protocol recognises the input")),
        "{e:#?}"
    );

    let events = send_and_wait_for_close(addr, &no_request_meta);
    assert!(
        events.iter().any(|e| e.level == Level::WARN
            && e.field("message")
                .is_some_and(|m| m.contains("without a request meta"))),
        "events: {events:#?}"
    );

    // The flag off: the same connections close silently.
    fibrpc::flags::set("log_connection_errors", "false").unwrap();
    let quiet = send_and_wait_for_close(addr, &garbage);
    let quiet2 = send_and_wait_for_close(addr, &no_request_meta);
    fibrpc::flags::set("log_connection_errors", "true").unwrap();
    assert!(quiet.is_empty(), "logged with the flag off: {quiet:#?}");
    assert!(quiet2.is_empty(), "logged with the flag off: {quiet2:#?}");

    server.stop();
    server.join();
}
