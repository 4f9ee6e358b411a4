//! Generates `example` (bRPC's echo service, with its deferred form) for
//! fibrpc's examples and tests, and fibrpc-build's multi-method test
//! service (every form) for `tests/codegen.rs` and
//! `tests/codegen_deferred.rs`, which check that the generated code
//! compiles and works.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    // Inside fibrpc the runtime is `crate`, not `::fibrpc`.
    fibrpc_build::configure()
        .runtime_path("crate")
        .deferred("example.EchoService")
        .compile_protos(&["proto/echo.proto"], &["proto"])?;
    // Test-only, but a build script cannot tell; it is one small file.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fibrpc_build::configure()
        .out_dir(out.join("codegen_test"))
        .deferred("*")
        .compile_protos(
            &["../build/tests/protos/greeter.proto"],
            &["../build/tests/protos"],
        )
}
