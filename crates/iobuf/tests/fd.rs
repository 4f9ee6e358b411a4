//! IOBuf against real file descriptors: pipes, socketpairs and files.

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use fibrpc_iobuf::{IOBuf, IOPortal, IOV_MAX};

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i + seed) * 131 % 251) as u8).collect()
}

fn pipe(nonblock: bool) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let flags = libc::O_CLOEXEC | if nonblock { libc::O_NONBLOCK } else { 0 };
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), flags) };
    assert_eq!(r, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn socketpair(nonblock: bool) -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let ty =
        libc::SOCK_STREAM | libc::SOCK_CLOEXEC | if nonblock { libc::SOCK_NONBLOCK } else { 0 };
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn set_sndbuf(fd: RawFd, bytes: libc::c_int) {
    // SAFETY: passes a pointer to a live c_int of the advertised size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0);
}

/// A buffer of many refs of assorted sizes and kinds.
fn mixed_buf(total: usize) -> (IOBuf, Vec<u8>) {
    let data = pattern(total, 7);
    let mut b = IOBuf::new();
    let mut off = 0;
    let mut k = 0;
    while off < total {
        let n = [1, 17, 300, 4096, 9000][k % 5].min(total - off);
        if k % 2 == 0 {
            b.append(&data[off..off + n]);
        } else {
            b.append_user_data(data[off..off + n].to_vec());
        }
        off += n;
        k += 1;
    }
    (b, data)
}

#[test]
fn pipe_roundtrip_then_eof() {
    let (rd, wr) = pipe(false);
    let mut out = IOBuf::new();
    out.append(b"hello ");
    out.append_user_data(b"pipe".to_vec());
    assert_eq!(out.cut_into_fd(wr.as_fd(), usize::MAX).unwrap(), 10);
    assert!(out.is_empty());
    drop(wr);
    let mut p = IOPortal::new();
    assert_eq!(p.append_from_fd(rd.as_fd(), 1 << 20).unwrap(), 10);
    assert_eq!(*p, "hello pipe");
    assert_eq!(p.append_from_fd(rd.as_fd(), 1 << 20).unwrap(), 0, "EOF");
}

#[test]
fn empty_nonblocking_read_is_would_block() {
    let (rd, _wr) = pipe(true);
    let mut p = IOPortal::new();
    let e = p.append_from_fd(rd.as_fd(), 4096).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(p.is_empty());
}

#[test]
fn full_nonblocking_write_is_would_block_and_keeps_bytes() {
    let (_rd, wr) = pipe(true);
    let (mut b, data) = mixed_buf(1 << 20);
    let mut written = 0;
    let err = loop {
        match b.cut_into_fd(wr.as_fd(), usize::MAX) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(written > 0 && written < data.len());
    assert_eq!(b, data[written..]);
}

#[test]
fn portal_continues_in_the_tail_of_its_last_block() {
    let (rd, wr) = pipe(false);
    let mut p = IOPortal::new();
    for chunk in [&b"abc"[..], b"defg", b"h"] {
        let mut w = File::from(wr.try_clone().unwrap());
        w.write_all(chunk).unwrap();
        p.append_from_fd(rd.as_fd(), 4096).unwrap();
    }
    assert_eq!(*p, "abcdefgh");
    assert_eq!(p.backing_block_num(), 1, "three reads, one ref");
}

#[test]
fn portal_reads_respect_max() {
    let (rd, wr) = pipe(false);
    File::from(wr).write_all(&pattern(50_000, 1)).unwrap();
    let mut p = IOPortal::new();
    assert_eq!(p.append_from_fd(rd.as_fd(), 1000).unwrap(), 1000);
    let mut total = 1000;
    loop {
        let n = p.append_from_fd(rd.as_fd(), 30_000).unwrap();
        assert!(n <= 30_000);
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 50_000);
    assert_eq!(*p, pattern(50_000, 1));
}

#[test]
fn partial_writes_under_tiny_sndbuf_are_exact() {
    let (a, b) = socketpair(true);
    set_sndbuf(a.as_raw_fd(), 4096);
    let (mut out, data) = mixed_buf(3 << 20);
    let mut got = IOPortal::new();
    let mut partial = 0;
    let mut rounds = 0;
    while !out.is_empty() {
        rounds += 1;
        assert!(rounds < 1_000_000, "no progress");
        // Write until the socket is full.
        loop {
            let before = out.len();
            let offered: usize = out.slices().take(IOV_MAX).map(<[u8]>::len).sum();
            match out.cut_into_fd(a.as_fd(), usize::MAX) {
                Ok(n) => {
                    assert_eq!(out.len(), before - n);
                    if n < offered {
                        partial += 1;
                    }
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::WouldBlock);
                    assert_eq!(out.len(), before);
                    break;
                }
            }
            if out.is_empty() {
                break;
            }
        }
        // Drain what arrived.
        loop {
            match got.append_from_fd(b.as_fd(), 1 << 20) {
                Ok(0) => unreachable!("peer still open"),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        // What is still in `out` is exactly what was not received.
        assert_eq!(got.len() + out.len(), data.len());
    }
    assert!(partial > 0);
    assert!(rounds > 10, "tiny SO_SNDBUF should force many rounds");
    assert_eq!(*got, data);
}

#[test]
fn more_refs_than_iov_max_take_several_writev() {
    let (rd, wr) = pipe(true);
    let mut out = IOBuf::new();
    let mut want = Vec::new();
    for i in 0..(3 * IOV_MAX + 10) {
        // Distinct Vecs never merge: one ref each.
        let v = vec![i as u8; 3];
        want.extend_from_slice(&v);
        out.append_user_data(v);
    }
    assert_eq!(out.backing_block_num(), 3 * IOV_MAX + 10);
    let n = out.cut_into_fd(wr.as_fd(), usize::MAX).unwrap();
    assert_eq!(n, 3 * IOV_MAX, "one writev carries at most IOV_MAX refs");
    let mut calls = 1;
    while !out.is_empty() {
        out.cut_into_fd(wr.as_fd(), usize::MAX).unwrap();
        calls += 1;
    }
    assert_eq!(calls, 4);
    drop(wr);
    let mut p = IOPortal::new();
    while p.append_from_fd(rd.as_fd(), 1 << 20).unwrap() > 0 {}
    assert_eq!(*p, want);
}

#[test]
fn cut_into_fd_honours_max_inside_a_ref() {
    let (rd, wr) = pipe(true);
    let mut out = IOBuf::from(pattern(10_000, 3));
    assert_eq!(out.cut_into_fd(wr.as_fd(), 1234).unwrap(), 1234);
    assert_eq!(out, pattern(10_000, 3)[1234..]);
    let mut p = IOPortal::new();
    assert_eq!(p.append_from_fd(rd.as_fd(), 1 << 20).unwrap(), 1234);
}

#[test]
fn cut_multiple_into_fd_batches_buffers_in_order() {
    let (rd, wr) = pipe(true);
    let (mut a, da) = mixed_buf(30_000);
    let mut b = IOBuf::from(pattern(30_000, 9));
    let mut c = IOBuf::from(pattern(40_000, 5));
    let mut want = da.clone();
    want.extend_from_slice(&pattern(30_000, 9));
    want.extend_from_slice(&pattern(40_000, 5));
    let mut got = IOPortal::new();
    let mut writes = 0;
    while !(a.is_empty() && b.is_empty() && c.is_empty()) {
        match IOBuf::cut_multiple_into_fd(wr.as_fd(), &mut [&mut a, &mut b, &mut c]) {
            Ok(n) => {
                writes += 1;
                let left = a.len() + b.len() + c.len();
                assert_eq!(got.len() + n + left, want.len());
                // Buffers drain strictly front to back.
                assert!(a.is_empty() || (b.len() == 30_000 && c.len() == 40_000));
                assert!(b.is_empty() || c.len() == 40_000);
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
        }
        loop {
            match got.append_from_fd(rd.as_fd(), 1 << 20) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert!(writes >= 2, "100 KB does not fit a 64 KiB pipe at once");
    assert_eq!(*got, want);
    assert_eq!(IOBuf::cut_multiple_into_fd(wr.as_fd(), &mut []).unwrap(), 0);
}

fn temp_file(name: &str, data: &[u8]) -> (File, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("fibrpc-iobuf-{}-{name}", std::process::id()));
    std::fs::write(&path, data).unwrap();
    (File::open(&path).unwrap(), path)
}

#[test]
fn append_from_file_reads_a_range() {
    let data = pattern(100_000, 11);
    let (f, path) = temp_file("range", &data);
    let mut b = IOBuf::new();
    b.append(b"head:");
    assert_eq!(b.append_from_file(f.as_fd(), 100, 50_000).unwrap(), 50_000);
    let mut want = b"head:".to_vec();
    want.extend_from_slice(&data[100..50_100]);
    assert_eq!(b, want);
    // Past the end: stops at EOF.
    let mut c = IOBuf::new();
    assert_eq!(c.append_from_file(f.as_fd(), 99_000, 5_000).unwrap(), 1_000);
    assert_eq!(c, data[99_000..]);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn append_with_offers_one_tail_when_it_holds_half_the_read() {
    let (a, b) = socketpair(true);
    let mut p = IOPortal::new();
    let mut offers = Vec::new();
    for round in 0..3 {
        let msg = format!("GET /hello HTTP/1.1\r\nHost: x{round}\r\n\r\n");
        // SAFETY: writes `msg.len()` bytes from a live string.
        let w = unsafe { libc::write(a.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
        assert_eq!(w, msg.len() as isize);
        let n = p
            .append_with(8192, |iov| {
                offers.push(iov.len());
                let fd = b.as_raw_fd();
                // SAFETY: IoSliceMut is ABI-compatible with iovec.
                let r = unsafe { libc::readv(fd, iov.as_ptr().cast(), iov.len() as i32) };
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(r as usize)
                }
            })
            .unwrap();
        assert_eq!(n, msg.len());
        assert!(p.last_offered() >= 4096 && p.last_offered() <= 8192);
    }
    // A block's tail (under 8 KiB) alone: one buffer per read, so a socket
    // reads it with recv(2).
    assert_eq!(offers, [1, 1, 1]);
    // A read asking for more than twice a block's room still spans blocks.
    let mut q = IOPortal::new();
    let mut niov = 0;
    let _ = q.append_with(64 << 10, |iov| {
        niov = iov.len();
        Ok(0)
    });
    assert!(niov > 1, "{niov}");
    // append_from_fd keeps offering everything it may.
    let msg = b"0123456789";
    // SAFETY: writes 10 bytes from a live array.
    let w = unsafe { libc::write(a.as_raw_fd(), msg.as_ptr().cast(), 10) };
    assert_eq!(w, 10);
    assert_eq!(p.append_from_fd(b.as_fd(), 8192).unwrap(), 10);
    assert_eq!(p.last_offered(), 8192);
}
