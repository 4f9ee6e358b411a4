//! Append 64 B × N then cut 64 B × N: ns per operation, IOBuf vs BytesMut.

#![allow(missing_docs)] // criterion_group! generates undocumented pub fns

use bytes::{BufMut, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fibrpc_iobuf::IOBuf;

const N: usize = 1024;
const PIECE: [u8; 64] = [0x5a; 64];

fn iobuf_append_cut() -> usize {
    let mut b = IOBuf::new();
    for _ in 0..N {
        b.append(&PIECE);
    }
    let mut out = [0u8; 64];
    let mut acc = 0;
    for _ in 0..N {
        acc += b.cut_into_slice(&mut out);
    }
    acc
}

fn iobuf_append_cut_to() -> usize {
    let mut b = IOBuf::new();
    for _ in 0..N {
        b.append(&PIECE);
    }
    let mut acc = 0;
    for _ in 0..N {
        let piece = b.split_to(64);
        acc += piece.len();
    }
    acc
}

fn bytes_append_cut() -> usize {
    let mut b = BytesMut::new();
    for _ in 0..N {
        b.put_slice(&PIECE);
    }
    let mut out = [0u8; 64];
    let mut acc = 0;
    for _ in 0..N {
        let piece = b.split_to(64);
        out.copy_from_slice(&piece);
        acc += out.len();
    }
    acc
}

fn bytes_append_split() -> usize {
    let mut b = BytesMut::new();
    for _ in 0..N {
        b.put_slice(&PIECE);
    }
    let mut acc = 0;
    for _ in 0..N {
        let piece = b.split_to(64).freeze();
        acc += piece.len();
    }
    acc
}

fn append_cut(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_cut_64B");
    // Each iteration does N appends and N cuts: 2N operations.
    g.throughput(Throughput::Elements(2 * N as u64));
    g.bench_function(BenchmarkId::new("fibrpc_iobuf", "copy_out"), |b| {
        b.iter(iobuf_append_cut)
    });
    g.bench_function(BenchmarkId::new("bytes_mut", "copy_out"), |b| {
        b.iter(bytes_append_cut)
    });
    g.bench_function(BenchmarkId::new("fibrpc_iobuf", "split_to"), |b| {
        b.iter(iobuf_append_cut_to)
    });
    g.bench_function(BenchmarkId::new("bytes_mut", "split_to"), |b| {
        b.iter(bytes_append_split)
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = append_cut
}
criterion_main!(benches);
