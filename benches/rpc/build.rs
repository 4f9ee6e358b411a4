//! Generates, with the `protoc` that `protoc-bin-vendored` ships (so
//! nothing needs installing): the tonic client and server (in `OUT_DIR`)
//! for `proto/echo.proto` and the example's `stream_echo.proto` (gRPC's
//! four kinds of call), and fibrpc's service and stub for `echo.proto`
//! (in `OUT_DIR/fibrpc`, for `fibrpc_grpc_server`), so both servers serve
//! the same methods.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build runs the protoc named by PROTOC.
    std::env::set_var("PROTOC", protoc);
    println!("cargo:rerun-if-changed=proto/echo.proto");
    println!("cargo:rerun-if-changed=../../crates/example/proto/stream_echo.proto");
    // The throughput press clones one chunk per message: `Bytes` makes
    // that a reference count, not a copy of up to 64 KiB.
    tonic_prost_build::configure()
        .bytes(".example.ThroughputChunk")
        .compile_protos(
            &[
                "proto/echo.proto",
                "../../crates/example/proto/stream_echo.proto",
            ],
            &["proto", "../../crates/example/proto"],
        )?;
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    fibrpc_build::configure()
        .out_dir(out.join("fibrpc"))
        .compile_protos(&["proto/echo.proto"], &["proto"])?;
    Ok(())
}
