//! bRPC's example echo service (`proto/echo.proto`), generated at build
//! time by `fibrpc-build`: the messages, the [`EchoService`] trait and its
//! [`EchoServiceServer`] wrapper, the deferred form ([`EchoServiceDeferred`],
//! [`EchoServiceDeferredServer`]) and the [`EchoServiceClient`] stub; and
//! the streaming echo service (`proto/stream_echo.proto`:
//! [`StreamEchoService`], served over gRPC by [`StreamEchoServiceServer`]).
//!
//! fibrpc's examples, press tool, benchmarks and tests share it; it is
//! not part of fibrpc's API.

include!(concat!(env!("OUT_DIR"), "/example.rs"));
