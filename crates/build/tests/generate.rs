//! Runs the generator on `tests/protos` into a temporary directory and
//! checks the text. That the output compiles is checked by `fibrpc`'s
//! `tests/codegen.rs`, which builds `greeter.proto` too.

use std::path::Path;

const PROTOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protos");

/// Compiles `proto` (a file in `tests/protos`) and returns its error or
/// the text of `package.rs`.
fn generate(proto: &str, package: &str, runtime: Option<&str>) -> std::io::Result<String> {
    let out = tempfile::tempdir()?;
    let mut builder = fibrpc_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false);
    if let Some(rt) = runtime {
        builder = builder.runtime_path(rt);
    }
    builder.compile_protos(&[Path::new(PROTOS).join(proto)], &[PROTOS])?;
    std::fs::read_to_string(out.path().join(format!("{package}.rs")))
}

/// `text` without whitespace and trailing commas, so checks do not depend
/// on how prost's formatter breaks lines.
fn squeeze(text: &str) -> String {
    let flat: String = text.split_whitespace().collect();
    flat.replace(",)", ")")
}

fn assert_has(text: &str, want: &str) {
    assert!(
        squeeze(text).contains(&squeeze(want)),
        "missing {want:?} in:\n{text}"
    );
}

#[test]
fn two_method_service() {
    let text = generate("greeter.proto", "test.greeter", None).unwrap();
    assert_has(
        &text,
        "pub const GREETER_SERVICE_NAME: &str = \"test.greeter.Greeter\";",
    );
    assert_has(
        &text,
        "pub const GREETER_SERVICE_METHOD_NAMES: &[&str] = &[\"SayHello\", \"SayGoodbye\", \"Match\"];",
    );
    assert_has(
        &text,
        "/// Greets people.\npub trait Greeter: Send + Sync + 'static {",
    );
    // Proto comments (leading and trailing) become the method docs.
    assert_has(
        &text,
        "/// Says hello to `name`.
        fn say_hello(&self, cntl: &mut ::fibrpc::Controller, request: HelloRequest)
            -> ::core::result::Result<HelloReply, ::fibrpc::RpcError>;",
    );
    assert_has(&text, "/// Says goodbye.\nfn say_goodbye(");
    assert_has(&text, "/// Trailing comment.\nfn r#match(");
    assert_has(&text, "pub struct GreeterServer<T: Greeter>");
    assert_has(
        &text,
        "impl<T: Greeter> ::fibrpc::Service for GreeterServer<T>",
    );
    assert_has(
        &text,
        "1 => { let request = ::fibrpc::codec::decode_request::<HelloRequest>(request)?;
                let response = self.inner.say_goodbye(cntl, request)?;",
    );
    assert_has(&text, "::fibrpc::RpcError::new(::fibrpc::errno::ENOMETHOD,");
    assert_has(&text, "pub struct GreeterClient {");
    assert_has(
        &text,
        "pub fn say_hello(&self, cntl: &mut ::fibrpc::Controller, request: &HelloRequest)
            -> ::core::result::Result<HelloReply, ::fibrpc::RpcError> {
            self.channel.call(GREETER_SERVICE_NAME, \"SayHello\", cntl, request)",
    );
    // A keyword name is escaped; its callback form needs no escape.
    assert_has(&text, "pub fn r#match(");
    assert_has(&text, "pub fn match_async(");
    assert_has(
        &text,
        "self.channel.call_async(GREETER_SERVICE_NAME, \"Match\", cntl, request, done)",
    );
}

#[test]
fn runtime_path_is_configurable() {
    let text = generate("greeter.proto", "test.greeter", Some("crate::rt")).unwrap();
    assert_has(
        &text,
        "impl<T: Greeter> crate::rt::Service for GreeterServer<T>",
    );
    assert!(!text.contains("::fibrpc"), "{text}");
}

#[test]
fn streaming_is_an_error_naming_the_methods() {
    let err = generate("streaming.proto", "test.streaming", None).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(msg.contains("test.streaming.Streamer"), "{msg}");
    assert!(
        msg.contains("streaming RPCs are not supported (Many)"),
        "{msg}"
    );
}

#[test]
fn protoc_error_is_reported() {
    let err = generate("missing.proto", "missing", None).unwrap_err();
    assert!(err.to_string().contains("missing.proto"), "{err}");
}
