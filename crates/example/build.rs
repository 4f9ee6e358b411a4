//! Generates bRPC's echo service (`proto/echo.proto`), with its deferred
//! form, and the streaming echo service (`proto/stream_echo.proto`, gRPC's
//! four kinds of call), as any crate using fibrpc would.

fn main() -> std::io::Result<()> {
    fibrpc_build::configure()
        .deferred("example.EchoService")
        .compile_protos(&["proto/echo.proto", "proto/stream_echo.proto"], &["proto"])
}
