//! `/hotspots/heap` with `fibrpc::profile::SampledAllocator` as this
//! test binary's global allocator: the live heap names the function that
//! holds the memory, its estimate is near the truth, freed blocks leave
//! it, threads allocating and freeing at once keep it consistent, and the
//! page answers in text, SVG and collapsed stacks.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use fibrpc::profile::{heap_profile, HeapProfile};
use fibrpc::{Server, ServerOptions};

#[global_allocator]
static ALLOC: fibrpc::profile::SampledAllocator = fibrpc::profile::SampledAllocator::system();

/// The sampling rate is the process's: one test at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Allocates `n` blocks of `size` bytes and keeps them: the stack the
/// profile must find.
#[inline(never)]
fn retain_blocks_for_the_heap_test(n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| black_box(vec![1u8; size])).collect()
}

/// Allocates and frees blocks of varied sizes, keeping some for a while.
#[inline(never)]
fn churn_for_the_heap_test(seed: u64, rounds: usize) {
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut x = seed | 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = 1 + (x % 4096) as usize;
        let mut v = black_box(vec![0u8; size]);
        if x % 3 == 0 {
            v.resize(size * 2, 1);
        }
        kept.push(v);
        if kept.len() > 64 {
            kept.swap_remove((x % 64) as usize);
        }
    }
}

/// Live bytes the profile puts under stacks that pass through `function`.
fn bytes_under(p: &HeapProfile, function: &str) -> u64 {
    p.stacks
        .iter()
        .filter(|s| s.frames.iter().any(|f| f.contains(function)))
        .map(|s| s.bytes)
        .sum()
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, body.to_string())
}

#[test]
fn the_live_heap_names_its_holder_and_forgets_freed_blocks() {
    let _g = serial();
    assert!(fibrpc::profile::installed());
    fibrpc::flags::set("heap_profile_sample_bytes", "65536").unwrap();
    let kept = retain_blocks_for_the_heap_test(512, 64 << 10);
    let p = heap_profile().expect("the allocator is installed");
    let held = bytes_under(&p, "retain_blocks_for_the_heap_test");
    // 32 MiB held; sampled one block in about 1.6, each weighing ~100 KiB:
    // the estimate's standard deviation is under 1 MiB.
    assert!(
        (24 << 20..40 << 20).contains(&held),
        "estimated {held} bytes of 32 MiB: {:#?}",
        &p.stacks[..p.stacks.len().min(3)]
    );
    assert!(p.live_bytes >= held);
    let top = &p.stacks[0];
    assert!(
        top.frames
            .iter()
            .any(|f| f.contains("retain_blocks_for_the_heap_test")),
        "the largest stack is the holder's: {top:#?}"
    );
    assert!(
        !top.frames.iter().any(|f| f.contains("profile::heap")),
        "the sampler's own frames are cut: {top:#?}"
    );
    drop(kept);
    let p = heap_profile().unwrap();
    assert_eq!(bytes_under(&p, "retain_blocks_for_the_heap_test"), 0);
    fibrpc::flags::set("heap_profile_sample_bytes", "524288").unwrap();
}

#[test]
fn threads_allocating_and_freeing_at_once_leave_nothing_behind() {
    let _g = serial();
    // Sampling very often, so that samples, frees and reallocs of
    // sampled blocks race.
    fibrpc::profile::set_sample_bytes(512);
    let threads: Vec<_> = (0..4)
        .map(|i| std::thread::spawn(move || churn_for_the_heap_test(i + 1, 20_000)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let p = heap_profile().unwrap();
    assert_eq!(bytes_under(&p, "churn_for_the_heap_test"), 0, "all freed");
    fibrpc::profile::set_sample_bytes(512 << 10);
}

#[test]
fn the_page_answers_text_svg_and_collapsed_stacks() {
    let _g = serial();
    fibrpc::profile::set_sample_bytes(64 << 10);
    let kept = retain_blocks_for_the_heap_test(256, 64 << 10);
    let mut server = Server::new(ServerOptions::default());
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();

    let (status, body) = get(addr, "/hotspots/heap");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("live (estimated)"), "{body}");
    assert!(body.contains("retain_blocks_for_the_heap_test"), "{body}");

    let (status, body) = get(addr, "/hotspots/heap?format=svg");
    assert_eq!(status, 200);
    let svg = body.trim();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{svg:.200}"
    );
    assert!(svg.ends_with("</svg>"));
    assert!(svg.contains("retain_blocks_for_the_heap_test"));

    let (status, body) = get(addr, "/hotspots/heap?format=collapsed");
    assert_eq!(status, 200);
    let line = body
        .lines()
        .find(|l| l.contains("retain_blocks_for_the_heap_test"))
        .unwrap_or_else(|| panic!("{body}"));
    let bytes: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes > 0, "{line}");

    let (_, index) = get(addr, "/hotspots");
    assert!(
        index.contains("the live heap by allocation stack (sampled)"),
        "{index}"
    );
    drop(kept);
    fibrpc::profile::set_sample_bytes(512 << 10);
}
