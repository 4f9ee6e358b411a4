//! Linux-specific primitives behind a thin surface: futex, stacks, signals,
//! epoll and eventfd.

pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod futex;
pub(crate) mod signal;
