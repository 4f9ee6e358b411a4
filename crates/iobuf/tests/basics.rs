//! Behaviour of the IOBuf API on its own (no fds).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use fibrpc_iobuf::{IOBuf, IOBufAppender, BLOCK_DATA_SIZE, SMALL_CUT_COPY};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn size_is_at_most_40_bytes() {
    assert!(std::mem::size_of::<IOBuf>() <= 40);
}

#[test]
fn empty_buffer() {
    let b = IOBuf::new();
    assert_eq!(b.len(), 0);
    assert!(b.is_empty());
    assert_eq!(b.backing_block_num(), 0);
    assert_eq!(b, b""[..]);
    assert_eq!(b.to_vec(), Vec::<u8>::new());
}

#[test]
fn small_appends_merge_into_one_ref() {
    let mut b = IOBuf::new();
    for i in 0..100u8 {
        b.push_byte(i);
    }
    b.append(b"tail");
    assert_eq!(b.len(), 104);
    // All appends landed contiguously in the thread's block.
    assert_eq!(b.backing_block_num(), 1);
    let mut want: Vec<u8> = (0..100).collect();
    want.extend_from_slice(b"tail");
    assert_eq!(b, want);
}

#[test]
fn large_append_spans_blocks_and_goes_big_view() {
    let data = pattern(5 * BLOCK_DATA_SIZE + 17);
    let mut b = IOBuf::new();
    b.append(&data);
    assert_eq!(b.len(), data.len());
    assert!(b.backing_block_num() >= 5);
    assert_eq!(b.to_vec(), data);
    assert_eq!(b.slices().map(<[u8]>::len).sum::<usize>(), data.len());
}

#[test]
fn interleaved_buffers_do_not_merge_across_owners() {
    // Two buffers appending alternately share the thread block but each
    // keeps its own refs; neither sees the other's bytes.
    let mut a = IOBuf::new();
    let mut b = IOBuf::new();
    for _ in 0..10 {
        a.append(b"aa");
        b.append(b"b");
    }
    assert_eq!(a, "aaaaaaaaaaaaaaaaaaaa");
    assert_eq!(b, "bbbbbbbbbb");
    assert!(a.shares_block_with(0, &b, 0));
}

#[test]
fn append_after_clone_does_not_change_the_clone() {
    let mut a = IOBuf::new();
    a.append(b"hello");
    let c = a.clone();
    a.append(b" world");
    a.pop_front(1);
    assert_eq!(c, "hello");
    assert_eq!(a, "ello world");
}

#[test]
fn append_buf_shares_and_cut_moves() {
    let data = pattern(1000);
    let mut a = IOBuf::new();
    a.append(&data);
    let mut b = IOBuf::new();
    b.append_buf(&a);
    assert!(b.shares_block_with(0, &a, 0));
    let mut head = IOBuf::new();
    assert_eq!(b.cut_to(&mut head, 400), 400);
    assert_eq!(head, data[..400]);
    assert_eq!(b, data[400..]);
    assert_eq!(a, data);
    // A long cut shares the block rather than copying.
    assert!(head.shares_block_with(0, &a, 0));
    assert_eq!(b.cut_to(&mut head, 10_000), 600);
    assert!(b.is_empty());
    // The two halves of the same ref merged back into one.
    assert_eq!(head.backing_block_num(), 1);
    assert_eq!(head, data);
}

#[test]
fn short_cuts_copy_instead_of_sharing() {
    let data = pattern(20 * SMALL_CUT_COPY);
    let mut a = IOBuf::from(data.clone());
    let mut out = IOBuf::new();
    // Ten short cuts with gaps: the first, into an empty buffer, shares
    // the ref; the other nine are copied into one contiguous thread block.
    for _ in 0..10 {
        a.cut_to(&mut out, SMALL_CUT_COPY);
        a.pop_front(1);
    }
    assert_eq!(out.backing_block_num(), 2);
    assert!(out.shares_block_with(0, &a, 0));
    assert!(!out.shares_block_with(1, &a, 0));
    let want: Vec<u8> = data
        .chunks(SMALL_CUT_COPY + 1)
        .take(10)
        .flat_map(|c| c[..SMALL_CUT_COPY].to_vec())
        .collect();
    assert_eq!(out, want);
}

#[test]
fn pops_and_cut_into_slice() {
    let data = pattern(3 * BLOCK_DATA_SIZE);
    let mut b = IOBuf::from(&data[..]);
    assert_eq!(b.pop_front(10), 10);
    assert_eq!(b.pop_back(BLOCK_DATA_SIZE + 5), BLOCK_DATA_SIZE + 5);
    let mut out = vec![0u8; BLOCK_DATA_SIZE];
    assert_eq!(b.cut_into_slice(&mut out), BLOCK_DATA_SIZE);
    assert_eq!(out, data[10..10 + BLOCK_DATA_SIZE]);
    assert_eq!(
        b,
        data[10 + BLOCK_DATA_SIZE..data.len() - BLOCK_DATA_SIZE - 5]
    );
    let rest = b.len();
    assert_eq!(b.pop_back(usize::MAX), rest);
    assert!(b.is_empty());
}

#[test]
fn cut_until_for_lines() {
    let mut b = IOBuf::new();
    b.append(b"GET / HTTP/1.1\r");
    let mut split = IOBuf::new();
    split.append(b"\nHost: x\r\n\r\n");
    b.append_owned(split);
    let mut line = IOBuf::new();
    assert!(b.cut_until(&mut line, b"\r\n"));
    assert_eq!(line, "GET / HTTP/1.1");
    line.clear();
    assert!(b.cut_until(&mut line, b"\r\n"));
    assert_eq!(line, "Host: x");
    line.clear();
    assert!(b.cut_until(&mut line, b"\r\n"));
    assert!(line.is_empty());
    assert!(!b.cut_until(&mut line, b"\r\n"));
    assert!(b.is_empty());
}

#[test]
fn delimiter_spanning_refs_is_found() {
    let mut b = IOBuf::from(Vec::from(&b"abc\r"[..]));
    b.append_user_data(Bytes::from_static(b"\ndef"));
    assert_eq!(b.backing_block_num(), 2);
    assert_eq!(b.find(b"\r\n"), Some(3));
    assert_eq!(b.find(b"cd"), None);
    assert_eq!(b.find(b"c\r\nd"), Some(2));
}

#[test]
fn copy_to_and_fetch() {
    let mut b = IOBuf::new();
    b.append_user_data(b"hello ".to_vec());
    b.append_user_data(Bytes::from_static(b"world"));
    let mut dst = [0u8; 4];
    assert_eq!(b.copy_to(&mut dst, 4), 4);
    assert_eq!(&dst, b"o wo");
    assert_eq!(b.copy_to(&mut dst, 9), 2);
    assert_eq!(&dst[..2], b"ld");
    let mut aux = [0u8; 16];
    // Inside the first ref: borrowed, aux untouched.
    let v = b.fetch(3, &mut aux).unwrap();
    assert_eq!(v, b"hel");
    assert_eq!(aux, [0u8; 16]);
    // Across refs: copied.
    assert_eq!(b.fetch(8, &mut aux).unwrap(), b"hello wo");
    assert!(b.fetch(12, &mut aux).is_none());
}

#[test]
fn user_data_deleter_runs_once_when_last_ref_goes() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let flag = Arc::new(());
    let mut b = IOBuf::new();
    let data = Box::leak(vec![7u8; 1000].into_boxed_slice());
    let ptr = data.as_ptr();
    let addr = ptr as usize;
    let f2 = Arc::clone(&flag);
    let deleter = move || {
        drop(f2);
        // SAFETY: rebuilds the leaked box exactly once.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(addr as *mut u8, 1000)) });
        DROPS.fetch_add(1, Ordering::SeqCst);
    };
    // SAFETY: the leaked box stays valid and unmodified until the deleter
    // frees it.
    unsafe { b.append_user_data_raw(ptr, 1000, deleter) };
    let c = b.clone();
    let mut part = IOBuf::new();
    b.cut_to(&mut part, SMALL_CUT_COPY + 1); // long enough to share, not copy
    drop(b);
    drop(c);
    assert_eq!(DROPS.load(Ordering::SeqCst), 0);
    assert_eq!(part, vec![7u8; SMALL_CUT_COPY + 1]);
    drop(part);
    assert_eq!(DROPS.load(Ordering::SeqCst), 1);
    assert_eq!(Arc::strong_count(&flag), 1);
}

#[test]
fn from_vec_and_bytes_are_zero_copy() {
    let v = pattern(10_000);
    let p = v.as_ptr();
    let b = IOBuf::from(v);
    assert_eq!(b.backing_block(0).unwrap().as_ptr(), p);
    let bytes = Bytes::from(pattern(300));
    let p = bytes.as_ptr();
    let b = IOBuf::from(bytes);
    assert_eq!(b.backing_block(0).unwrap().as_ptr(), p);
}

#[test]
fn buf_impl_walks_chunks() {
    let mut b = IOBuf::from(pattern(100));
    b.append_user_data(pattern(50));
    let mut iov = [std::io::IoSlice::new(&[]); 4];
    assert_eq!(b.chunks_vectored(&mut iov), 2);
    assert_eq!(b.remaining(), 150);
    assert_eq!(b.chunk().len(), 100);
    b.advance(99);
    assert_eq!(b.get_u8(), pattern(100)[99]);
    assert_eq!(b.chunk(), &pattern(50)[..]);
    let x = b.copy_to_bytes(20);
    assert_eq!(x, pattern(50)[..20]);
    assert_eq!(b.remaining(), 30);
}

#[test]
fn appender_is_a_bufmut() {
    let mut b = IOBuf::new();
    b.append(b"<");
    {
        let mut w = IOBufAppender::new(&mut b);
        w.put_u32(0x0102_0304);
        w.put_slice(&pattern(3 * BLOCK_DATA_SIZE));
        w.put_u8(b'>');
        assert_eq!(w.buf().len(), 1 + 4 + 3 * BLOCK_DATA_SIZE + 1);
    }
    let mut want = b"<\x01\x02\x03\x04".to_vec();
    want.extend_from_slice(&pattern(3 * BLOCK_DATA_SIZE));
    want.push(b'>');
    assert_eq!(b, want);
    // Appending after the appender continues in a block, sharing nothing
    // that `b` already covers.
    let snapshot = b.clone();
    b.append(b"more");
    assert_eq!(snapshot, want);
}

#[test]
fn read_and_write_traits() {
    let mut b = IOBuf::new();
    write!(b, "x={} y={}", 1, 2).unwrap();
    let mut s = String::new();
    b.read_to_string(&mut s).unwrap();
    assert_eq!(s, "x=1 y=2");
    assert!(b.is_empty());
}

#[test]
fn debug_escapes_bytes() {
    let mut b = IOBuf::new();
    b.append(b"hi\n\x00\xff\"");
    assert_eq!(
        format!("{b:?}"),
        r#"IOBuf { len: 6, refs: 1, data: b"hi\n\x00\xff\"" }"#
    );
    let big = IOBuf::from(vec![b'a'; 1000]);
    let s = format!("{big:?}");
    assert!(s.ends_with("aaa...\" }"), "{s}");
}

#[test]
fn equality_between_buffers_with_different_ref_layouts() {
    let data = pattern(20_000);
    let a = IOBuf::from(&data[..]);
    let mut b = IOBuf::new();
    for c in data.chunks(777) {
        b.append_user_data(c.to_vec());
    }
    assert_eq!(a, b);
    b.pop_back(1);
    assert_ne!(a, b);
}

#[test]
fn iobuf_moves_across_threads_and_blocks_are_shared() {
    let mut a = IOBuf::new();
    a.append(&pattern(50_000));
    let copies: Vec<IOBuf> = (0..4).map(|_| a.clone()).collect();
    let handles: Vec<_> = copies
        .into_iter()
        .map(|mut c| {
            std::thread::spawn(move || {
                c.pop_front(7);
                c.append(b"thread-local tail");
                c
            })
        })
        .collect();
    for h in handles {
        let c = h.join().unwrap();
        let mut want = pattern(50_000)[7..].to_vec();
        want.extend_from_slice(b"thread-local tail");
        assert_eq!(c, want);
    }
    assert_eq!(a, pattern(50_000));
}

#[test]
fn big_view_clear_returns_to_small() {
    let mut b = IOBuf::new();
    for i in 0..50 {
        b.append_user_data(vec![i as u8; 3]);
    }
    assert_eq!(b.backing_block_num(), 50);
    b.clear();
    assert!(b.is_empty());
    b.append(b"x");
    assert_eq!(b, "x");
}

#[test]
fn append_every_short_length() {
    // Exercises each branch of the inline short copy (0..=40 bytes).
    let mut b = IOBuf::new();
    let mut want = Vec::new();
    for n in 0..=40 {
        let piece = pattern(n + 1)[1..].to_vec();
        b.append(&piece);
        want.extend_from_slice(&piece);
        assert_eq!(b, want);
    }
}
