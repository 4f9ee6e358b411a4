//! Shared parts of fibrpc's command-line tools and benchmark programs: a
//! minimal flag parser ([`cli`]), latency recording and reporting for press
//! tools ([`press`]), and reading a server's CPU time and memory from
//! `/proc` ([`proc_stats`]), server child processes for smoke tests
//! ([`child`]), and the raw-epoll "floor" servers of the benchmarks
//! ([`floor`]).

pub mod child;
pub mod cli;
pub mod dynamic;
pub mod floor;
pub mod press;
pub mod proc_stats;
