//! The press for any service (bRPC's `rpc_press` and `rpc_replay`):
//! requests from JSON through a `.proto` the tool was not compiled with
//! ([`descriptors`], [`input`]), or from an rpc dump; sent over
//! baidu_std or HTTP ([`target`]) in an open or a closed loop ([`run`]);
//! measured and summarized as JSON ([`stats`]).

pub mod app;
pub mod descriptors;
pub mod input;
pub mod run;
pub mod stats;
pub mod target;
