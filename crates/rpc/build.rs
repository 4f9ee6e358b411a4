//! Generates `example` (bRPC's echo service) for fibrpc's examples and tests.

fn main() -> std::io::Result<()> {
    // Inside fibrpc the runtime is `crate`, not `::fibrpc`.
    fibrpc_build::configure()
        .runtime_path("crate")
        .compile_protos(&["proto/echo.proto"], &["proto"])
}
