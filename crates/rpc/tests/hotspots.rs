//! `/hotspots`: CPU and contention profiles come back as flame graph SVGs
//! that name the functions that burned the CPU or waited for a lock; one
//! profile runs at a time; `seconds` is clamped or refused; the heap page
//! says how to install the sampling allocator it needs (tests/heap_profile.rs
//! installs it); the pages keep to the console's port.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fibrpc::http::{HttpContext, Request, Response, StatusCode};
use fibrpc::{IOBuf, Server, ServerOptions};

/// Profiles are process-wide and one at a time: the tests that run one
/// take turns.
static PROFILE: Mutex<()> = Mutex::new(());

fn profile_turn() -> std::sync::MutexGuard<'static, ()> {
    PROFILE.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// `GET path` on a fresh connection; reads until the server closes.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {raw:?}"));
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// Burns the CPU for `d`: what the CPU profile must find.
#[inline(never)]
fn busy_handler_spin(d: Duration) -> u64 {
    let start = Instant::now();
    let mut x = 1u64;
    while start.elapsed() < d {
        for _ in 0..1000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

fn spin(_: Request<IOBuf>, _: &HttpContext) -> Response<IOBuf> {
    let x = busy_handler_spin(Duration::from_millis(20));
    fibrpc::http::text(StatusCode::OK, format!("{x}\n"))
}

fn start(options: ServerOptions) -> (Server, SocketAddr) {
    let mut server = Server::new(options);
    server.add_http_handler("/spin", spin).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

fn assert_svg(r: &Reply) {
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(500)]);
    assert_eq!(r.content_type, "image/svg+xml");
    let body = r.body.trim();
    assert!(
        body.starts_with("<?xml") || body.starts_with("<svg"),
        "{}",
        &body[..body.len().min(200)]
    );
    assert!(
        body.ends_with("</svg>"),
        "{}",
        &body[body.len().saturating_sub(200)..]
    );
}

#[test]
fn cpu_profile_names_the_busy_function_and_runs_one_at_a_time() {
    let _turn = profile_turn();
    let (_server, addr) = start(ServerOptions::default());
    // Load: one client calling the spinning handler back to back until the
    // profiles are in (at most 2000 calls).
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let done = done.clone();
        thread::spawn(move || {
            let mut n = 0;
            while !done.load(Ordering::Relaxed) && n < 2000 {
                assert_eq!(get(addr, "/spin", &[]).status, 200);
                n += 1;
            }
            n
        })
    };
    // Two profiles at once: the first to arrive runs for 2 s, the other is
    // turned away.
    let first = thread::spawn(move || get(addr, "/hotspots/cpu?seconds=2", &[]));
    thread::sleep(Duration::from_millis(500));
    let second = thread::spawn(move || get(addr, "/hotspots/cpu?seconds=2", &[]));
    let (a, b) = (first.join().unwrap(), second.join().unwrap());
    done.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0);
    let (ran, refused) = if a.status == 503 { (b, a) } else { (a, b) };
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.body.contains("a profile is already running"),
        "{refused:?}"
    );
    assert_svg(&ran);
    assert!(
        ran.body.contains("busy_handler_spin"),
        "the CPU flame graph does not name busy_handler_spin"
    );
    assert!(ran.body.contains("CPU, 2 s"));
}

/// Holds the lock a while, over and over, so the other fiber waits.
#[inline(never)]
fn fight_over_fiber_mutex(m: &fibrpc::fiber::sync::Mutex<u64>, until: Instant) {
    let mut rounds = 0;
    while Instant::now() < until && rounds < 100_000 {
        let mut g = m.lock();
        *g += busy_handler_spin(Duration::from_micros(200)) & 1;
        drop(g);
        rounds += 1;
        fibrpc::fiber::yield_now();
    }
}

#[test]
fn contention_profile_names_the_fibers_that_waited() {
    let _turn = profile_turn();
    let (_server, addr) = start(ServerOptions::default());
    let profile = thread::spawn(move || get(addr, "/hotspots/contention?seconds=2", &[]));
    let t0 = Instant::now();
    while !fibrpc::fiber::sync::contention::is_running() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the profile never started"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let m = Arc::new(fibrpc::fiber::sync::Mutex::new(0u64));
    let until = Instant::now() + Duration::from_millis(1500);
    let fighters: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            fibrpc::fiber::spawn(move || fight_over_fiber_mutex(&m, until))
        })
        .collect();
    for f in fighters {
        f.join().unwrap();
    }
    let r = profile.join().unwrap();
    assert_svg(&r);
    assert!(
        r.body.contains("fight_over_fiber_mutex"),
        "the contention flame graph does not name fight_over_fiber_mutex: {}",
        &r.body[..r.body.len().min(800)]
    );
    assert!(r.body.contains("lock_slow"));
    assert!(!fibrpc::fiber::sync::contention::is_running());
}

#[test]
fn seconds_is_clamped_or_refused() {
    let _turn = profile_turn();
    let (_server, addr) = start(ServerOptions::default());
    for bad in ["abc", "-1", "1.5", ""] {
        let r = get(addr, &format!("/hotspots/cpu?seconds={bad}"), &[]);
        assert_eq!(r.status, 400, "seconds={bad}: {r:?}");
        assert!(r.body.contains("whole number"), "{r:?}");
    }
    // 0 is clamped to 1 s (the graph's title, or the empty graph's text,
    // says how long it ran).
    let r = get(addr, "/hotspots/contention?seconds=0", &[]);
    assert_svg(&r);
    assert!(r.body.contains("contention, 1 s"), "{}", r.body);
    // A browser gets the console page, with the clamped length in the
    // graph's address; nothing is profiled until the graph loads.
    let html = [("Accept", "text/html")];
    let r = get(addr, "/hotspots/cpu?seconds=100000", &html);
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"), "{r:?}");
    assert!(
        r.body
            .contains("data=\"/hotspots/cpu?seconds=60&amp;format=svg\""),
        "{}",
        r.body
    );
}

#[test]
fn index_heap_and_unknown_pages() {
    let (_server, addr) = start(ServerOptions::default());
    let r = get(addr, "/hotspots", &[("Accept", "text/html")]);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("href=\"/hotspots/cpu?seconds=10\""),
        "{}",
        r.body
    );
    assert!(r.body.contains("href=\"/hotspots/contention?seconds=10\""));
    let r = get(addr, "/", &[]);
    assert!(r.body.contains("/hotspots"), "{}", r.body);
    let r = get(addr, "/hotspots/heap", &[]);
    assert_eq!(r.status, 501, "{r:?}");
    // This binary's allocator samples nothing: the page says how to
    // install one that does.
    assert!(
        r.body.contains("#[global_allocator]")
            && r.body
                .contains("fibrpc::profile::SampledAllocator::system()"),
        "{r:?}"
    );
    let r = get(addr, "/hotspots/nosuch", &[]);
    assert_eq!(r.status, 404, "{r:?}");
}

#[test]
fn hotspots_keep_to_the_internal_port() {
    let internal = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (_server, addr) = start(ServerOptions {
        internal_port: Some(internal),
        ..Default::default()
    });
    for path in [
        "/hotspots",
        "/hotspots/cpu?seconds=1",
        "/hotspots/contention",
    ] {
        let r = get(addr, path, &[]);
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    let r = get(
        SocketAddr::from(([127, 0, 0, 1], internal)),
        "/hotspots/heap",
        &[],
    );
    assert_eq!(r.status, 501, "{r:?}");
}
