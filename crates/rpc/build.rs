//! Generates fibrpc-build's multi-method test service (every form, for
//! an outside crate) for `tests/codegen.rs` and `tests/codegen_deferred.rs`,
//! which check that the generated code compiles and works. Test-only, but
//! a build script cannot tell; it is one small file.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fibrpc_build::configure()
        .out_dir(out.join("codegen_test"))
        .deferred("*")
        .compile_protos(
            &["../build/tests/protos/greeter.proto"],
            &["../build/tests/protos"],
        )
}
