//! Memory after a burst: fill 1 GiB of IOBufs (appends into 8 KiB blocks),
//! drop them, and print the resident set size before, at the peak and
//! after. Blocks go back to the allocator once the per-thread pool (8
//! blocks) is full, so the burst does not stay pinned in IOBuf's caches;
//! whether the allocator hands the pages back to the OS is its own policy
//! (glibc trims only the top of the heap), which the last two lines show.
//!
//! Run: `cargo run --release -p fibrpc-iobuf --example rss_burst`

use fibrpc_iobuf::{release_thread_cache, thread_cached_blocks, IOBuf};

/// Resident set size in MiB, from /proc/self/statm.
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
    pages * page / (1024.0 * 1024.0)
}

fn main() {
    const TOTAL: usize = 1 << 30;
    const MSG: usize = 64 << 10;
    let chunk = vec![0xa5u8; MSG];
    println!("before burst : RSS {:8.1} MiB", rss_mib());

    // Many buffers, as a server with many connections would hold.
    let mut bufs: Vec<IOBuf> = Vec::with_capacity(TOTAL / MSG);
    for _ in 0..TOTAL / MSG {
        let mut b = IOBuf::new();
        b.append(&chunk);
        bufs.push(b);
    }
    let held: usize = bufs.iter().map(IOBuf::len).sum();
    println!(
        "peak         : RSS {:8.1} MiB  ({} MiB held in {} IOBufs)",
        rss_mib(),
        held >> 20,
        bufs.len()
    );

    drop(bufs);
    println!(
        "after drop   : RSS {:8.1} MiB  (blocks cached by this thread: {})",
        rss_mib(),
        thread_cached_blocks()
    );

    // Every block is back in the allocator now (but the 8 cached ones), yet
    // RSS stays: glibc returns memory to the OS only from the top of its
    // heap, and small chunks freed into its per-thread caches (our ref
    // rings) sit there. `malloc_trim` shows the memory really is free.
    release_thread_cache();
    println!(
        "after release_thread_cache : RSS {:8.1} MiB  (cached blocks: {})",
        rss_mib(),
        thread_cached_blocks()
    );
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe { libc::malloc_trim(0) };
    println!("after malloc_trim(0)       : RSS {:8.1} MiB", rss_mib());
}
