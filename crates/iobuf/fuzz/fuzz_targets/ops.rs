//! Fuzz target: the input is a program of IOBuf operations over three
//! buffers (which share blocks through append_buf/clone), each checked
//! against a `Vec<u8>` model after every step.

#![no_main]

use bytes::{Buf, BufMut};
use fibrpc_iobuf::{IOBuf, IOBufAppender};
use libfuzzer_sys::fuzz_target;

const NBUF: usize = 3;
/// Appends that would grow a buffer past this are skipped: appending a
/// buffer to itself doubles it, and a few dozen doublings would only
/// measure the model's memory.
const MAX_LEN: usize = 1 << 20;

/// Reads the program one field at a time; runs out gracefully.
struct Prog<'a>(&'a [u8]);

impl Prog<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn idx(&mut self) -> Option<usize> {
        Some(self.u8()? as usize % NBUF)
    }
    /// Small counts usually, block-crossing ones sometimes.
    fn len(&mut self) -> Option<usize> {
        let b = self.u8()? as usize;
        Some(if b < 200 { b } else { (b - 200) * 700 })
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.len()?;
        let seed = self.u8()?;
        Some((0..n).map(|i| seed.wrapping_add((i % 7) as u8)).collect())
    }
}

fn two(b: &mut [IOBuf; NBUF], i: usize, j: usize) -> (&mut IOBuf, &mut IOBuf) {
    if i < j {
        let (l, r) = b.split_at_mut(j);
        (&mut l[i], &mut r[0])
    } else {
        let (l, r) = b.split_at_mut(i);
        (&mut r[0], &mut l[j])
    }
}

fn step(p: &mut Prog<'_>, bufs: &mut [IOBuf; NBUF], m: &mut [Vec<u8>; NBUF]) -> Option<()> {
    if m.iter().any(|v| v.len() > MAX_LEN) {
        return None;
    }
    match p.u8()? % 14 {
        0 => {
            let (i, d) = (p.idx()?, p.bytes()?);
            bufs[i].append(&d);
            m[i].extend_from_slice(&d);
        }
        1 => {
            let (i, b) = (p.idx()?, p.u8()?);
            bufs[i].push_byte(b);
            m[i].push(b);
        }
        2 => {
            let (i, j) = (p.idx()?, p.idx()?);
            if m[i].len() + m[j].len() > MAX_LEN {
                return Some(());
            }
            let src = bufs[j].clone();
            bufs[i].append_buf(&src);
            let s = m[j].clone();
            m[i].extend_from_slice(&s);
        }
        3 => {
            let (i, d) = (p.idx()?, p.bytes()?);
            bufs[i].append_user_data(d.clone());
            m[i].extend_from_slice(&d);
        }
        4 => {
            let (i, j, n) = (p.idx()?, p.idx()?, p.len()?);
            if i != j {
                let (a, b) = two(bufs, i, j);
                let k = a.cut_to(b, n);
                assert_eq!(k, n.min(m[i].len()));
                let head: Vec<u8> = m[i].drain(..k).collect();
                m[j].extend_from_slice(&head);
            }
        }
        5 => {
            let (i, n) = (p.idx()?, p.len()?);
            let mut dst = vec![0; n];
            let k = bufs[i].cut_into_slice(&mut dst);
            assert_eq!(k, n.min(m[i].len()));
            let head: Vec<u8> = m[i].drain(..k).collect();
            assert_eq!(&dst[..k], &head[..]);
        }
        6 => {
            let (i, n) = (p.idx()?, p.len()?);
            let k = bufs[i].pop_front(n);
            m[i].drain(..k);
        }
        7 => {
            let (i, n) = (p.idx()?, p.len()?);
            let k = bufs[i].pop_back(n);
            let l = m[i].len();
            m[i].truncate(l - k);
        }
        8 => {
            let (i, j) = (p.idx()?, p.idx()?);
            let delim = [p.u8()? % 4, p.u8()? % 4];
            let dl = p.u8()? as usize % 3;
            let delim = &delim[..dl];
            if i != j {
                let (a, b) = two(bufs, i, j);
                let found = a.cut_until(b, delim);
                let pos = if delim.is_empty() {
                    Some(0)
                } else {
                    m[i].windows(dl).position(|w| w == delim)
                };
                assert_eq!(found, pos.is_some());
                if let Some(pos) = pos {
                    let head: Vec<u8> = m[i].drain(..pos).collect();
                    m[i].drain(..dl);
                    m[j].extend_from_slice(&head);
                }
            }
        }
        9 => {
            let i = p.idx()?;
            bufs[i].clear();
            m[i].clear();
        }
        10 => {
            let (i, d) = (p.idx()?, p.bytes()?);
            let mut w = IOBufAppender::new(&mut bufs[i]);
            for &b in &d {
                w.put_u8(b);
            }
            drop(w);
            m[i].extend_from_slice(&d);
        }
        11 => {
            let (i, n) = (p.idx()?, p.len()?);
            let k = n.min(m[i].len());
            let got = bufs[i].copy_to_bytes(k);
            let head: Vec<u8> = m[i].drain(..k).collect();
            assert_eq!(&got[..], &head[..]);
        }
        12 => {
            let (i, j) = (p.idx()?, p.idx()?);
            bufs[j] = bufs[i].clone();
            m[j] = m[i].clone();
        }
        _ => {
            let (i, j) = (p.idx()?, p.idx()?);
            if i != j && m[i].len() + m[j].len() <= MAX_LEN {
                let src = std::mem::take(&mut bufs[j]);
                bufs[i].append_owned(src);
                let s = std::mem::take(&mut m[j]);
                m[i].extend_from_slice(&s);
            }
        }
    }
    Some(())
}

fn check(b: &IOBuf, m: &[u8]) {
    assert_eq!(b.len(), m.len());
    assert!(*b == *m);
    let pos = m.len() / 2;
    let mut dst = [0u8; 33];
    let n = b.copy_to(&mut dst, pos);
    assert_eq!(&dst[..n], &m[pos..(pos + 33).min(m.len())]);
    let mut aux = [0u8; 20];
    let k = m.len().min(20);
    assert_eq!(b.fetch(k, &mut aux).unwrap(), &m[..k]);
    assert_eq!(b.remaining(), m.len());
}

fuzz_target!(|data: &[u8]| {
    let mut p = Prog(data);
    let mut bufs: [IOBuf; NBUF] = Default::default();
    let mut m: [Vec<u8>; NBUF] = Default::default();
    while step(&mut p, &mut bufs, &mut m).is_some() {
        for k in 0..NBUF {
            check(&bufs[k], &m[k]);
        }
    }
});
