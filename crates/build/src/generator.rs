//! The `prost_build::ServiceGenerator` that writes, per service, the trait,
//! the `fibrpc::Service` wrapper, the client stub and, for the services
//! the builder names, the deferred trait and its wrapper (see the crate
//! docs for their shapes).
//!
//! The client stub has four forms per RPC `Echo`: `echo(cntl, &request)`
//! (waits; settings and results in the controller), `echo_simple(&request)`
//! (waits; no controller: the channel's settings, the response or the
//! error), `echo_async(cntl, &request, done)` and
//! `echo_future(cntl, &request)`. The controller-less form is a new name
//! beside the others rather than a change of `echo`'s signature, so code
//! generated before keeps compiling; it is what a tonic user reaches for
//! (`client.echo_simple(&request)?` after `fibrpc::connect(addr)?`).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use heck::ToShoutySnakeCase;
use prost_build::{Comments, Method, Service, ServiceGenerator};

/// Writes fibrpc code for each service prost hands it.
pub(crate) struct FibrpcServiceGenerator {
    /// Path of the fibrpc crate in generated code (`::fibrpc`, `crate`).
    rt: String,
    /// Where prost writes the file descriptor set the services embed.
    descriptors: PathBuf,
    /// Full names of the services that also get the deferred form; `"*"`
    /// is every service.
    deferred: Vec<String>,
}

impl FibrpcServiceGenerator {
    pub(crate) fn new(rt: String, descriptors: PathBuf, deferred: Vec<String>) -> Self {
        FibrpcServiceGenerator {
            rt,
            descriptors,
            deferred,
        }
    }

    /// Whether `full_name` (`"pkg.Foo"`) gets the deferred form.
    fn defers(&self, full_name: &str) -> bool {
        self.deferred
            .iter()
            .any(|s| s == "*" || s.trim_start_matches('.') == full_name)
    }
}

impl ServiceGenerator for FibrpcServiceGenerator {
    fn generate(&mut self, service: Service, buf: &mut String) {
        let full_name = full_name(&service);
        let deferred = self.defers(&full_name);
        let names = Names::new(&service, full_name);
        write_consts(&service, &names, buf);
        write_trait(&service, &self.rt, buf);
        write_server(&service, &names, &self.rt, &self.descriptors, buf);
        if deferred {
            write_deferred_trait(&service, &names, &self.rt, buf);
            write_deferred_server(&service, &names, &self.rt, &self.descriptors, buf);
        }
        write_client(&service, &names, &self.rt, buf);
    }
}

/// `"pkg.Foo"`, or `"Foo"` for a `.proto` without a package.
fn full_name(service: &Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

/// The names of the generated items for one service.
struct Names {
    full_name: String,
    /// `FOO_SERVICE_NAME`.
    service_const: String,
    /// `FOO_SERVICE_METHOD_NAMES`.
    methods_const: String,
    server: String,
    /// `FooDeferred`, the trait of the deferred form.
    deferred: String,
    /// `FooDeferredServer`.
    deferred_server: String,
    client: String,
}

impl Names {
    fn new(service: &Service, full_name: String) -> Names {
        let mut prefix = service.name.to_shouty_snake_case();
        // `EchoService` -> `ECHO_SERVICE_NAME`, not `ECHO_SERVICE_SERVICE_NAME`.
        if !prefix.ends_with("_SERVICE") && prefix != "SERVICE" {
            prefix.push_str("_SERVICE");
        }
        Names {
            full_name,
            service_const: format!("{prefix}_NAME"),
            methods_const: format!("{prefix}_METHOD_NAMES"),
            server: format!("{}Server", service.name),
            deferred: format!("{}Deferred", service.name),
            deferred_server: format!("{}DeferredServer", service.name),
            client: format!("{}Client", service.name),
        }
    }
}

/// The proto comments as doc lines, or `default` when there are none.
fn docs(comments: &Comments, indent: u8, default: &str, buf: &mut String) {
    comments.append_with_indent(indent, buf);
    if comments.leading.is_empty() && comments.trailing.is_empty() {
        let pad = "    ".repeat(indent.into());
        for line in default.lines() {
            let _ = writeln!(buf, "{pad}/// {line}");
        }
    }
}

/// The proto comments as doc lines, then `extra` (after an empty doc
/// line when there were comments).
fn docs_then(comments: &Comments, indent: u8, extra: &str, buf: &mut String) {
    comments.append_with_indent(indent, buf);
    let pad = "    ".repeat(indent.into());
    if !comments.leading.is_empty() || !comments.trailing.is_empty() {
        let _ = writeln!(buf, "{pad}///");
    }
    for line in extra.lines() {
        let _ = writeln!(buf, "{pad}/// {line}");
    }
}

/// The method's name for the callback form: `echo_async` (`r#type` gives
/// `type_async`, which needs no escape).
fn async_name(method: &Method) -> String {
    format!("{}_async", method.name.trim_start_matches("r#"))
}

/// The method's name for the form without a controller: `echo_simple`
/// (`r#type` gives `type_simple`).
fn simple_name(method: &Method) -> String {
    format!("{}_simple", method.name.trim_start_matches("r#"))
}

/// The method's name for the `Future` form: `echo_future` (`r#type`
/// gives `type_future`).
fn future_name(method: &Method) -> String {
    format!("{}_future", method.name.trim_start_matches("r#"))
}

fn write_consts(service: &Service, names: &Names, buf: &mut String) {
    let method_list: Vec<String> = service
        .methods
        .iter()
        .map(|m| format!("{:?}", m.proto_name))
        .collect();
    let _ = writeln!(
        buf,
        "/// The fully qualified name of service `{full}`, as on the wire.
pub const {sc}: &str = {full:?};
/// The methods of service `{full}` in `.proto` order; a method's index here
/// is the one `fibrpc::Service::call_method` takes.
pub const {mc}: &[&str] = &[{list}];",
        full = names.full_name,
        sc = names.service_const,
        mc = names.methods_const,
        list = method_list.join(", "),
    );
}

fn write_trait(service: &Service, rt: &str, buf: &mut String) {
    docs(
        &service.comments,
        0,
        &format!(
            "The `{}` service: implement it and serve it with [`{}Server`].",
            service.proto_name, service.name
        ),
        buf,
    );
    let _ = writeln!(buf, "pub trait {}: Send + Sync + 'static {{", service.name);
    for m in &service.methods {
        docs(
            &m.comments,
            1,
            &format!("Handles the `{}` RPC.", m.proto_name),
            buf,
        );
        write_trait_method(m, rt, buf);
    }
    buf.push_str("}\n");
}

/// A trait method's signature: unary methods take the request and
/// return the response; streaming methods take the call's typed stream
/// handles (gRPC only).
fn write_trait_method(m: &Method, rt: &str, buf: &mut String) {
    let (name, req, resp) = (&m.name, &m.input_type, &m.output_type);
    let cntl = format!("cntl: &mut {rt}::Controller");
    let grpc = format!("{rt}::protocol::grpc");
    let _ = match kind(m) {
        Kind::Unary => writeln!(
            buf,
            "    fn {name}(&self, {cntl}, request: {req}) \
             -> ::core::result::Result<{resp}, {rt}::RpcError>;"
        ),
        Kind::ServerStreaming => writeln!(
            buf,
            "    ///
    /// Server streaming (gRPC only): send the responses through
    /// `responses`; the call ends with the returned status.
    fn {name}(&self, {cntl}, request: {req}, responses: {grpc}::ServerStreamWriter<{resp}>) \
             -> ::core::result::Result<(), {rt}::RpcError>;"
        ),
        Kind::ClientStreaming => writeln!(
            buf,
            "    ///
    /// Client streaming (gRPC only): read the requests from `requests`
    /// (`recv` until `Ok(None)`) and return the one response.
    fn {name}(&self, {cntl}, requests: {grpc}::ClientStreamReader<{req}>) \
             -> ::core::result::Result<{resp}, {rt}::RpcError>;"
        ),
        Kind::Bidirectional => writeln!(
            buf,
            "    ///
    /// Bidirectional streaming (gRPC only): `stream.recv()` the requests
    /// and `stream.send()` the responses, in any order (`split` gives
    /// the halves to two fibers); the call ends with the returned status.
    fn {name}(&self, {cntl}, stream: {grpc}::BidiStream<{req}, {resp}>) \
             -> ::core::result::Result<(), {rt}::RpcError>;"
        ),
    };
}

/// How a method's messages flow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unary,
    ServerStreaming,
    ClientStreaming,
    Bidirectional,
}

fn kind(m: &Method) -> Kind {
    match (m.client_streaming, m.server_streaming) {
        (false, false) => Kind::Unary,
        (false, true) => Kind::ServerStreaming,
        (true, false) => Kind::ClientStreaming,
        (true, true) => Kind::Bidirectional,
    }
}

/// What a unary path (baidu_std, HTTP) answers for a streaming method.
fn streaming_only(m: &Method, names: &Names, rt: &str) -> String {
    format!(
        "{rt}::RpcError::new(
                {rt}::errno::ENOMETHOD,
                ::std::format!(\"{{}}.{proto} is a streaming method, served over gRPC only\", {sc}),
            )",
        proto = m.proto_name,
        sc = names.service_const,
    )
}

/// `method_kind` and `call_method_streaming` of a `Service` impl whose
/// wrapped implementation is `self.inner` (both wrappers share them).
fn write_streaming_impl(service: &Service, names: &Names, rt: &str, buf: &mut String) {
    if service.methods.iter().all(|m| kind(m) == Kind::Unary) {
        return;
    }
    let grpc = format!("{rt}::protocol::grpc");
    let _ = writeln!(
        buf,
        "
    fn method_kind(&self, method: usize) -> {rt}::MethodKind {{
        match method {{"
    );
    for (i, m) in service.methods.iter().enumerate() {
        let k = match kind(m) {
            Kind::Unary => continue,
            Kind::ServerStreaming => "ServerStreaming",
            Kind::ClientStreaming => "ClientStreaming",
            Kind::Bidirectional => "Bidirectional",
        };
        let _ = writeln!(buf, "            {i} => {rt}::MethodKind::{k},");
    }
    let _ = writeln!(
        buf,
        "            _ => {rt}::MethodKind::Unary,
        }}
    }}

    fn call_method_streaming(
        &self,
        method: usize,
        cntl: &mut {rt}::Controller,
        stream: {grpc}::ServerStream,
    ) -> ::core::result::Result<(), {rt}::RpcError> {{
        match method {{"
    );
    for (i, m) in service.methods.iter().enumerate() {
        let (name, req) = (&m.name, &m.input_type);
        let _ = match kind(m) {
            Kind::Unary => continue,
            Kind::ServerStreaming => writeln!(
                buf,
                "            {i} => {{
                let request = match stream.recv()? {{
                    ::core::option::Option::Some(m) => {rt}::codec::decode_request::<{req}>(&m)?,
                    ::core::option::Option::None => {{
                        return ::core::result::Result::Err({rt}::RpcError::new(
                            {rt}::errno::EREQUEST,
                            \"the call ended before its request message\",
                        ))
                    }}
                }};
                self.inner.{name}(cntl, request, {grpc}::ServerStreamWriter::new(stream))
            }}"
            ),
            Kind::ClientStreaming => writeln!(
                buf,
                "            {i} => {{
                let response = self
                    .inner
                    .{name}(cntl, {grpc}::ClientStreamReader::new(stream.clone()))?;
                stream.send({rt}::codec::encode(&response))
            }}"
            ),
            Kind::Bidirectional => writeln!(
                buf,
                "            {i} => self.inner.{name}(cntl, {grpc}::BidiStream::new(stream)),"
            ),
        };
    }
    let _ = writeln!(
        buf,
        "            _ => ::core::result::Result::Err({rt}::RpcError::new(
                {rt}::errno::ENOMETHOD,
                ::std::format!(\"{{}} has no streaming method #{{}}\", {sc}, method),
            )),
        }}
    }}",
        sc = names.service_const,
    );
}

fn write_server(service: &Service, names: &Names, rt: &str, descriptors: &Path, buf: &mut String) {
    let (trait_name, server) = (&service.name, &names.server);
    let _ = writeln!(
        buf,
        "/// Serves an implementation of [`{trait_name}`] as a `{rt}::Service`: decodes
/// each request, calls the trait method and encodes its response."
    );
    write_wrapper_head(trait_name, server, names, rt, descriptors, buf);
    let _ = writeln!(
        buf,
        "
    fn call_method(
        &self,
        method: usize,
        cntl: &mut {rt}::Controller,
        request: &{rt}::IOBuf,
    ) -> ::core::result::Result<{rt}::IOBuf, {rt}::RpcError> {{
        match method {{"
    );
    for (i, m) in service.methods.iter().enumerate() {
        if kind(m) != Kind::Unary {
            let _ = writeln!(
                buf,
                "            {i} => ::core::result::Result::Err({}),",
                streaming_only(m, names, rt)
            );
            continue;
        }
        let _ = writeln!(
            buf,
            "            {i} => {{
                let request = {rt}::codec::decode_request::<{req}>(request)?;
                let response = self.inner.{name}(cntl, request)?;
                ::core::result::Result::Ok({rt}::codec::encode(&response))
            }}",
            req = m.input_type,
            name = m.name,
        );
    }
    let _ = writeln!(
        buf,
        "            _ => ::core::result::Result::Err({rt}::RpcError::new(
                {rt}::errno::ENOMETHOD,
                ::std::format!(\"{{}} has no method #{{}}\", {sc}, method),
            )),
        }}
    }}",
        sc = names.service_const,
    );
    write_streaming_impl(service, names, rt, buf);
    buf.push_str("}\n");
}

fn write_deferred_trait(service: &Service, names: &Names, rt: &str, buf: &mut String) {
    docs_then(
        &service.comments,
        0,
        &format!(
            "The `{proto}` service in deferred form: each method starts the work
and returns, and the answer goes through its `done` responder
(`done.send(Ok(response))`), from any fiber, thread or callback. No fiber
is held while the answer is pending; a responder dropped without
answering answers `EINTERNAL`; `done.controller()` is the request's
controller. Serve an implementation with [`{server}`].",
            proto = service.proto_name,
            server = names.deferred_server,
        ),
        buf,
    );
    let _ = writeln!(
        buf,
        "pub trait {}: Send + Sync + 'static {{",
        names.deferred
    );
    for m in &service.methods {
        if kind(m) != Kind::Unary {
            // A streaming call holds its fiber for as long as it lasts
            // whatever the form: the same method as the plain trait's.
            docs(
                &m.comments,
                1,
                &format!("Handles the `{}` RPC.", m.proto_name),
                buf,
            );
            write_trait_method(m, rt, buf);
            continue;
        }
        docs_then(
            &m.comments,
            1,
            &format!(
                "Starts the `{}` RPC and returns; answer through `done`.",
                m.proto_name
            ),
            buf,
        );
        let _ = writeln!(
            buf,
            "    fn {name}(&self, request: {req}, done: {rt}::server::TypedResponder<{resp}>);",
            name = m.name,
            req = m.input_type,
            resp = m.output_type,
        );
    }
    buf.push_str("}\n");
}

/// The part both server wrappers share: the struct holding the
/// implementation, its constructors, and the `Service` impl's opening with
/// the names and the descriptors (the caller writes the methods and the
/// closing brace).
fn write_wrapper_head(
    trait_name: &str,
    server: &str,
    names: &Names,
    rt: &str,
    descriptors: &Path,
    buf: &mut String,
) {
    let _ = write!(
        buf,
        "pub struct {server}<T: {trait_name}> {{
    inner: ::std::sync::Arc<T>,
}}

impl<T: {trait_name}> {server}<T> {{
    /// Wraps `inner` for a server.
    pub fn new(inner: T) -> Self {{
        Self::from_arc(::std::sync::Arc::new(inner))
    }}

    /// Wraps an implementation that is shared with other code.
    pub fn from_arc(inner: ::std::sync::Arc<T>) -> Self {{
        {server} {{ inner }}
    }}

    /// The wrapped implementation.
    pub fn get_ref(&self) -> &::std::sync::Arc<T> {{
        &self.inner
    }}
}}

impl<T: {trait_name}> {rt}::Service for {server}<T> {{
    fn service_name(&self) -> &'static str {{
        {sc}
    }}

    fn method_names(&self) -> &'static [&'static str] {{
        {mc}
    }}

    fn descriptor_set(&self) -> ::core::option::Option<&'static [u8]> {{
        ::core::option::Option::Some(include_bytes!({fds:?}))
    }}
",
        sc = names.service_const,
        mc = names.methods_const,
        fds = descriptors.display().to_string(),
    );
}

fn write_deferred_server(
    service: &Service,
    names: &Names,
    rt: &str,
    descriptors: &Path,
    buf: &mut String,
) {
    let (trait_name, server) = (&names.deferred, &names.deferred_server);
    let _ = writeln!(
        buf,
        "/// Serves an implementation of [`{trait_name}`] as a `{rt}::Service` whose
/// methods all answer later: decodes each request and hands it to the
/// trait method with the responder that answers it."
    );
    write_wrapper_head(trait_name, server, names, rt, descriptors, buf);
    let _ = writeln!(
        buf,
        "
    fn call_method(
        &self,
        _method: usize,
        _cntl: &mut {rt}::Controller,
        _request: &{rt}::IOBuf,
    ) -> ::core::result::Result<{rt}::IOBuf, {rt}::RpcError> {{
        ::core::result::Result::Err({rt}::RpcError::new(
            {rt}::errno::EINTERNAL,
            ::std::format!(\"{{}} answers only deferred (call_method_deferred)\", {sc}),
        ))
    }}

    fn defers(&self, _method: usize) -> bool {{
        true
    }}

    fn call_method_deferred(&self, method: usize, request: {rt}::IOBuf, done: {rt}::Responder) {{
        match method {{",
        sc = names.service_const,
    );
    for (i, m) in service.methods.iter().enumerate() {
        if kind(m) != Kind::Unary {
            let _ = writeln!(
                buf,
                "            {i} => done.send(::core::result::Result::Err({})),",
                streaming_only(m, names, rt)
            );
            continue;
        }
        let _ = writeln!(
            buf,
            "            {i} => match {rt}::codec::decode_request::<{req}>(&request) {{
                ::core::result::Result::Ok(request) => self
                    .inner
                    .{name}(request, {rt}::server::TypedResponder::new(done)),
                ::core::result::Result::Err(e) => done.send(::core::result::Result::Err(e)),
            }},",
            req = m.input_type,
            name = m.name,
        );
    }
    let _ = writeln!(
        buf,
        "            _ => done.send(::core::result::Result::Err({rt}::RpcError::new(
                {rt}::errno::ENOMETHOD,
                ::std::format!(\"{{}} has no method #{{}}\", {sc}, method),
            ))),
        }}
    }}",
        sc = names.service_const,
    );
    write_streaming_impl(service, names, rt, buf);
    buf.push_str("}\n");
}

fn write_client(service: &Service, names: &Names, rt: &str, buf: &mut String) {
    let client = &names.client;
    let _ = writeln!(
        buf,
        "/// Calls service `{full}` over a [`{rt}::Channel`], or any other
/// [`{rt}::RpcChannel`] (a combo channel, say).
#[derive(Clone)]
pub struct {client}<C = {rt}::Channel> {{
    channel: C,
}}

impl<C: {rt}::RpcChannel> {client}<C> {{
    /// A stub that sends its calls through `channel`.
    pub fn new(channel: C) -> Self {{
        {client} {{ channel }}
    }}

    /// The channel the calls go through.
    pub fn channel(&self) -> &C {{
        &self.channel
    }}",
        full = names.full_name,
    );
    // Streaming methods are called over gRPC, not through this
    // baidu_std stub.
    for m in service.methods.iter().filter(|m| kind(m) == Kind::Unary) {
        buf.push('\n');
        docs(
            &m.comments,
            1,
            &format!("Calls `{}` and waits for the response.", m.proto_name),
            buf,
        );
        let _ = writeln!(
            buf,
            "    pub fn {name}(
        &self,
        cntl: &mut {rt}::Controller,
        request: &{req},
    ) -> ::core::result::Result<{resp}, {rt}::RpcError> {{
        {rt}::RpcChannel::call(&self.channel, {sc}, {proto:?}, cntl, request)
    }}

    /// Calls `{proto}` with the channel's settings and waits for the
    /// response, without a controller: for when nothing but the response
    /// or the error matters (the error's text lists every failed attempt).
    pub fn {simple_name}(
        &self,
        request: &{req},
    ) -> ::core::result::Result<{resp}, {rt}::RpcError> {{
        {rt}::RpcChannel::call(&self.channel, {sc}, {proto:?}, &mut {rt}::Controller::new(), request)
    }}

    /// Starts `{proto}` and returns at once; `done` runs with the controller
    /// and the outcome when the call ends.
    pub fn {async_name}(
        &self,
        cntl: {rt}::Controller,
        request: &{req},
        done: impl ::core::ops::FnOnce({rt}::Controller, ::core::result::Result<{resp}, {rt}::RpcError>)
            + ::core::marker::Send
            + 'static,
    ) {{
        {rt}::RpcChannel::call_async(&self.channel, {sc}, {proto:?}, cntl, request, done)
    }}

    /// Starts `{proto}` as a `Future` for any executor, resolving to the
    /// controller and the outcome. Polling never blocks, and no fiber is
    /// held while the call is in flight.
    pub fn {future_name}(
        &self,
        cntl: {rt}::Controller,
        request: &{req},
    ) -> impl ::core::future::Future<
        Output = ({rt}::Controller, ::core::result::Result<{resp}, {rt}::RpcError>),
    > + ::core::marker::Send
           + 'static {{
        {rt}::RpcChannel::call_future(&self.channel, {sc}, {proto:?}, cntl, request)
    }}",
            name = m.name,
            async_name = async_name(m),
            simple_name = simple_name(m),
            future_name = future_name(m),
            proto = m.proto_name,
            req = m.input_type,
            resp = m.output_type,
            sc = names.service_const,
        );
    }
    buf.push_str("}\n");
    write_streaming_client(service, names, rt, buf);
}

/// The stub's streaming methods, in an impl of their own bounded by
/// `StreamingChannel`: they exist only over a channel that can open
/// streams (a `GrpcChannel`), so calling one over a baidu_std `Channel`
/// is a compile error rather than a runtime one, while the unary
/// methods stay generic over every `RpcChannel`.
fn write_streaming_client(service: &Service, names: &Names, rt: &str, buf: &mut String) {
    let streaming: Vec<&Method> = service
        .methods
        .iter()
        .filter(|m| kind(m) != Kind::Unary)
        .collect();
    if streaming.is_empty() {
        return;
    }
    let client = &names.client;
    let grpc = format!("{rt}::protocol::grpc");
    let _ = writeln!(
        buf,
        "\n/// The streaming methods of `{full}`: over a channel that opens
/// streams ([`{rt}::GrpcChannel`]).
impl<C: {rt}::StreamingChannel> {client}<C> {{",
        full = names.full_name,
    );
    for (i, m) in streaming.iter().enumerate() {
        if i > 0 {
            buf.push('\n');
        }
        let (name, req, resp, proto, sc) = (
            &m.name,
            &m.input_type,
            &m.output_type,
            &m.proto_name,
            &names.service_const,
        );
        let (what, body) = match kind(m) {
            Kind::ServerStreaming => (
                "Sends `request` to `{proto}` (server streaming) and returns the
receiver of its responses.",
                format!(
                    "    pub fn {name}(
        &self,
        cntl: &mut {rt}::Controller,
        request: &{req},
    ) -> ::core::result::Result<{grpc}::StreamReceiver<{resp}>, {rt}::RpcError> {{
        {rt}::StreamingChannel::server_streaming(&self.channel, {sc}, {proto:?}, cntl, request)
    }}"
                ),
            ),
            Kind::ClientStreaming => (
                "Opens `{proto}` (client streaming): `send` the requests, then
`finish` for the response.",
                format!(
                    "    pub fn {name}(
        &self,
        cntl: &mut {rt}::Controller,
    ) -> ::core::result::Result<{grpc}::ClientStreamingCall<{req}, {resp}>, {rt}::RpcError> {{
        {rt}::StreamingChannel::client_streaming(&self.channel, {sc}, {proto:?}, cntl)
    }}"
                ),
            ),
            _ => (
                "Opens `{proto}` (bidirectional): `send` and `recv` in any
order, `close_send` when done sending.",
                format!(
                    "    pub fn {name}(
        &self,
        cntl: &mut {rt}::Controller,
    ) -> ::core::result::Result<{grpc}::BidiCall<{req}, {resp}>, {rt}::RpcError> {{
        {rt}::StreamingChannel::bidi_streaming(&self.channel, {sc}, {proto:?}, cntl)
    }}"
                ),
            ),
        };
        docs_then(&m.comments, 1, &what.replace("{proto}", proto), buf);
        let _ = writeln!(buf, "{body}");
    }
    buf.push_str("}\n");
}
