//! Profiles a program opts into: a heap profile by call stack (bRPC's
//! `/hotspots/heap`, which reads tcmalloc's sampled heap).
//!
//! fibrpc installs no global allocator: the program picks its own. A
//! program that wants `/hotspots/heap` wraps its allocator in
//! [`SampledAllocator`]:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: fibrpc::profile::SampledAllocator = fibrpc::profile::SampledAllocator::system();
//! ```
//!
//! (or `SampledAllocator::new(tikv_jemallocator::Jemalloc)`, any
//! [`GlobalAlloc`](std::alloc::GlobalAlloc)). It then records the call
//! stack of one allocation every [`sample_bytes`] bytes allocated on
//! average (flag `heap_profile_sample_bytes`, default 512 KiB as
//! jemalloc's `lg_prof_sample`), and forgets it when the block is freed:
//! [`heap_profile`] is the live heap by stack, each sample weighed by the
//! bytes it stands for, and `/hotspots/heap` shows it as a table and a
//! flame graph.
//!
//! # Cost
//!
//! Not installed: nothing (this is only code the program's allocator
//! calls). Installed, an allocation pays a thread-local subtraction and a
//! branch, and a free (or realloc) a hash of the address and one relaxed
//! load from a 256 KiB table of counters; one allocation in
//! `sample_bytes / size` unwinds its stack (a few microseconds) and takes
//! a lock. A free takes that lock only when its address hashes to the
//! slot of a live sample (live samples / 65536 of frees).

mod heap;
mod heap_report;

pub use heap::{installed, sample_bytes, set_sample_bytes, SampledAllocator};
pub use heap_report::{heap_profile, HeapProfile, HeapStack};

use crate::flags::Flag;

/// The heap profile's flag, for the registry (`/flags`).
pub(crate) fn flags() -> [Flag; 1] {
    [Flag {
        name: "heap_profile_sample_bytes",
        description: "with fibrpc::profile::SampledAllocator installed: one allocation sampled \
                      per this many bytes allocated on average (0: sample nothing)",
        default: "524288",
        get: || sample_bytes().to_string(),
        set: Some(|v| {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| "allowed: a count of bytes, 0 to stop sampling".to_string())?;
            set_sample_bytes(n);
            Ok(())
        }),
    }]
}
