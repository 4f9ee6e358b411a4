//! Generates the tonic client and server for `proto/echo.proto` and the
//! example's `stream_echo.proto` (gRPC's four kinds of call) with the
//! `protoc` that `protoc-bin-vendored` ships, so nothing needs installing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build runs the protoc named by PROTOC.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/echo.proto");
    println!("cargo:rerun-if-changed=../../crates/example/proto/stream_echo.proto");
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/echo.proto",
            "../../crates/example/proto/stream_echo.proto",
        ],
        &["proto", "../../crates/example/proto"],
    )?;
    Ok(())
}
