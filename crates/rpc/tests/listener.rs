//! Where a server's listening socket comes from: `SO_REUSEPORT` binds
//! (`ServerOptions::reuse_port`), and a socket handed from a running server
//! to its successor (`Server::offer_listener`, `server::take_listener`,
//! `Server::start_on_listener`).

mod rpc_common;

use std::net::TcpStream;
use std::time::Duration;

use fibrpc::{Controller, Server, ServerOptions};
use rpc_common::*;

fn reuse_port() -> ServerOptions {
    ServerOptions {
        reuse_port: true,
        ..Default::default()
    }
}

#[test]
fn reuse_port_lets_servers_share_a_port() {
    let (a, _) = start_server(reuse_port());
    let addr = a.listen_addr().unwrap();
    let mut b = Server::new(reuse_port());
    b.add_service(Echo::default()).unwrap();
    b.start(addr).unwrap();
    assert_eq!(b.listen_addr(), Some(addr));
    // A listener without the option may not join them.
    let mut c = Server::new(ServerOptions::default());
    c.add_service(Echo::default()).unwrap();
    let e = c.start(addr).unwrap_err();
    assert_eq!(e.code, libc::EADDRINUSE, "{e}");
}

fn offer_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fibrpc-{name}-{}.sock", std::process::id()))
}

#[test]
fn a_taken_over_listener_serves_after_the_old_server_stops() {
    let (mut old, old_calls) = start_server(ServerOptions::default());
    let addr = old.listen_addr().unwrap();
    let path = offer_path("takeover");
    old.offer_listener(&path).unwrap();

    let taken = fibrpc::server::take_listener(&path).unwrap();
    assert_eq!(taken.local_addr().unwrap(), addr, "the same socket");
    let new_echo = Echo::default();
    let new_calls = new_echo.calls.clone();
    let mut new = Server::new(ServerOptions::default());
    new.add_service(new_echo).unwrap();
    new.start_on_listener(taken).unwrap();
    assert_eq!(new.listen_addr(), Some(addr));

    old.stop();
    old.join();
    assert!(
        !path.exists(),
        "the offer's socket file is removed at the stop"
    );
    assert_eq!(old_calls.load(std::sync::atomic::Ordering::Relaxed), 0);

    // The socket lives on in the new server: connections are accepted and
    // answered there.
    let ch = fibrpc::Channel::new(addr, Default::default()).unwrap();
    for i in 0..10 {
        let r = echo(&ch, &mut Controller::new(), &req(&format!("after {i}"))).unwrap();
        assert_eq!(r.message, format!("after {i}"));
    }
    assert_eq!(new_calls.load(std::sync::atomic::Ordering::Relaxed), 10);
}

#[test]
fn a_stopped_server_offers_nothing_and_its_port_closes() {
    let (mut server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let path = offer_path("stopped");
    server.offer_listener(&path).unwrap();
    server.stop();
    // The offer held a copy of the socket: it must not keep the port open.
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let e = fibrpc::server::take_listener(&path).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
    assert!(server.offer_listener(&path).is_err(), "stopped");
    server.join();
}
