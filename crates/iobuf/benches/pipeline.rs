//! bRPC's IOBuf benchmark pipeline, with `BytesMut` and `Vec<u8>` peers in
//! the same run.
//!
//! A file of framed messages (12-byte baidu_std-like header: "PRPC", body
//! size, meta size; then a payload of 16, 128 or 1024 bytes) is read in,
//! each message is cut (header, then payload), the header is copied out and
//! the payloads are merged into an output buffer that is written to
//! /dev/null. Throughput is in bytes of the input file.
//!
//! `python3 crates/iobuf/benches/summary.py` prints MB/s, msg/s and ratios.

#![allow(missing_docs)] // criterion_group! generates undocumented pub fns

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fibrpc_iobuf::{IOBuf, IOPortal};

const HEADER: usize = 12;
const FILE_BYTES: usize = 16 << 20;
/// Bytes asked for per read, for every implementation.
const READ_SIZE: usize = 512 << 10;

fn make_file(payload: usize) -> (File, PathBuf, usize) {
    let path = std::env::temp_dir().join(format!(
        "fibrpc-iobuf-pipeline-{}-{payload}",
        std::process::id()
    ));
    let n = FILE_BYTES / (HEADER + payload);
    let mut data = Vec::with_capacity(n * (HEADER + payload));
    for i in 0..n {
        data.extend_from_slice(b"PRPC");
        data.extend_from_slice(&(payload as u32).to_be_bytes());
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend((0..payload).map(|k| (i + k) as u8));
    }
    std::fs::write(&path, &data).unwrap();
    (File::open(&path).unwrap(), path, data.len())
}

fn body_len(h: &[u8]) -> usize {
    assert_eq!(&h[..4], b"PRPC");
    u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize
}

/// fibrpc: IOPortal readv, cut header into a slice, cut payload refs into
/// the output, writev the output.
fn run_iobuf(file: &File, out: &File) -> (usize, u64) {
    let mut portal = IOPortal::new();
    let mut outb = IOBuf::new();
    let mut head = [0u8; HEADER];
    let mut aux = [0u8; HEADER];
    let (mut off, mut msgs, mut sum) = (0u64, 0usize, 0u64);
    loop {
        let n = portal
            .append_from_file(file.as_fd(), off, READ_SIZE)
            .unwrap();
        if n == 0 {
            break;
        }
        off += n as u64;
        while let Some(h) = portal.fetch(HEADER, &mut aux) {
            let body = body_len(h);
            if portal.len() < HEADER + body {
                break;
            }
            portal.cut_into_slice(&mut head);
            sum += head[7] as u64;
            portal.cut_to(&mut outb, body);
            msgs += 1;
        }
        while !outb.is_empty() {
            outb.cut_into_fd(out, usize::MAX).unwrap();
        }
    }
    (msgs, sum)
}

/// bytes: read into a BytesMut, `split_to` header and payload, copy the
/// header, `extend_from_slice` payloads into the output, write it.
fn run_bytes(file: &File, out: &mut File) -> (usize, u64) {
    let mut inb = BytesMut::with_capacity(2 * READ_SIZE);
    let mut outb = BytesMut::with_capacity(2 * READ_SIZE);
    let mut head = [0u8; HEADER];
    let (mut off, mut msgs, mut sum) = (0u64, 0usize, 0u64);
    loop {
        inb.reserve(READ_SIZE);
        let n = {
            let spare = inb.chunk_mut();
            let len = spare.len().min(READ_SIZE);
            // SAFETY: `spare` is the BytesMut's writable spare capacity; pread
            // writes at most `len <= spare.len()` bytes into it.
            let r = unsafe {
                libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), len, off as i64)
            };
            assert!(r >= 0);
            r as usize
        };
        if n == 0 {
            break;
        }
        // SAFETY: pread initialized the first `n` bytes of the spare capacity.
        unsafe { inb.advance_mut(n) };
        off += n as u64;
        while inb.len() >= HEADER {
            let body = body_len(&inb[..HEADER]);
            if inb.len() < HEADER + body {
                break;
            }
            let h = inb.split_to(HEADER);
            head.copy_from_slice(&h);
            sum += head[7] as u64;
            let p = inb.split_to(body);
            outb.extend_from_slice(&p);
            msgs += 1;
        }
        std::io::Write::write_all(out, &outb).unwrap();
        outb.clear();
    }
    (msgs, sum)
}

/// Vec: read into a Vec window, copy header and payload out, compact.
fn run_vec(file: &File, out: &mut File) -> (usize, u64) {
    let mut inb = vec![0u8; 2 * READ_SIZE];
    let mut outb: Vec<u8> = Vec::with_capacity(2 * READ_SIZE);
    let mut head = [0u8; HEADER];
    let (mut off, mut end, mut msgs, mut sum) = (0u64, 0usize, 0usize, 0u64);
    loop {
        let n = file.read_at(&mut inb[end..end + READ_SIZE], off).unwrap();
        if n == 0 {
            break;
        }
        off += n as u64;
        end += n;
        let mut pos = 0;
        while end - pos >= HEADER {
            let body = body_len(&inb[pos..pos + HEADER]);
            if end - pos < HEADER + body {
                break;
            }
            head.copy_from_slice(&inb[pos..pos + HEADER]);
            sum += head[7] as u64;
            outb.extend_from_slice(&inb[pos + HEADER..pos + HEADER + body]);
            pos += HEADER + body;
            msgs += 1;
        }
        inb.copy_within(pos..end, 0);
        end -= pos;
        std::io::Write::write_all(out, &outb).unwrap();
        outb.clear();
    }
    (msgs, sum)
}

/// Baseline: only the reads (IOPortal readv into blocks vs pread into a
/// reused Vec), to show how much of each pipeline is the kernel's copy.
fn read_only(c: &mut Criterion) {
    let (file, path, len) = make_file(1024);
    let mut g = c.benchmark_group("read_only");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function(BenchmarkId::new("fibrpc_iobuf", "portal"), |b| {
        b.iter(|| {
            let mut portal = IOPortal::new();
            let mut off = 0u64;
            loop {
                let n = portal
                    .append_from_file(file.as_fd(), off, READ_SIZE)
                    .unwrap();
                if n == 0 {
                    break off;
                }
                off += n as u64;
                portal.clear();
            }
        })
    });
    g.bench_function(BenchmarkId::new("vec", "pread"), |b| {
        let mut inb = vec![0u8; READ_SIZE];
        b.iter(|| {
            let mut off = 0u64;
            loop {
                let n = file.read_at(&mut inb, off).unwrap();
                if n == 0 {
                    break off;
                }
                off += n as u64;
            }
        })
    });
    g.finish();
    std::fs::remove_file(path).unwrap();
}

fn pipeline(c: &mut Criterion) {
    let mut devnull = File::options().write(true).open("/dev/null").unwrap();
    for payload in [16usize, 128, 1024] {
        let (file, path, len) = make_file(payload);
        let nmsg = len / (HEADER + payload);
        // Same answer from every implementation before timing anything.
        assert_eq!(run_iobuf(&file, &devnull).0, nmsg);
        assert_eq!(run_bytes(&file, &mut devnull).0, nmsg);
        assert_eq!(run_vec(&file, &mut devnull).0, nmsg);

        let mut g = c.benchmark_group(format!("pipeline_12+{payload}"));
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(BenchmarkId::new("fibrpc_iobuf", payload), |b| {
            b.iter(|| run_iobuf(&file, &devnull))
        });
        g.bench_function(BenchmarkId::new("bytes_mut", payload), |b| {
            b.iter(|| run_bytes(&file, &mut devnull))
        });
        g.bench_function(BenchmarkId::new("vec", payload), |b| {
            b.iter(|| run_vec(&file, &mut devnull))
        });
        g.finish();
        std::fs::remove_file(path).unwrap();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(15);
    targets = pipeline, read_only
}
criterion_main!(benches);
