//! The console's per-object pages: one connection (`/connections/ID`),
//! the live fibers (`/fibers?list`, `/fibers/ID`) and the calls waiting
//! for answers (`/ids`), each checked against something the test made:
//! a connection whose bytes it counted, a fiber it keeps waiting, a call
//! a deferred handler keeps unanswered.

mod h2_common;
mod rpc_common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc::server::Responder;
use fibrpc::{
    Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions, Service,
};
use rpc_common::*;

struct Reply {
    status: u16,
    body: String,
}

fn get_with(addr: SocketAddr, path: &str, accept_html: bool) -> Reply {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = if accept_html {
        "Accept: text/html\r\n"
    } else {
        ""
    };
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut raw = String::new();
    c.read_to_string(&mut raw).unwrap();
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let body = raw
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    Reply { status, body }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, false)
}

/// The `name : value` pairs of a text page.
fn pairs(page: &str) -> HashMap<String, String> {
    page.lines()
        .filter_map(|l| l.split_once(" : "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The rows of the text table whose header line has `column`, as maps
/// from column name to cell (cells are split on whitespace: the columns
/// used here hold no spaces).
fn rows(page: &str, column: &str) -> Vec<HashMap<String, String>> {
    let mut lines = page
        .lines()
        .skip_while(|l| !l.split_whitespace().any(|w| w == column));
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<&str> = header.split_whitespace().collect();
    lines
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('['))
        .map(|l| {
            header
                .iter()
                .zip(l.split_whitespace())
                .map(|(h, c)| (h.to_string(), c.to_string()))
                .collect()
        })
        .collect()
}

/// Reads one baidu_std frame (12-byte header, then the body) and returns
/// its size.
fn read_frame(c: &mut TcpStream) -> usize {
    let mut head = [0u8; 12];
    c.read_exact(&mut head).unwrap();
    assert_eq!(&head[..4], b"PRPC");
    let body = u32::from_be_bytes(head[4..8].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; body];
    c.read_exact(&mut rest).unwrap();
    12 + body
}

#[test]
fn a_connection_page_shows_the_bytes_it_carried() {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let me = c.local_addr().unwrap();
    let frame = echo_frame(7, &req("count these bytes"));
    c.write_all(&frame).unwrap();
    let answered = read_frame(&mut c);

    let list = get(addr, "/connections").body;
    let row = rows(&list, "socket_id")
        .into_iter()
        .find(|r| r["remote"] == me.to_string())
        .unwrap_or_else(|| panic!("no row for {me} in\n{list}"));
    let id = row["socket_id"].clone();
    // In HTML, the row links to the connection's page.
    let html = get_with(addr, "/connections", true).body;
    assert!(
        html.contains(&format!("href=\"/connections/{id}\"")),
        "{html}"
    );

    // The write of the response is counted just after it is written: wait
    // (bounded) for the counters to settle.
    let path = format!("/connections/{id}");
    let mut page = String::new();
    let settled = wait_until(Duration::from_secs(5), || {
        page = get(addr, &path).body;
        pairs(&page).get("out_messages").map(String::as_str) == Some("1")
    });
    assert!(settled, "{page}");
    let p = pairs(&page);
    assert_eq!(p["socket_id"], id);
    assert_eq!(p["remote"], me.to_string());
    assert_eq!(p["local"], addr.to_string());
    assert_eq!(p["protocol"], "baidu_std");
    assert_eq!(p["state"], "connected");
    assert_eq!(p["side"], "accepted by this server");
    assert_eq!(p["in_bytes"], frame.len().to_string(), "{page}");
    assert_eq!(p["in_messages"], "1");
    assert_eq!(p["out_bytes"], answered.to_string(), "{page}");
    assert!(p["unwritten_bytes"].starts_with("0 "), "{page}");
    assert_eq!(p["tls"], "no");
    assert_eq!(p["authenticated as"], "-");
    assert!(p["created"].contains("GMT"), "{page}");
    assert!(p["last active"].ends_with("ago"), "{page}");
    assert!(
        page.contains("a server's connection makes no calls"),
        "{page}"
    );

    // HTML: the same page, escaped, in the console's layout.
    let html = get_with(addr, &path, true).body;
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<table class=\"kv\">"), "{html}");
    assert!(html.contains(&me.to_string()), "{html}");

    // Bad ids: clear answers.
    assert_eq!(get(addr, "/connections/notanumber").status, 400);
    assert_eq!(get(addr, "/connections/18446744073709551615").status, 404);
    let r = get_with(addr, "/connections/%3Cscript%3E", true);
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("<script>"));

    // Once the connection is gone, so is its page.
    drop(c);
    assert!(wait_until(Duration::from_secs(5), || get(addr, &path)
        .status
        == 404));
}

/// An HTTP/2 connection's page shows what the protocol keeps for it.
#[test]
fn an_h2_connection_page_shows_its_protocol_state() {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let mut c = h2_common::RawH2::connect(addr);
    c.get(1, "/health");
    assert_eq!(c.response(1).status(), 200);
    c.get(3, "/health");
    assert_eq!(c.response(3).status(), 200);
    let me = c.s.local_addr().unwrap().to_string();
    let list = get(addr, "/connections").body;
    let row = rows(&list, "socket_id")
        .into_iter()
        .find(|r| r["remote"] == me)
        .unwrap_or_else(|| panic!("no row for {me} in\n{list}"));
    assert_eq!(row["protocol"], "h2");
    let page = get(addr, &format!("/connections/{}", row["socket_id"])).body;
    assert!(page.contains("[protocol state]"), "{page}");
    let p = pairs(&page);
    assert_eq!(p["h2 last stream id"], "3", "{page}");
    assert_eq!(p["h2 GOAWAY sent"], "no", "{page}");
    assert!(p.contains_key("h2 send window"), "{page}");
}

/// A client connection of the process (a channel's) is listed too, with
/// the calls waiting on it.
#[test]
fn a_channel_connection_is_listed_with_its_side() {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let ch = Channel::new(addr, ChannelOptions::default()).unwrap();
    echo(&ch, &mut Controller::new(), &req("hi")).unwrap();
    let list = get(addr, "/connections").body;
    let row = rows(&list, "waiting_calls")
        .into_iter()
        .find(|r| r["remote"] == addr.to_string())
        .unwrap_or_else(|| panic!("the channel's connection is not listed:\n{list}"));
    assert_eq!(row["waiting_calls"], "0");
    let p = pairs(&get(addr, &format!("/connections/{}", row["socket_id"])).body);
    assert_eq!(p["side"], "made by a channel of this process");
    assert_eq!(p["remote"], addr.to_string());
    assert_eq!(p["out_messages"], "1");
}

#[test]
fn a_waiting_fiber_is_on_the_fiber_list() {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let (tx, rx) = fibrpc::fiber::sync::mpsc::channel::<()>();
    let spawn_line = line!() + 3;
    let waiter = fibrpc::fiber::Builder::new()
        .name("console-test-waiter")
        .spawn(move || {
            let _ = rx.recv();
        })
        .unwrap();
    let id = waiter.id().as_u64().to_string();
    let mut list = String::new();
    let listed = wait_until(Duration::from_secs(5), || {
        list = get(addr, "/fibers?list").body;
        rows(&list, "suspended_ms")
            .iter()
            .any(|r| r["id"] == id && r["state"] == "suspended")
    });
    assert!(listed, "fiber {id} not listed suspended:\n{list}");
    let row = rows(&list, "suspended_ms")
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap();
    assert_eq!(row["name"], "console-test-waiter");
    assert!(
        row["spawned_at"].ends_with(&format!("console_pages.rs:{spawn_line}:10")),
        "{row:?}"
    );
    assert!(row["suspended_ms"].parse::<u64>().is_ok(), "{row:?}");

    // Filtered by state.
    let suspended = get(addr, "/fibers?list&state=suspended").body;
    assert!(rows(&suspended, "suspended_ms")
        .iter()
        .any(|r| r["id"] == id));
    let running = get(addr, "/fibers?list&state=running").body;
    let running = rows(&running, "suspended_ms");
    assert!(!running.iter().any(|r| r["id"] == id));
    // The fiber serving the page runs.
    assert!(!running.is_empty());

    // Its own page.
    let page = get(addr, &format!("/fibers/{id}"));
    assert_eq!(page.status, 200);
    let p = pairs(&page.body);
    assert_eq!(p["state"], "suspended");
    assert_eq!(p["name"], "console-test-waiter");
    assert!(p["spawned at"].contains("console_pages.rs"), "{p:?}");
    // Its backtrace: held still while its stack is unwound, it names the
    // wait it is in and the closure it runs.
    let trace = page.body.split("[backtrace]").nth(1).unwrap_or_default();
    assert!(
        trace.contains("recv") && trace.contains("mpsc"),
        "{}",
        page.body
    );
    assert!(trace.contains("console_pages"), "{}", page.body);
    let html = get_with(addr, &format!("/fibers/{id}"), true).body;
    assert!(html.contains("console-test-waiter"), "{html}");
    // The index page of the fibers links to the list.
    assert!(get_with(addr, "/fibers", true)
        .body
        .contains("href=\"/fibers?list\""));

    drop(tx);
    waiter.join().unwrap();
    assert_eq!(get(addr, &format!("/fibers/{id}")).status, 404);
    assert_eq!(get(addr, "/fibers/x").status, 400);
    assert_eq!(get(addr, "/fibers?list&max=x").status, 400);
}

/// A service whose one method keeps its responder until the test lets
/// it answer.
struct Held {
    responders: Arc<Mutex<Vec<Responder>>>,
}

impl Service for Held {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        unreachable!("answered through call_method_deferred")
    }
    fn defers(&self, _: usize) -> bool {
        true
    }
    fn call_method_deferred(&self, _: usize, _: IOBuf, done: Responder) {
        self.responders.lock().unwrap().push(done);
    }
}

#[test]
fn a_call_held_by_a_deferred_handler_is_on_the_ids_page() {
    let responders = Arc::new(Mutex::new(Vec::new()));
    let mut server = Server::new(ServerOptions::default());
    server
        .add_service(Held {
            responders: responders.clone(),
        })
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let ch = Channel::new(
        addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(30)),
            ..Default::default()
        },
    )
    .unwrap();
    let caller = std::thread::spawn(move || {
        let r: Result<EchoResponse, _> =
            ch.call(SERVICE, "Echo", &mut Controller::new(), &req("held"));
        r.map(|_| ())
    });
    assert!(
        wait_until(Duration::from_secs(10), || !responders
            .lock()
            .unwrap()
            .is_empty()),
        "the handler never got the call"
    );

    let page = get(addr, "/ids").body;
    let held: Vec<_> = rows(&page, "correlation_id")
        .into_iter()
        .filter(|r| r["remote"] == addr.to_string())
        .collect();
    assert_eq!(held.len(), 1, "{page}");
    let row = &held[0];
    assert_eq!(row["state"], "sent", "{page}");
    assert_eq!(row["protocol"], "baidu_std");
    assert!(row["correlation_id"].parse::<u64>().is_ok(), "{row:?}");
    let left: u64 = row["deadline_in_ms"].parse().unwrap();
    assert!(left > 0 && left <= 30_000, "{row:?}");
    assert!(
        page.contains("1 calls waiting") || page.contains("calls waiting on"),
        "{page}"
    );

    // The connection's page lists the same call.
    let conn = get(addr, &format!("/connections/{}", row["socket_id"])).body;
    let waiting = rows(&conn, "correlation_id");
    assert_eq!(waiting.len(), 1, "{conn}");
    assert_eq!(waiting[0]["correlation_id"], row["correlation_id"]);
    // HTML links each row to its connection.
    let html = get_with(addr, "/ids", true).body;
    assert!(
        html.contains(&format!("href=\"/connections/{}\"", row["socket_id"])),
        "{html}"
    );

    // Answered, the call leaves the page.
    let done = responders.lock().unwrap().pop().unwrap();
    done.send(Ok(fibrpc::codec::encode(&EchoResponse {
        message: "held".into(),
    })));
    caller.join().unwrap().unwrap();
    let page = get(addr, "/ids").body;
    assert!(
        !rows(&page, "correlation_id")
            .iter()
            .any(|r| r["remote"] == addr.to_string()),
        "{page}"
    );
    assert_eq!(get(addr, "/ids?max=x").status, 400);
}

/// The new pages are on the index and behind the console's switch.
#[test]
fn the_pages_are_linked_and_follow_the_console_switch() {
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let index = get_with(addr, "/", true).body;
    assert!(index.contains("href=\"/ids\""), "{index}");
    assert!(index.contains("href=\"/connections\""), "{index}");
    assert!(index.contains("?list"), "{index}");

    let mut off = Server::new(ServerOptions {
        has_builtin_services: false,
        ..Default::default()
    });
    off.add_service(Echo::default()).unwrap();
    off.start("127.0.0.1:0").unwrap();
    let off_addr = off.listen_addr().unwrap();
    for path in ["/ids", "/connections/1", "/fibers?list", "/fibers/1"] {
        assert_eq!(get(off_addr, path).status, 404, "{path}");
    }
    let internal = {
        let (s, _) = start_server(ServerOptions {
            internal_port: Some(0),
            ..Default::default()
        });
        s
    };
    let public = internal.listen_addr().unwrap();
    let inside = internal.internal_listen_addr().unwrap();
    for path in ["/ids", "/fibers?list"] {
        assert_eq!(get(public, path).status, 403, "{path}");
        assert_eq!(get(inside, path).status, 200, "{path}");
    }
}
