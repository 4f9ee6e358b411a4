//! `writev` of a 1 MiB IOBuf made of 4 KiB refs into a socketpair, against
//! `write` of a contiguous `Vec`. A reader thread drains the other end.

#![allow(missing_docs)] // criterion_group! generates undocumented pub fns

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fibrpc_iobuf::IOBuf;

const TOTAL: usize = 1 << 20;
const REF: usize = 4096;

fn socketpair() -> (UnixStream, UnixStream) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (UnixStream::from(a), UnixStream::from(b))
}

fn writev(c: &mut Criterion) {
    let (tx, mut rx) = socketpair();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        while rx.read(&mut buf).unwrap() > 0 {}
    });
    // 256 distinct 4 KiB refs (user blocks, so they cannot merge).
    let mut template = IOBuf::new();
    for i in 0..TOTAL / REF {
        template.append_user_data(vec![i as u8; REF]);
    }
    assert_eq!(template.backing_block_num(), TOTAL / REF);
    let flat = template.to_vec();
    let fd = tx.as_raw_fd();

    let mut g = c.benchmark_group("writev_1MiB_4KiB_refs");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function(BenchmarkId::new("fibrpc_iobuf", "writev"), |b| {
        b.iter(|| {
            let mut buf = template.clone();
            while !buf.is_empty() {
                buf.cut_into_fd(&tx, usize::MAX).unwrap();
            }
        })
    });
    g.bench_function(BenchmarkId::new("vec", "write"), |b| {
        b.iter(|| {
            let mut s = &flat[..];
            while !s.is_empty() {
                // SAFETY: `s` is readable for its length.
                let n = unsafe { libc::write(fd, s.as_ptr().cast(), s.len()) };
                assert!(n > 0);
                s = &s[n as usize..];
            }
        })
    });
    g.finish();
    drop(tx);
    reader.join().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = writev
}
criterion_main!(benches);
