// build.rs
fn main() -> std::io::Result<()> {
    fibrpc_build::compile_protos(&["proto/kv.proto"], &["proto"])
}
