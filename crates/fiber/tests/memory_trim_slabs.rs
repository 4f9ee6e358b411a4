//! The control-block slabs give memory back after a burst: 60,000 fibers'
//! control blocks (their join handles held, so all slots are taken at
//! once) and 12,000 descriptor registrations, all gone; within 60 s the
//! resident size is back within 20 % of where it was before (the trimmer
//! releases the pages of slab segments with no live slot). Afterwards the
//! released segments serve new fibers and registrations, and ids from
//! before the release name no fiber.
//!
//! One test per binary: it measures the whole process's RSS.

mod rss;

use fiber::io::{Interest, Registration};
use fibrpc_fiber as fiber;
use rss::{rss_kib, settle};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// Fibers whose slots are taken at the peak (~19 MB of control blocks).
const FIBERS: usize = 60_000;
/// Registrations alive at the peak (~1 MB of readiness entries).
const REGISTRATIONS: usize = 12_000;

/// Raises the descriptor limit to the hard limit; returns the soft limit
/// now in force.
fn raise_fd_limit() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
    }
    r.rlim_cur
}

fn eventfd() -> RawFd {
    // SAFETY: creates a new descriptor.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
    fd
}

fn close(fd: RawFd) {
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
}

/// `fibers` fibers in the slab at once (each ends at once, its handle
/// keeps the slot) and `registrations` registrations of duplicates of one
/// eventfd; runs `at_peak` while all are held, then joins and drops them.
/// Returns a sample of the fibers' ids, the sum of their results, and
/// what `at_peak` returned.
fn burst<R>(
    fibers: usize,
    registrations: usize,
    at_peak: impl FnOnce() -> R,
) -> (Vec<fiber::FiberId>, usize, R) {
    let hs: Vec<_> = (0..fibers).map(|i| fiber::spawn(move || i)).collect();
    // A sample: a list of all 60,000 would itself be 470 KiB of the RSS.
    let ids = hs.iter().step_by(997).map(|h| h.id()).collect();
    let fd = eventfd();
    let regs: Vec<(RawFd, Registration)> = (0..registrations)
        .map(|_| {
            // SAFETY: duplicates a descriptor we own.
            let d = unsafe { libc::dup(fd) };
            assert!(d >= 0, "dup: {}", std::io::Error::last_os_error());
            (d, Registration::new(d).expect("register"))
        })
        .collect();
    let r = at_peak();
    for (d, reg) in regs {
        drop(reg);
        close(d);
    }
    close(fd);
    let sum = hs.into_iter().map(|h| h.join().unwrap()).sum();
    (ids, sum, r)
}

/// A registration made after the release still reports readiness: a
/// fiber waiting on it wakes when the eventfd is written.
fn registration_still_wakes() {
    let fd = eventfd();
    let reg = Registration::new(fd).expect("register");
    let ticket = reg.readiness(Interest::READABLE);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local buffer to our eventfd.
        let n = unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
        assert_eq!(n, 8);
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let woke = fiber::spawn(move || reg.wait(Interest::READABLE, ticket, Some(deadline)))
        .join()
        .unwrap();
    woke.expect("the readable edge wakes the waiter");
    close(fd);
}

#[test]
fn slabs_give_memory_back_after_a_burst() {
    let limit = raise_fd_limit();
    assert!(
        limit >= REGISTRATIONS as u64 + 200,
        "need {} descriptors, the hard limit allows {limit}",
        REGISTRATIONS + 200
    );
    let rt = fiber::Runtime::builder()
        .workers(2)
        .memory_trim_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    // The level to come back to: a process that has run fibers, armed a
    // timer and registered descriptors (threads, driver, timer thread,
    // first slab segments, code paged in), then a few trim intervals to
    // settle.
    let (_, _, slept) = rt.block_on(|| burst(1000, 100, || fiber::sleep(Duration::from_millis(1))));
    slept.expect("nobody interrupts the warm-up sleep");
    std::thread::sleep(Duration::from_secs(3));
    let before = rss_kib();
    println!(
        "before the burst, largest mappings:\n{}",
        rss::largest(rss::resident_mappings()).join("\n")
    );

    let (old_ids, sum, peak) = rt.block_on(|| burst(FIBERS, REGISTRATIONS, rss_kib));
    assert_eq!(sum, FIBERS * (FIBERS - 1) / 2);
    assert!(
        peak >= before + 8 * 1024,
        "the burst should have grown the slabs by over 8 MiB: {before} -> {peak} KiB"
    );

    let (now, bound) = settle(before, peak);
    assert!(
        now <= bound,
        "RSS still {now} KiB 60 s after the burst (before: {before} KiB, peak: {peak} KiB); \
         largest mappings:\n{}",
        rss::largest(rss::resident_mappings()).join("\n")
    );

    // The released segments come back for the next burst, and what named
    // a fiber before the release names none now.
    rt.block_on(move || {
        let (_, sum, ()) = burst(FIBERS, REGISTRATIONS, || {
            for id in &old_ids {
                assert!(fiber::join_id(*id).is_err(), "{id:?} ended long ago");
                assert!(fiber::interrupt(*id).is_err(), "{id:?} ended long ago");
            }
            registration_still_wakes();
        });
        assert_eq!(sum, FIBERS * (FIBERS - 1) / 2);
    });
}
