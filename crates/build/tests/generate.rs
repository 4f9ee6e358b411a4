//! Runs the generator on `tests/protos` into a temporary directory and
//! checks the text. That the output compiles is checked by `fibrpc`'s
//! `tests/codegen.rs`, which builds `greeter.proto` too.

use std::path::Path;

const PROTOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protos");

/// Compiles `proto` (a file in `tests/protos`) and returns its error or
/// the text of `package.rs`.
fn generate(proto: &str, package: &str, runtime: Option<&str>) -> std::io::Result<String> {
    generate_with(proto, package, |builder| match runtime {
        Some(rt) => builder.runtime_path(rt),
        None => builder,
    })
}

/// [`generate`] with the builder adjusted by `configure`.
fn generate_with(
    proto: &str,
    package: &str,
    configure: impl FnOnce(fibrpc_build::Builder) -> fibrpc_build::Builder,
) -> std::io::Result<String> {
    let out = tempfile::tempdir()?;
    let builder = fibrpc_build::configure()
        .out_dir(out.path())
        .emit_rerun_if_changed(false);
    configure(builder).compile_protos(&[Path::new(PROTOS).join(proto)], &[PROTOS])?;
    std::fs::read_to_string(out.path().join(format!("{package}.rs")))
}

/// `text` without whitespace and trailing commas, so checks do not depend
/// on how prost's formatter breaks lines.
fn squeeze(text: &str) -> String {
    let flat: String = text.split_whitespace().collect();
    flat.replace(",)", ")").replace(",>", ">")
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
    assert_has(&text, "pub struct GreeterClient<C = ::fibrpc::Channel> {");
    assert_has(&text, "impl<C: ::fibrpc::RpcChannel> GreeterClient<C> {");
    assert_has(
        &text,
        "pub fn say_hello(&self, cntl: &mut ::fibrpc::Controller, request: &HelloRequest)
            -> ::core::result::Result<HelloReply, ::fibrpc::RpcError> {
            ::fibrpc::RpcChannel::call(&self.channel, GREETER_SERVICE_NAME, \"SayHello\", cntl, request)",
    );
    // A keyword name is escaped; its callback form needs no escape.
    assert_has(&text, "pub fn r#match(");
    assert_has(&text, "pub fn match_async(");
    assert_has(
        &text,
        "::fibrpc::RpcChannel::call_async(&self.channel, GREETER_SERVICE_NAME, \"Match\", cntl, request, done)",
    );
    // The `Future` form, likewise unescaped.
    assert_has(
        &text,
        "pub fn match_future(&self, cntl: ::fibrpc::Controller, request: &HelloRequest)
            -> impl ::core::future::Future<Output = (::fibrpc::Controller,
                ::core::result::Result<HelloReply, ::fibrpc::RpcError>)>
            + ::core::marker::Send + 'static {
            ::fibrpc::RpcChannel::call_future(&self.channel, GREETER_SERVICE_NAME, \"Match\", cntl, request)",
    );
    assert_has(&text, "pub fn say_hello_future(");
    // The form without a controller, likewise unescaped.
    assert_has(
        &text,
        "pub fn match_simple(&self, request: &HelloRequest)
            -> ::core::result::Result<HelloReply, ::fibrpc::RpcError> {
            ::fibrpc::RpcChannel::call(&self.channel, GREETER_SERVICE_NAME, \"Match\", &mut ::fibrpc::Controller::new(), request)",
    );
    assert_has(&text, "pub fn say_hello_simple(");
    // No deferred form unless asked for.
    assert!(!text.contains("Deferred"), "{text}");
}

#[test]
fn deferred_form_for_the_named_service() {
    let text = generate_with("greeter.proto", "test.greeter", |b| {
        b.deferred("test.greeter.Greeter")
    })
    .unwrap();
    // The synchronous form stays.
    assert_has(&text, "pub trait Greeter: Send + Sync + 'static {");
    assert_has(&text, "pub struct GreeterServer<T: Greeter>");
    // The service's comment, then what the deferred form is.
    assert_has(
        &text,
        "/// Greets people.\n///\n/// The `Greeter` service in deferred form:",
    );
    assert_has(&text, "pub trait GreeterDeferred: Send + Sync + 'static {");
    assert_has(
        &text,
        "/// Says hello to `name`.\n///\n/// Starts the `SayHello` RPC and returns; answer through `done`.
        fn say_hello(&self, request: HelloRequest,
            done: ::fibrpc::server::TypedResponder<HelloReply>);",
    );
    assert_has(&text, "fn r#match(&self, request: HelloRequest,");
    assert_has(
        &text,
        "pub struct GreeterDeferredServer<T: GreeterDeferred>",
    );
    assert_has(
        &text,
        "impl<T: GreeterDeferred> ::fibrpc::Service for GreeterDeferredServer<T>",
    );
    assert_has(&text, "fn defers(&self, _method: usize) -> bool { true }");
    assert_has(&text, "::fibrpc::errno::EINTERNAL,");
    assert_has(&text, "answers only deferred");
    assert_has(
        &text,
        "fn call_method_deferred(&self, method: usize, request: ::fibrpc::IOBuf,
            done: ::fibrpc::Responder)",
    );
    assert_has(
        &text,
        "2 => { match ::fibrpc::codec::decode_request::<HelloRequest>(&request) {
            ::core::result::Result::Ok(request) => {
                self.inner.r#match(request, ::fibrpc::server::TypedResponder::new(done))
            }
            ::core::result::Result::Err(e) => { done.send(::core::result::Result::Err(e)) }",
    );
    assert_has(
        &text,
        "_ => { done.send(::core::result::Result::Err(::fibrpc::RpcError::new(
            ::fibrpc::errno::ENOMETHOD,",
    );
}

#[test]
fn deferred_accepts_every_service_and_a_leading_dot() {
    for name in ["*", ".test.greeter.Greeter"] {
        let text = generate_with("greeter.proto", "test.greeter", |b| {
            b.deferred("other.Service").deferred(name)
        })
        .unwrap();
        assert_has(&text, "pub trait GreeterDeferred");
    }
    let text = generate_with("greeter.proto", "test.greeter", |b| {
        b.deferred("test.greeter.Other").deferred("Greeter")
    })
    .unwrap();
    assert!(!text.contains("GreeterDeferred"), "{text}");
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
fn streaming_methods_take_stream_handles() {
    let text = generate_with("streaming.proto", "test.streaming", |b| b.deferred("*")).unwrap();
    assert_has(
        &text,
        "fn one(&self, cntl: &mut ::fibrpc::Controller, request: Item)
            -> ::core::result::Result<Item, ::fibrpc::RpcError>;",
    );
    assert_has(
        &text,
        "fn many(&self, cntl: &mut ::fibrpc::Controller, request: Item,
            responses: ::fibrpc::protocol::grpc::ServerStreamWriter<Item>)
            -> ::core::result::Result<(), ::fibrpc::RpcError>;",
    );
    assert_has(
        &text,
        "fn gather(&self, cntl: &mut ::fibrpc::Controller,
            requests: ::fibrpc::protocol::grpc::ClientStreamReader<Item>)
            -> ::core::result::Result<Item, ::fibrpc::RpcError>;",
    );
    assert_has(
        &text,
        "fn both(&self, cntl: &mut ::fibrpc::Controller,
            stream: ::fibrpc::protocol::grpc::BidiStream<Item, Item>)
            -> ::core::result::Result<(), ::fibrpc::RpcError>;",
    );
    // Served over gRPC by kind; over baidu_std and HTTP they say so.
    assert_has(&text, "1 => ::fibrpc::MethodKind::ServerStreaming,");
    assert_has(&text, "2 => ::fibrpc::MethodKind::ClientStreaming,");
    assert_has(&text, "3 => ::fibrpc::MethodKind::Bidirectional,");
    assert_has(&text, "is a streaming method, served over gRPC only");
    assert_has(
        &text,
        "3 => self.inner.both(cntl, ::fibrpc::protocol::grpc::BidiStream::new(stream)),",
    );
    // The stub's unary methods take any `RpcChannel`; the streaming
    // ones exist only where the channel can open streams (gRPC), so
    // asking a baidu_std `Channel` for a stream does not compile.
    assert!(text.contains("pub fn one_simple("), "{text}");
    let (unary, streaming) = text
        .split_once("impl<C: ::fibrpc::StreamingChannel> StreamerClient<C> {")
        .expect("a streaming impl block");
    assert!(
        !unary[unary
            .find("impl<C: ::fibrpc::RpcChannel> StreamerClient<C>")
            .unwrap()..]
            .contains("pub fn many"),
        "{text}"
    );
    assert!(streaming.contains("pub fn many("), "{text}");
    // Both wrappers serve the streaming methods.
    assert_eq!(
        text.matches("fn call_method_streaming(").count(),
        2,
        "{text}"
    );
}

#[test]
fn protoc_error_is_reported() {
    let err = generate("missing.proto", "missing", None).unwrap_err();
    assert!(err.to_string().contains("missing.proto"), "{err}");
}
