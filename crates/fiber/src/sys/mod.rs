//! Linux-specific primitives behind a thin surface: futex, stacks, signals,
//! epoll, eventfd, membarrier, and the descriptor and socket calls of the
//! `net` types.

#[cfg(not(loom))]
pub(crate) mod epoll;
#[cfg(not(loom))]
pub(crate) mod eventfd;
#[cfg(not(loom))]
pub(crate) mod fd;
pub(crate) mod futex;
pub(crate) mod membarrier;
pub(crate) mod signal;
#[cfg(not(loom))]
pub(crate) mod socket;
