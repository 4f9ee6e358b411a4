//! The library logs through `tracing`: a connection closed for malformed
//! input is a `WARN` event naming the peer, and the `log_connection_errors`
//! flag turns those events off.
//!
//! `tracing-subscriber`'s formatter, installed as the global default (the
//! events come from the server's worker threads), writes every event as
//! one line into memory; the test reads those lines.

mod log_capture;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use fibrpc::{Server, ServerOptions};

/// The lines logged so far that name `peer`.
fn events_from(peer: SocketAddr) -> Vec<String> {
    let peer = format!("peer={peer}");
    log_capture::logged()
        .lines()
        .filter(|l| l.contains(&peer))
        .map(str::to_string)
        .collect()
}

/// Sends `bytes` on a fresh connection to `server`, reads until the server
/// closes it, and returns the events logged about that connection.
fn send_and_wait_for_close(server: SocketAddr, bytes: &[u8]) -> Vec<String> {
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
    log_capture::capture(tracing::Level::TRACE);
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
        .filter(|l| l.contains("closing connection: malformed input"))
        .collect();
    assert_eq!(closing.len(), 1, "events: {events:#?}");
    let e = closing[0];
    assert!(e.contains(" WARN "), "{e}");
    assert!(e.contains(" fibrpc"), "the target is fibrpc's: {e}");
    assert!(e.contains("no protocol recognises the input"), "{e}");

    let events = send_and_wait_for_close(addr, &no_request_meta);
    assert!(
        events
            .iter()
            .any(|l| l.contains(" WARN ") && l.contains("without a request meta")),
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
