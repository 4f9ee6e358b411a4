//! Generates bRPC's echo service (`proto/echo.proto`), with its deferred
//! form, as any crate using fibrpc would.

fn main() -> std::io::Result<()> {
    fibrpc_build::configure()
        .deferred("example.EchoService")
        .compile_protos(&["proto/echo.proto"], &["proto"])
}
