//! Linux-specific primitives behind a thin surface: futex, stacks, signals.

pub(crate) mod futex;
pub(crate) mod signal;
