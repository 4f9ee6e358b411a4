//! bRPC's example echo service (`proto/echo.proto`), generated at build
//! time by `fibrpc-build`: the messages, the [`EchoService`] trait, the
//! [`EchoServiceServer`] wrapper and the [`EchoServiceClient`] stub.

include!(concat!(env!("OUT_DIR"), "/example.rs"));
