//! [`heap_profile`]: the live samples of [`SampledAllocator`](super::SampledAllocator)
//! summed by call stack, symbols resolved.

use std::collections::HashMap;

use super::heap::{installed, sample_bytes, snapshot};

/// The live heap as sampled: estimated bytes by call stack.
#[derive(Debug, Clone, Default)]
pub struct HeapProfile {
    /// The sampling rate when the profile was taken (bytes per sample).
    pub sample_bytes: u64,
    /// Estimated live bytes in all.
    pub live_bytes: u64,
    /// Live samples behind the estimate.
    pub samples: u64,
    /// One entry per distinct stack, most bytes first.
    pub stacks: Vec<HeapStack>,
}

/// The blocks allocated from one call stack that are still live.
#[derive(Debug, Clone, Default)]
pub struct HeapStack {
    /// Function names, outermost first (inlined calls included), from the
    /// thread's entry to the call into the allocator.
    pub frames: Vec<String>,
    /// Estimated live bytes.
    pub bytes: u64,
    /// Estimated live blocks.
    pub objects: u64,
    /// Samples behind the estimate (few samples: a rough estimate).
    pub samples: u64,
}

/// The live heap by call stack, or `None` when the program's global
/// allocator is not a [`SampledAllocator`](super::SampledAllocator).
/// Resolving symbols takes a while the first time (it reads the debug
/// info); the allocator keeps sampling meanwhile.
pub fn heap_profile() -> Option<HeapProfile> {
    if !installed() {
        return None;
    }
    let mut by_stack: HashMap<Box<[usize]>, (f64, f64, u64)> = HashMap::new();
    for s in snapshot() {
        let e = by_stack.entry(s.stack).or_default();
        e.0 += s.weight as f64;
        e.1 += s.weight as f64 / s.size.max(1) as f64;
        e.2 += 1;
    }
    let mut names: HashMap<usize, Vec<String>> = HashMap::new();
    let mut profile = HeapProfile {
        sample_bytes: sample_bytes(),
        ..Default::default()
    };
    for (ips, (bytes, objects, samples)) in by_stack {
        let mut frames: Vec<String> = Vec::with_capacity(ips.len());
        for &ip in ips.iter() {
            frames.extend(
                names
                    .entry(ip)
                    .or_insert_with(|| symbols(ip))
                    .iter()
                    .cloned(),
            );
        }
        cut_sampler_frames(&mut frames);
        frames.reverse();
        let bytes = bytes.round() as u64;
        profile.live_bytes += bytes;
        profile.samples += samples;
        profile.stacks.push(HeapStack {
            frames,
            bytes,
            objects: objects.round().max(1.0) as u64,
            samples,
        });
    }
    profile.stacks.sort_by_key(|s| std::cmp::Reverse(s.bytes));
    Some(profile)
}

/// Drops, from frames innermost first, the sampler's own: the unwinder,
/// the sampling and the wrapper, up to Rust's allocation shim that called
/// it (`__rust_alloc` and kin, into which the wrapper is often inlined),
/// so a stack starts at the code that allocated. Without a shim (a
/// direct call of the wrapper), up to its last frame.
fn cut_sampler_frames(frames: &mut Vec<String>) {
    let shim = |f: &String| {
        matches!(
            f.as_str(),
            "__rust_alloc" | "__rust_alloc_zeroed" | "__rust_realloc"
        ) || f.starts_with("__rg_")
            || f.starts_with("__rdl_")
    };
    let ours = |f: &String| f.contains("profile::heap") || f.contains("SampledAllocator");
    let end = match frames.iter().position(shim) {
        Some(i) => i + 1,
        None => frames.iter().rposition(ours).map_or(0, |i| i + 1),
    };
    frames.drain(..end);
}

impl HeapProfile {
    /// The profile in the "collapsed stacks" format flame graph tools
    /// read (`outer;...;inner BYTES` a line).
    pub fn collapsed(&self) -> String {
        let mut out = String::new();
        for s in &self.stacks {
            if s.bytes == 0 {
                continue;
            }
            if s.frames.is_empty() {
                out.push_str("[unknown]");
            }
            for (i, f) in s.frames.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                out.push_str(&f.replace(';', ":").replace('\n', " "));
            }
            out.push(' ');
            out.push_str(&s.bytes.to_string());
            out.push('\n');
        }
        out
    }
}

/// The function names at `ip`, innermost inlined call first.
fn symbols(ip: usize) -> Vec<String> {
    let mut out = Vec::new();
    // The return address points after the call; look up the call itself.
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |sym| {
        out.push(match sym.name() {
            Some(n) => format!("{n:#}"),
            None => format!("{ip:#x}"),
        });
    });
    if out.is_empty() {
        out.push(format!("{ip:#x}"));
    }
    out
}
