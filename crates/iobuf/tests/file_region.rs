//! Sending a file region to a socket without copying it through user space.

use std::fs::File;
use std::io::ErrorKind;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use fibrpc_iobuf::{FileRegion, IOPortal, SendMode};

fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for two descriptors.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: fresh descriptors owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn byte_at(i: usize) -> u8 {
    (i ^ (i >> 8) ^ (i >> 16)) as u8
}

fn temp_file(name: &str, len: usize) -> (Arc<File>, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("fibrpc-iobuf-{}-{name}", std::process::id()));
    let data: Vec<u8> = (0..len).map(byte_at).collect();
    std::fs::write(&path, data).unwrap();
    (Arc::new(File::open(&path).unwrap()), path)
}

/// Sends `region` through a socketpair; the peer thread checks every byte
/// against the file's pattern starting at `offset`.
fn send_and_check(mut region: FileRegion, offset: usize) -> FileRegion {
    let len = region.len() as usize;
    let (tx, rx) = socketpair();
    let reader = std::thread::spawn(move || {
        let mut p = IOPortal::new();
        let mut seen = 0usize;
        loop {
            let n = p.append_from_fd(rx.as_fd(), 1 << 20).unwrap();
            if n == 0 {
                break;
            }
            for s in p.slices() {
                for (k, &b) in s.iter().enumerate() {
                    assert_eq!(b, byte_at(offset + seen + k), "byte {}", seen + k);
                }
                seen += s.len();
            }
            p.clear();
        }
        seen
    });
    let mut sent = 0;
    while !region.is_empty() {
        sent += region.send_to(tx.as_fd()).unwrap();
    }
    assert_eq!(region.send_to(tx.as_fd()).unwrap(), 0);
    drop(tx);
    assert_eq!(sent, len);
    assert_eq!(reader.join().unwrap(), len);
    region
}

#[test]
fn sends_64_mib_with_sendfile_and_no_copy() {
    const LEN: usize = 64 << 20;
    let (file, path) = temp_file("64m", LEN);
    let region = send_and_check(FileRegion::new(file, 0, LEN as u64), 0);
    assert_eq!(region.mode(), SendMode::Sendfile);
    assert_eq!(region.copied_bytes(), 0, "no byte went through user space");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn splice_fallback_moves_an_unaligned_range() {
    let (file, path) = temp_file("splice", 3 << 20);
    let region = send_and_check(
        FileRegion::new(file, 12_345, 2_000_001).with_mode(SendMode::Splice),
        12_345,
    );
    assert_eq!(region.mode(), SendMode::Splice);
    assert_eq!(region.copied_bytes(), 0);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn copy_fallback_counts_copied_bytes() {
    let (file, path) = temp_file("copy", 1 << 20);
    let region = send_and_check(
        FileRegion::new(file, 7, 500_000).with_mode(SendMode::Copy),
        7,
    );
    assert_eq!(region.copied_bytes(), 500_000);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn region_past_end_of_file_is_unexpected_eof() {
    let (file, path) = temp_file("short", 1000);
    let (tx, _rx) = socketpair();
    let mut region = FileRegion::new(file, 900, 500);
    assert_eq!(region.send_to(tx.as_fd()).unwrap(), 100);
    let e = region.send_to(tx.as_fd()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
    std::fs::remove_file(path).unwrap();
}
