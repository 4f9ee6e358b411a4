//! Generates `example` (bRPC's echo service) for fibrpc's examples and
//! tests, and fibrpc-build's multi-method test service for
//! `tests/codegen.rs`, which checks that the generated code compiles.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    // Inside fibrpc the runtime is `crate`, not `::fibrpc`.
    fibrpc_build::configure()
        .runtime_path("crate")
        .compile_protos(&["proto/echo.proto"], &["proto"])?;
    // Test-only, but a build script cannot tell; it is one small file.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fibrpc_build::configure()
        .out_dir(out.join("codegen_test"))
        .compile_protos(
            &["../build/tests/protos/greeter.proto"],
            &["../build/tests/protos"],
        )
}
