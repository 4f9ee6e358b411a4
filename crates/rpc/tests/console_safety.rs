//! The builtin console is safe by default: flags are read-only through it
//! unless the server allows setting them, cross-site requests never set
//! them, no value reaches a panic, and the console can be turned off or
//! moved to an internal port while the services answer as before.

mod rpc_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use fibrpc::http::{HttpContext, Request, Response, StatusCode};
use fibrpc::{Channel, ChannelOptions, Controller, IOBuf, Server, ServerOptions};
use rpc_common::*;

/// A reloadable flag of this test binary, so that the tests change
/// nothing fibrpc itself reads. Accepts 0..=100.
const KNOB: &str = "console_safety_knob";
static KNOB_VALUE: AtomicU64 = AtomicU64::new(5);
/// Held by the tests that read or set the knob (they run in parallel).
static KNOB_LOCK: Mutex<()> = Mutex::new(());

fn knob() -> std::sync::MutexGuard<'static, ()> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        fibrpc::flags::register(fibrpc::flags::Flag {
            name: KNOB,
            description: "a test knob",
            default: "5",
            get: || KNOB_VALUE.load(Ordering::Relaxed).to_string(),
            set: Some(|v| match v.parse::<u64>() {
                Ok(n) if n <= 100 => {
                    KNOB_VALUE.store(n, Ordering::Relaxed);
                    Ok(())
                }
                _ => Err("allowed: 0..=100".into()),
            }),
        })
        .unwrap();
    });
    let guard = KNOB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    KNOB_VALUE.store(5, Ordering::Relaxed);
    guard
}

fn knob_value() -> String {
    fibrpc::flags::get(KNOB).unwrap()
}

/// A status and a body.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

/// `GET path` on a fresh connection with `Host: addr` (as curl sends it)
/// and `headers`; reads until the server closes.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
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

fn writable() -> ServerOptions {
    ServerOptions {
        console_flags_writable: true,
        ..Default::default()
    }
}

fn echo_works(addr: SocketAddr) {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let ch = Channel::new(addr, options).unwrap();
    let resp = echo(&ch, &mut Controller::new(), &req("still here")).unwrap();
    assert_eq!(resp.message, "still here");
}

#[test]
fn setvalue_is_refused_by_default() {
    let _k = knob();
    let (server, _) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let r = get(addr, &format!("/flags/{KNOB}?setvalue=7"), &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("read-only"), "{r:?}");
    assert!(r.body.contains("console_flags_writable"), "{r:?}");
    assert_eq!(knob_value(), "5");
    let workers = fibrpc::flags::get("fiber_concurrency").unwrap();
    let r = get(addr, "/flags/fiber_concurrency?setvalue=100000", &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(fibrpc::flags::get("fiber_concurrency").unwrap(), workers);
    // Reading still works, and says why setting does not.
    let r = get(addr, &format!("/flags/{KNOB}"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains(KNOB) && r.body.contains("Read-only"),
        "{r:?}"
    );
}

#[test]
fn setvalue_works_when_the_server_allows_it() {
    let _k = knob();
    let (server, _) = start_server(writable());
    let addr = server.listen_addr().unwrap();
    let r = get(addr, &format!("/flags/{KNOB}?setvalue=42"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(knob_value(), "42");
    let r = get(addr, &format!("/flags/{KNOB}?setvalue=101"), &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("0..=100"), "{r:?}");
    assert_eq!(knob_value(), "42");
    let r = get(addr, "/flags/no_such_flag_here?setvalue=1", &[]);
    assert_eq!(r.status, 404, "{r:?}");
    // The console's own pages and a same-origin browser request may set.
    let here = format!("http://{addr}");
    let page = format!("{here}/flags");
    let same = [
        ("Origin", here.as_str()),
        ("Referer", page.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ];
    let r = get(addr, &format!("/flags/{KNOB}?setvalue=43"), &same);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(knob_value(), "43");
}

#[test]
fn cross_site_requests_cannot_set_flags() {
    let _k = knob();
    let (server, _) = start_server(writable());
    let addr = server.listen_addr().unwrap();
    let other_port = format!("http://127.0.0.1:{}", addr.port() + 1);
    let forged: [&[(&str, &str)]; 6] = [
        &[("Origin", "http://evil.example")],
        &[("Origin", "null")],
        &[("Origin", &other_port)],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Sec-Fetch-Site", "same-site")],
        &[("Referer", "http://evil.example/page.html")],
    ];
    for headers in forged {
        let r = get(addr, &format!("/flags/{KNOB}?setvalue=9"), headers);
        assert_eq!(r.status, 403, "{headers:?}: {r:?}");
        assert!(r.body.contains("cross-site"), "{headers:?}: {r:?}");
        assert_eq!(knob_value(), "5", "{headers:?}");
    }
}

#[test]
fn fiber_concurrency_out_of_range_is_refused_without_harm() {
    let (server, _) = start_server(writable());
    let addr = server.listen_addr().unwrap();
    let before = fibrpc::flags::get("fiber_concurrency").unwrap();
    let max = fibrpc::fiber::MAX_WORKERS;
    let below = before.parse::<usize>().unwrap() - 1;
    for bad in [
        "100000".to_string(),
        (max + 1).to_string(),
        "1025".to_string(),
        "18446744073709551616".to_string(),
        below.to_string(),
        "-1".to_string(),
        "many".to_string(),
        String::new(),
    ] {
        let r = get(
            addr,
            &format!("/flags/fiber_concurrency?setvalue={bad}"),
            &[],
        );
        assert_eq!(r.status, 400, "{bad:?}: {r:?}");
        assert!(
            r.body.contains(&format!("allowed: {before}..={max}")),
            "{bad:?}: {r:?}"
        );
        assert_eq!(fibrpc::flags::get("fiber_concurrency").unwrap(), before);
    }
    // The current count is in range (and changes nothing); the server
    // still answers.
    let r = get(
        addr,
        &format!("/flags/fiber_concurrency?setvalue={before}"),
        &[],
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get(addr, "/health", &[]).body, "OK\n");
    echo_works(addr);
}

fn hello(_: Request<IOBuf>, _: &HttpContext) -> Response<IOBuf> {
    fibrpc::http::text(StatusCode::OK, "hello\n")
}

#[test]
fn console_can_be_turned_off() {
    let mut server = Server::new(ServerOptions {
        has_builtin_services: false,
        console_flags_writable: true,
        ..Default::default()
    });
    server.add_service(Echo::default()).unwrap();
    server.add_http_handler("/hello", hello).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    for path in [
        "/",
        "/index",
        "/status",
        "/vars",
        "/connections",
        "/cluster",
        "/fibers",
        "/flags",
        "/flags/fiber_concurrency?setvalue=100000",
        "/metrics",
        "/health",
        "/version",
    ] {
        let r = get(addr, path, &[]);
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
    assert_eq!(get(addr, "/hello", &[]).body, "hello\n");
    echo_works(addr);
}

#[test]
fn internal_port_alone_serves_the_console() {
    let _k = knob();
    let (server, _) = start_server(ServerOptions {
        internal_port: Some(0),
        console_flags_writable: true,
        ..Default::default()
    });
    let public = server.listen_addr().unwrap();
    let internal = server.internal_listen_addr().unwrap();
    assert_ne!(public.port(), internal.port());
    assert_eq!(public.ip(), internal.ip());
    for path in ["/", "/status", "/vars", "/flags", "/metrics", "/health"] {
        let r = get(public, path, &[]);
        assert_eq!(r.status, 403, "public {path}: {r:?}");
        assert!(r.body.contains("internal port"), "{r:?}");
        let r = get(internal, path, &[]);
        assert_eq!(r.status, 200, "internal {path}: {r:?}");
    }
    assert!(get(internal, "/status", &[]).body.contains(SERVICE));
    let r = get(public, &format!("/flags/{KNOB}?setvalue=8"), &[]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(knob_value(), "5");
    let r = get(internal, &format!("/flags/{KNOB}?setvalue=8"), &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(knob_value(), "8");
    // The services answer on both ports.
    echo_works(public);
    echo_works(internal);
}

#[test]
fn internal_port_stops_with_the_server() {
    let (mut server, _) = start_server(ServerOptions {
        internal_port: Some(0),
        ..Default::default()
    });
    let internal = server.internal_listen_addr().unwrap();
    assert_eq!(get(internal, "/health", &[]).status, 200);
    server.stop();
    server.join();
    assert!(server.internal_listen_addr().is_none());
    assert!(TcpStream::connect(internal).is_err());
}
