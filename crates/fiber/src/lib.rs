//! fibrpc-fiber: an M:N fiber runtime after bRPC's bthread.

mod sys;
pub mod timer;
