//! Linux-specific primitives behind a thin surface: futex, stacks, signals,
//! epoll, eventfd and membarrier.

#[cfg(not(loom))]
pub(crate) mod epoll;
#[cfg(not(loom))]
pub(crate) mod eventfd;
pub(crate) mod futex;
pub(crate) mod membarrier;
pub(crate) mod signal;
