//! Console figures that must be right from the first request: the
//! `/connections` page lists the connection asking for it, and a method's
//! mean latency is not lost when its calls ended outside the sampling
//! window.

mod rpc_common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fibrpc::{Channel, ChannelOptions, Controller, ServerOptions};
use rpc_common::*;

/// Each of many fresh connections asks for `/connections` as its very
/// first request, and must find itself on the page.
#[test]
fn connections_page_lists_the_connection_asking() {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    for i in 0..60 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let me = c.local_addr().unwrap();
        c.write_all(b"GET /connections HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut page = String::new();
        c.read_to_string(&mut page).unwrap();
        assert!(
            page.contains(&me.to_string()),
            "connection #{i} from {me} is not on its own /connections page:\n{page}"
        );
    }
}

/// A call that took 300 ms counts 300 ms in the method's mean at once:
/// the all-time mean needs no sampling window, and the mean falls back to
/// it while the window has nothing.
#[test]
fn method_latency_is_known_right_after_the_call() {
    let (server, _) = start_server(ServerOptions::default());
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let ch = Channel::new(server.listen_addr().unwrap(), options).unwrap();
    let mut slow = req("slow");
    slow.sleep_ms = Some(300);
    echo(&ch, &mut Controller::new(), &slow).unwrap();
    let s = server.method_stats(SERVICE, "Echo").unwrap();
    assert_eq!(s.calls, 1);
    assert!(
        s.latency_avg_us_total >= 300_000,
        "all-time mean {} us for a 300 ms call",
        s.latency_avg_us_total
    );
    assert!(
        s.lifetime_mean_latency() >= Duration::from_millis(300),
        "{s:?}"
    );
    assert!(s.mean_latency() >= Duration::from_millis(300), "{s:?}");
}
