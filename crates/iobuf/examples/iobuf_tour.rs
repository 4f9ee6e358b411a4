//! A short walk through IOBuf: append, share, cut, write to a pipe, read
//! back, and what `Debug` shows along the way.
//!
//! Run: `cargo run --release -p fibrpc-iobuf --example iobuf_tour`

use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use fibrpc_iobuf::{IOBuf, IOPortal};

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: two fresh descriptors that nobody else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn main() -> std::io::Result<()> {
    println!(
        "size_of::<IOBuf>() = {} bytes\n",
        std::mem::size_of::<IOBuf>()
    );

    // 1. Append: small appends copy into the thread's current 8 KiB block
    //    and merge into one reference.
    let mut req = IOBuf::new();
    req.append(b"GET /status HTTP/1.1\r\n");
    req.append(b"Host: fibrpc\r\n\r\n");
    println!("1. append two lines            -> {req:?}");

    // 2. Foreign memory goes in without a copy (a Vec here; an mmap works
    //    the same way with a deleter).
    let body = vec![b'x'; 100];
    let body_ptr = body.as_ptr();
    req.append_user_data(body);
    println!(
        "2. append_user_data(Vec)       -> {} bytes, {} refs, body not copied: {}",
        req.len(),
        req.backing_block_num(),
        req.backing_block(1).map(<[u8]>::as_ptr) == Some(body_ptr)
    );

    // 3. Share: a clone copies references, not bytes. Cutting the clone
    //    leaves the original untouched.
    let mut copy = req.clone();
    println!(
        "3. clone shares blocks         -> same block: {}",
        copy.shares_block_with(0, &req, 0)
    );

    // 4. Cut: a line protocol takes one line at a time.
    let mut line = IOBuf::new();
    while copy.cut_until(&mut line, b"\r\n") {
        if line.is_empty() {
            println!("4. cut_until(\"\\r\\n\")           -> end of headers");
            break;
        }
        println!("4. cut_until(\"\\r\\n\")           -> {line:?}");
        line.clear();
    }
    println!("   left in the clone            -> {copy:?}");
    println!("   original still intact        -> {} bytes", req.len());

    // 5. Write to a pipe with one writev (one iovec per reference) ...
    let (rd, wr) = pipe()?;
    let n = req.cut_into_fd(wr.as_fd(), usize::MAX)?;
    println!(
        "\n5. cut_into_fd(pipe)           -> wrote {n} bytes, {} left",
        req.len()
    );
    drop(wr);

    // 6. ... and read it back with one readv into fresh blocks.
    let mut portal = IOPortal::new();
    let mut total = 0;
    loop {
        let n = portal.append_from_fd(rd.as_fd(), 1 << 16)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    println!("6. append_from_fd(pipe)        -> read {total} bytes, then EOF");
    let mut head = [0u8; 4];
    portal.cut_into_slice(&mut head);
    println!(
        "   first word                   -> {:?}",
        String::from_utf8_lossy(&head)
    );
    portal.pop_back(90);
    println!("   after pop_back(90)           -> {:?}", &*portal);

    // 7. Debug escapes what is not printable and truncates long buffers.
    let mut bin = IOBuf::new();
    bin.append(&[0, 1, 2, b'\n', 0xff, b'"']);
    println!("\n7. Debug of binary bytes       -> {bin:?}");
    Ok(())
}
