//! Shared parts of fibrpc's command-line tools: latency recording and
//! reporting for press tools ([`press`]), and reading a server's CPU time
//! and memory from `/proc` ([`proc_stats`]).

pub mod press;
pub mod proc_stats;
