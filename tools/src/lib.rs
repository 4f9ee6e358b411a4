//! Shared parts of fibrpc's command-line tools and benchmark programs: a
//! minimal flag parser ([`cli`]), latency recording and reporting for press
//! tools ([`press`]), and reading a server's CPU time and memory from
//! `/proc` ([`proc_stats`]), and server child processes for smoke tests
//! ([`child`]).

pub mod child;
pub mod cli;
pub mod press;
pub mod proc_stats;
