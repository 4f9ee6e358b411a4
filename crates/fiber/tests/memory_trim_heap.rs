//! Heap memory comes back after a burst: fibers on every worker fill
//! 256 MiB of IOBufs (8 KiB blocks from the allocator), all held at once,
//! then drop them. The IOBuf block pools keep a few blocks per thread; the
//! rest goes back to the allocator, and the trimmer's `malloc_trim` hands
//! it to the kernel, so within 60 s the resident size is back within 20 %
//! of where it was before.
//!
//! One test per binary: it measures the whole process's RSS.

mod rss;

use fibrpc_fiber as fiber;
use fibrpc_iobuf::IOBuf;
use rss::{rss_kib, settle};
use std::time::Duration;

/// Bytes held at the peak, over all fibers.
const TOTAL: usize = 256 << 20;
/// Fibers filling buffers (spread over the workers).
const FILLERS: usize = 8;

/// Many buffers of 64 KiB each, as a server with many connections holds.
fn fill(bytes: usize) -> Vec<IOBuf> {
    let chunk = vec![0xa5u8; 64 << 10];
    (0..bytes / chunk.len())
        .map(|_| {
            let mut b = IOBuf::new();
            b.append(&chunk);
            b
        })
        .collect()
}

#[test]
fn rss_returns_after_a_burst_of_iobufs() {
    let rt = fiber::Runtime::builder()
        .workers(2)
        .memory_trim_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    rt.block_on(|| drop(fill(1 << 20)));
    std::thread::sleep(Duration::from_secs(3));
    let before = rss_kib();

    let peak = rt.block_on(|| {
        let hs: Vec<_> = (0..FILLERS)
            .map(|_| fiber::spawn(|| fill(TOTAL / FILLERS)))
            .collect();
        let bufs: Vec<Vec<IOBuf>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        let held: usize = bufs.iter().flatten().map(IOBuf::len).sum();
        assert_eq!(held, TOTAL);
        let peak = rss_kib();
        // Dropped on the fibers' workers' threads and this one alike.
        drop(bufs);
        peak
    });
    assert!(
        peak >= before + (TOTAL as u64 >> 10) / 2,
        "the burst should have made 256 MiB resident: {before} -> {peak} KiB"
    );

    let (now, bound) = settle(before, peak);
    assert!(
        now <= bound,
        "RSS still {now} KiB 60 s after the burst (before: {before} KiB, peak: {peak} KiB)"
    );
}
