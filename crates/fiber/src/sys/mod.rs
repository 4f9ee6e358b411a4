//! Linux-specific primitives behind a thin surface: futex, stacks, signals,
//! epoll, io_uring, eventfd, membarrier, slab pages, and the descriptor and socket calls of the
//! `net` types.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod membarrier;
pub(crate) mod pages;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod uring;
