//! Foreign memory with a deleter: an mmap'ed file appended without a copy,
//! unmapped by the deleter when the last reference goes.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fibrpc_iobuf::IOBuf;

#[test]
fn mmap_is_appended_in_place_and_unmapped_by_the_deleter() {
    const LEN: usize = 100_000;
    let path = std::env::temp_dir().join(format!("fibrpc-iobuf-{}-mmap", std::process::id()));
    let data: Vec<u8> = (0..LEN).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    // SAFETY: maps a private read-only view of a file we just wrote; the
    // arguments are valid and the result is checked.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            LEN,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    let unmapped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&unmapped);
    let base = addr as usize;
    let deleter = move || {
        // SAFETY: unmaps exactly the mapping created above, once, after
        // the last reference to it is gone.
        assert_eq!(unsafe { libc::munmap(base as *mut libc::c_void, LEN) }, 0);
        flag.store(true, Ordering::SeqCst);
    };

    let mut buf = IOBuf::new();
    // SAFETY: the mapping stays valid and is never written until the
    // deleter unmaps it.
    unsafe { buf.append_user_data_raw(addr as *const u8, LEN, deleter) };
    assert_eq!(buf.backing_block(0).unwrap().as_ptr() as usize, base);
    assert_eq!(buf, data);

    let mut tail = IOBuf::new();
    buf.pop_front(10);
    let n = buf.len() - 1000;
    buf.cut_to(&mut tail, n);
    drop(buf);
    assert!(!unmapped.load(Ordering::SeqCst), "still referenced by tail");
    assert_eq!(tail, data[10..10 + n]);
    drop(tail);
    assert!(unmapped.load(Ordering::SeqCst));
    std::fs::remove_file(path).unwrap();
}
