//! Property test: random sequences of every mutating operation, applied to
//! a few IOBufs that share blocks with each other and to `Vec<u8>` models,
//! must stay byte-identical. Sharing bugs (one buffer's mutation showing
//! through another) show up as a model mismatch on the *other* buffer.

use std::io::Read;

use bytes::{Buf, BufMut, Bytes};
use fibrpc_iobuf::{IOBuf, IOBufAppender};
use proptest::prelude::*;

const NBUF: usize = 3;
/// Appending a buffer to itself doubles it; past this size such appends
/// are skipped so a run of doublings cannot exhaust memory.
const MAX_LEN: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Op {
    Append(usize, Vec<u8>),
    PushByte(usize, u8),
    AppendBuf(usize, usize),
    AppendOwned(usize, usize),
    AppendVec(usize, Vec<u8>),
    AppendBytes(usize, Vec<u8>),
    CloneInto(usize, usize),
    CutTo(usize, usize, usize),
    SplitTo(usize, usize),
    CutIntoSlice(usize, usize),
    PopFront(usize, usize),
    PopBack(usize, usize),
    CutUntil(usize, usize, Vec<u8>),
    Clear(usize),
    Appender(usize, Vec<u8>, u32),
    Advance(usize, usize),
    CopyToBytes(usize, usize),
    Read(usize, usize),
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(0u8..4, 0..40),
        1 => proptest::collection::vec(any::<u8>(), 0..20_000),
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let i = 0..NBUF;
    let n = prop_oneof![0usize..64, 0usize..20_000];
    prop_oneof![
        (i.clone(), bytes_strategy()).prop_map(|(i, d)| Op::Append(i, d)),
        (i.clone(), any::<u8>()).prop_map(|(i, b)| Op::PushByte(i, b)),
        (i.clone(), i.clone()).prop_map(|(i, j)| Op::AppendBuf(i, j)),
        (i.clone(), i.clone()).prop_map(|(i, j)| Op::AppendOwned(i, j)),
        (i.clone(), bytes_strategy()).prop_map(|(i, d)| Op::AppendVec(i, d)),
        (i.clone(), bytes_strategy()).prop_map(|(i, d)| Op::AppendBytes(i, d)),
        (i.clone(), i.clone()).prop_map(|(i, j)| Op::CloneInto(i, j)),
        (i.clone(), i.clone(), n.clone()).prop_map(|(i, j, n)| Op::CutTo(i, j, n)),
        (i.clone(), n.clone()).prop_map(|(i, n)| Op::SplitTo(i, n)),
        (i.clone(), n.clone()).prop_map(|(i, n)| Op::CutIntoSlice(i, n)),
        (i.clone(), n.clone()).prop_map(|(i, n)| Op::PopFront(i, n)),
        (i.clone(), n.clone()).prop_map(|(i, n)| Op::PopBack(i, n)),
        (
            i.clone(),
            i.clone(),
            proptest::collection::vec(0u8..4, 0..3)
        )
            .prop_map(|(i, j, d)| Op::CutUntil(i, j, d)),
        i.clone().prop_map(Op::Clear),
        (i.clone(), bytes_strategy(), any::<u32>()).prop_map(|(i, d, s)| Op::Appender(i, d, s)),
        (i.clone(), n.clone()).prop_map(|(i, n)| Op::Advance(i, n)),
        (i.clone(), n.clone()).prop_map(|(i, n)| Op::CopyToBytes(i, n)),
        (i, n).prop_map(|(i, n)| Op::Read(i, n)),
    ]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Applies `op` to both the buffers and the models.
fn apply(bufs: &mut [IOBuf; NBUF], models: &mut [Vec<u8>; NBUF], op: &Op) {
    match op.clone() {
        Op::Append(i, d) => {
            bufs[i].append(&d);
            models[i].extend_from_slice(&d);
        }
        Op::PushByte(i, b) => {
            bufs[i].push_byte(b);
            models[i].push(b);
        }
        Op::AppendBuf(i, j) if models[i].len() + models[j].len() > MAX_LEN => {}
        Op::AppendBuf(i, j) => {
            let src = bufs[j].clone();
            bufs[i].append_buf(&src);
            let m = models[j].clone();
            models[i].extend_from_slice(&m);
        }
        Op::AppendOwned(i, j) if i != j && models[i].len() + models[j].len() <= MAX_LEN => {
            let src = std::mem::take(&mut bufs[j]);
            bufs[i].append_owned(src);
            let m = std::mem::take(&mut models[j]);
            models[i].extend_from_slice(&m);
        }
        Op::AppendOwned(..) => {}
        Op::AppendVec(i, d) => {
            bufs[i].append_user_data(d.clone());
            models[i].extend_from_slice(&d);
        }
        Op::AppendBytes(i, d) => {
            bufs[i].append_owned(IOBuf::from(Bytes::from(d.clone())));
            models[i].extend_from_slice(&d);
        }
        Op::CloneInto(i, j) => {
            bufs[j] = bufs[i].clone();
            models[j] = models[i].clone();
        }
        Op::CutTo(i, j, n) if i != j => {
            let (a, b) = two(bufs, i, j);
            let got = a.cut_to(b, n);
            let k = n.min(models[i].len());
            assert_eq!(got, k);
            let head: Vec<u8> = models[i].drain(..k).collect();
            models[j].extend_from_slice(&head);
        }
        Op::CutTo(..) => {}
        Op::SplitTo(i, n) => {
            let part = bufs[i].split_to(n);
            let k = n.min(models[i].len());
            let head: Vec<u8> = models[i].drain(..k).collect();
            assert_eq!(part, head);
        }
        Op::CutIntoSlice(i, n) => {
            let mut dst = vec![0u8; n];
            let got = bufs[i].cut_into_slice(&mut dst);
            let k = n.min(models[i].len());
            assert_eq!(got, k);
            let head: Vec<u8> = models[i].drain(..k).collect();
            assert_eq!(&dst[..k], &head[..]);
        }
        Op::PopFront(i, n) => {
            let k = n.min(models[i].len());
            assert_eq!(bufs[i].pop_front(n), k);
            models[i].drain(..k);
        }
        Op::PopBack(i, n) => {
            let k = n.min(models[i].len());
            assert_eq!(bufs[i].pop_back(n), k);
            let l = models[i].len();
            models[i].truncate(l - k);
        }
        Op::CutUntil(i, j, d) if i != j => {
            let (a, b) = two(bufs, i, j);
            let found = a.cut_until(b, &d);
            match find(&models[i], &d) {
                Some(p) => {
                    assert!(found);
                    let head: Vec<u8> = models[i].drain(..p).collect();
                    models[i].drain(..d.len());
                    models[j].extend_from_slice(&head);
                }
                None => assert!(!found),
            }
        }
        Op::CutUntil(..) => {}
        Op::Clear(i) => {
            bufs[i].clear();
            models[i].clear();
        }
        Op::Appender(i, d, split) => {
            let cut = if d.is_empty() {
                0
            } else {
                split as usize % d.len()
            };
            let mut w = IOBufAppender::new(&mut bufs[i]);
            w.put_slice(&d[..cut]);
            // Byte-wise through chunk_mut/advance_mut.
            for &b in &d[cut..] {
                w.put_u8(b);
            }
            drop(w);
            models[i].extend_from_slice(&d);
        }
        Op::Advance(i, n) => {
            let k = n.min(models[i].len());
            bufs[i].advance(k);
            models[i].drain(..k);
        }
        Op::CopyToBytes(i, n) => {
            let k = n.min(models[i].len());
            let got = bufs[i].copy_to_bytes(k);
            let head: Vec<u8> = models[i].drain(..k).collect();
            assert_eq!(&got[..], &head[..]);
        }
        Op::Read(i, n) => {
            let mut dst = vec![0u8; n];
            let got = bufs[i].read(&mut dst).unwrap();
            let k = n.min(models[i].len());
            assert_eq!(got, k);
            let head: Vec<u8> = models[i].drain(..k).collect();
            assert_eq!(&dst[..k], &head[..]);
        }
    }
}

fn two(bufs: &mut [IOBuf; NBUF], i: usize, j: usize) -> (&mut IOBuf, &mut IOBuf) {
    assert_ne!(i, j);
    if i < j {
        let (l, r) = bufs.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = bufs.split_at_mut(i);
        (&mut r[0], &mut l[j])
    }
}

/// Every observer agrees with the model.
fn check(buf: &IOBuf, model: &[u8]) {
    assert_eq!(buf.len(), model.len());
    assert_eq!(buf.is_empty(), model.is_empty());
    assert_eq!(buf.to_vec(), model);
    assert!(*buf == *model);
    assert_eq!(buf.slices().map(<[u8]>::len).sum::<usize>(), model.len());
    assert!(buf.slices().all(|s| !s.is_empty()));
    let pos = model.len() / 3;
    let mut dst = vec![0u8; 100];
    let n = buf.copy_to(&mut dst, pos);
    assert_eq!(&dst[..n], &model[pos..(pos + 100).min(model.len())]);
    let want = model.len().min(50);
    let mut aux = [0u8; 50];
    assert_eq!(buf.fetch(want, &mut aux).unwrap(), &model[..want]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn iobuf_matches_vec_model(ops in proptest::collection::vec(op_strategy(), 1..60)) {
        let mut bufs: [IOBuf; NBUF] = Default::default();
        let mut models: [Vec<u8>; NBUF] = Default::default();
        for op in &ops {
            apply(&mut bufs, &mut models, op);
            for k in 0..NBUF {
                check(&bufs[k], &models[k]);
            }
        }
    }

    #[test]
    fn shared_buffers_survive_mutation_on_another_thread(
        ops in proptest::collection::vec(op_strategy(), 1..30)
    ) {
        // Buffer 0 is cloned into a frozen snapshot that is checked from
        // another thread while this thread mutates everything else.
        let mut bufs: [IOBuf; NBUF] = Default::default();
        let mut models: [Vec<u8>; NBUF] = Default::default();
        for op in &ops[..ops.len() / 2] {
            apply(&mut bufs, &mut models, op);
        }
        let snap = bufs[0].clone();
        let snap_model = models[0].clone();
        let reader = std::thread::spawn(move || {
            for _ in 0..20 {
                check(&snap, &snap_model);
            }
        });
        for op in &ops[ops.len() / 2..] {
            apply(&mut bufs, &mut models, op);
        }
        reader.join().unwrap();
        for k in 0..NBUF {
            check(&bufs[k], &models[k]);
        }
    }
}
