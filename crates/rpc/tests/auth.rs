//! Authentication end to end: a channel's credential, the server's
//! verification of a connection's first message, the handler's view of
//! who called, and the console behind it — over baidu_std and HTTP,
//! with fibrpc's clients and with raw sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc::auth::{AuthContext, Authenticator};
use fibrpc::http::HttpChannel;
use fibrpc::protocol::baidu_std::{self, ParseResult, RpcMeta, RpcRequestMeta, RpcResponseMeta};
use fibrpc::{errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions};
use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

const GOOD: &str = "Bearer open-sesame";

/// Accepts [`GOOD`] as alice; counts the checks.
#[derive(Default)]
struct TokenAuth {
    credential: String,
    verified: AtomicUsize,
}

impl TokenAuth {
    fn presenting(credential: &str) -> Arc<TokenAuth> {
        Arc::new(TokenAuth {
            credential: credential.into(),
            verified: AtomicUsize::new(0),
        })
    }
}

impl Authenticator for TokenAuth {
    fn generate_credential(&self) -> Result<Vec<u8>, RpcError> {
        Ok(self.credential.clone().into_bytes())
    }

    fn verify_credential(
        &self,
        credential: &[u8],
        peer: SocketAddr,
        ctx: &mut AuthContext,
    ) -> Result<(), RpcError> {
        self.verified.fetch_add(1, Ordering::Relaxed);
        assert!(peer.ip().is_loopback());
        if credential != GOOD.as_bytes() {
            return Err(RpcError::new(errno::ERPCAUTH, "unknown token"));
        }
        ctx.user = "alice".into();
        ctx.group = "staff".into();
        ctx.roles = "admin".into();
        ctx.starter = "init".into();
        ctx.is_service = false;
        Ok(())
    }
}

/// Answers with who called: `user/group/roles/starter/is_service`.
struct WhoAmI;

impl EchoService for WhoAmI {
    fn echo(&self, cntl: &mut Controller, _req: EchoRequest) -> Result<EchoResponse, RpcError> {
        let message = match cntl.auth_context() {
            Some(a) => format!(
                "{}/{}/{}/{}/{}",
                a.user, a.group, a.roles, a.starter, a.is_service
            ),
            None => "anonymous".into(),
        };
        Ok(EchoResponse { message })
    }
}

fn server_with(options: ServerOptions) -> (Server, SocketAddr) {
    let mut server = Server::new(options);
    server.add_service(EchoServiceServer::new(WhoAmI)).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    (server, addr)
}

fn auth_server() -> (Server, SocketAddr, Arc<TokenAuth>) {
    let auth = TokenAuth::presenting("");
    let (server, addr) = server_with(ServerOptions {
        auth: Some(auth.clone()),
        ..ServerOptions::default()
    });
    (server, addr, auth)
}

fn client_options(credential: Option<&str>) -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_secs(5)),
        auth: credential.map(|c| TokenAuth::presenting(c) as Arc<dyn Authenticator>),
        ..ChannelOptions::default()
    }
}

fn who(channel: Channel) -> Result<String, RpcError> {
    let client = EchoServiceClient::new(channel);
    let r = client.echo(&mut Controller::new(), &EchoRequest { message: "".into() })?;
    Ok(r.message)
}

#[test]
fn the_right_credential_passes_and_the_handler_sees_who_called() {
    let (_server, addr, auth) = auth_server();
    let channel = Channel::new(addr, client_options(Some(GOOD))).unwrap();
    for _ in 0..5 {
        assert_eq!(
            who(channel.clone()).unwrap(),
            "alice/staff/admin/init/false"
        );
    }
    // Five calls on one connection: verified once.
    assert_eq!(auth.verified.load(Ordering::Relaxed), 1);
}

#[test]
fn a_wrong_or_missing_credential_is_erpcauth() {
    let (_server, addr, _) = auth_server();
    for options in [client_options(Some("Bearer wrong")), client_options(None)] {
        let e = who(Channel::new(addr, options).unwrap()).unwrap_err();
        assert_eq!(e.code, errno::ERPCAUTH, "{e}");
    }
}

#[test]
fn without_an_authenticator_nobody_is_asked_and_nobody_is_named() {
    let (_server, addr) = server_with(ServerOptions::default());
    // A credential sent to a server that asks for none is ignored.
    let channel = Channel::new(addr, client_options(Some(GOOD))).unwrap();
    assert_eq!(who(channel).unwrap(), "anonymous");
}

/// A baidu_std request frame for `example.EchoService.Echo`.
fn request_frame(correlation_id: i64, credential: Option<&str>) -> Vec<u8> {
    let meta = RpcMeta {
        request: Some(RpcRequestMeta {
            service_name: "example.EchoService".into(),
            method_name: "Echo".into(),
            ..Default::default()
        }),
        correlation_id: Some(correlation_id),
        authentication_data: credential.map(|c| c.as_bytes().to_vec()),
        ..Default::default()
    };
    let payload = fibrpc::codec::encode(&EchoRequest {
        message: "hi".into(),
    });
    let mut wire = IOBuf::new();
    baidu_std::encode(&meta, &payload, &IOBuf::new(), &mut wire).unwrap();
    wire.to_vec()
}

/// Every byte until the peer closes (10 s at most).
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all)
        .expect("the server closes the connection");
    all
}

fn response_code(bytes: &[u8]) -> (i64, i32) {
    let mut buf = IOBuf::from(bytes.to_vec());
    let ParseResult::Complete(f) = baidu_std::parse(&mut buf, 1 << 20) else {
        panic!("no whole response frame in {bytes:?}");
    };
    let code = f
        .meta
        .response
        .as_ref()
        .map_or(0, RpcResponseMeta::error_code);
    (f.meta.correlation_id(), code)
}

#[test]
fn a_refused_connection_is_answered_erpcauth_and_closed() {
    let (_server, addr, _) = auth_server();
    for credential in [Some("Bearer wrong"), None] {
        let mut s = TcpStream::connect(addr).unwrap();
        // The second request (with the right credential) is never read.
        let mut two = request_frame(7, credential);
        two.extend(request_frame(8, Some(GOOD)));
        s.write_all(&two).unwrap();
        let all = read_to_close(&mut s);
        let (id, code) = response_code(&all);
        assert_eq!((id, code), (7, errno::ERPCAUTH), "{credential:?}");
        let mut rest = IOBuf::from(all);
        let _ = baidu_std::parse(&mut rest, 1 << 20);
        assert!(rest.is_empty(), "only the first request is answered");
    }
}

#[test]
fn only_the_first_request_of_a_connection_needs_the_credential() {
    let (_server, addr, _) = auth_server();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&request_frame(1, Some(GOOD))).unwrap();
    s.write_all(&request_frame(2, None)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = IOBuf::new();
    let mut frames = Vec::new();
    let mut chunk = [0u8; 4096];
    while frames.len() < 2 {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed early");
        got.append(&chunk[..n]);
        while let ParseResult::Complete(f) = baidu_std::parse(&mut got, 1 << 20) {
            let code = f
                .meta
                .response
                .as_ref()
                .map_or(0, RpcResponseMeta::error_code);
            frames.push((f.meta.correlation_id(), code));
        }
    }
    frames.sort();
    assert_eq!(frames, [(1, 0), (2, 0)]);
}

/// A raw baidu_std server that answers every request and records the
/// credential each carried.
fn recording_server() -> (SocketAddr, std::sync::mpsc::Receiver<Option<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = IOBuf::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            got.append(&chunk[..n]);
            while let ParseResult::Complete(f) = baidu_std::parse(&mut got, 1 << 20) {
                let _ = tx.send(f.meta.authentication_data.clone());
                let meta = RpcMeta {
                    response: Some(RpcResponseMeta::default()),
                    correlation_id: f.meta.correlation_id,
                    ..Default::default()
                };
                let body = fibrpc::codec::encode(&EchoResponse {
                    message: "ok".into(),
                });
                let mut wire = IOBuf::new();
                baidu_std::encode(&meta, &body, &IOBuf::new(), &mut wire).unwrap();
                if s.write_all(&wire.to_vec()).is_err() {
                    return;
                }
            }
        }
    });
    (addr, rx)
}

#[test]
fn the_client_sends_the_credential_once_per_connection_even_under_concurrency() {
    let (addr, credentials) = recording_server();
    let channel = Channel::new(addr, client_options(Some(GOOD))).unwrap();
    const CALLS: usize = 32;
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..CALLS {
        let tx = tx.clone();
        let client = EchoServiceClient::new(channel.clone());
        client.echo_async(
            Controller::new(),
            &EchoRequest {
                message: "x".into(),
            },
            move |_, r| tx.send(r.map(|r| r.message)).unwrap(),
        );
    }
    for _ in 0..CALLS {
        let r = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(r.unwrap(), "ok");
    }
    let seen: Vec<_> = (0..CALLS)
        .map(|_| credentials.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    assert_eq!(
        seen[0].as_deref(),
        Some(GOOD.as_bytes()),
        "the first frame carries it"
    );
    assert!(
        seen[1..].iter().all(Option::is_none),
        "no later frame carries it: {seen:?}"
    );
}

/// Sends one raw HTTP request and returns (status, whole reply), reading
/// until the server closes or `Connection: close` was asked.
fn http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let reply = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {reply:?}"));
    (status, reply)
}

fn get(path: &str, authorization: Option<&str>) -> String {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
}

fn post_echo(authorization: Option<&str>) -> String {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let body = r#"{"message":"hi"}"#;
    format!(
        "POST /EchoService/Echo HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn http_requests_authenticate_with_the_authorization_header() {
    let (_server, addr, _) = auth_server();
    let (status, reply) = http(addr, &post_echo(Some(GOOD)));
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("alice/staff/admin/init/false"), "{reply}");
    // Without a credential: 401; with a wrong one: 403. Both ERPCAUTH,
    // both closed (read_to_close returned).
    let (status, reply) = http(addr, &post_echo(None));
    assert_eq!(status, 401, "{reply}");
    assert!(reply.contains("x-bd-error-code: 1004"), "{reply}");
    assert!(reply.contains("www-authenticate: Bearer"), "{reply}");
    let (status, reply) = http(addr, &post_echo(Some("Bearer nope")));
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("x-bd-error-code: 1004"), "{reply}");
}

/// curl over HTTP/2 (prior knowledge): the JSON echo, with `auth`.
fn curl_h2_echo(addr: SocketAddr, auth: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--http2-prior-knowledge", "--max-time", "10"])
        .args(["-H", "Content-Type: application/json"])
        .args(["--data", r#"{"message":"hi"}"#]);
    if let Some(a) = auth {
        cmd.args(["-H", &format!("Authorization: {a}")]);
    }
    cmd.arg(format!("http://{addr}/EchoService/Echo"));
    cmd.output()
        .expect("curl must be installed (apt-get install curl)")
}

#[test]
fn h2_requests_authenticate_with_the_authorization_header() {
    let (_server, addr, auth) = auth_server();
    let out = curl_h2_echo(addr, Some(GOOD));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{body} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(body.contains("alice/staff/admin/init/false"), "{body}");
    let checked = auth.verified.load(Ordering::Relaxed);
    assert!(checked >= 1);
    // Without a credential or with a wrong one the connection is closed
    // unanswered: curl gets no echo.
    for bad in [None, Some("Bearer nope")] {
        let out = curl_h2_echo(addr, bad);
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            !body.contains("alice") && !body.contains("anonymous"),
            "{bad:?}: {body}"
        );
        assert!(!out.status.success(), "{bad:?}: curl succeeded: {body}");
    }
}

#[test]
fn http_channel_sends_the_credential() {
    let (_server, addr, _) = auth_server();
    let ch = HttpChannel::new(&addr.to_string(), client_options(Some(GOOD))).unwrap();
    let r = ch
        .post("/EchoService/Echo", "application/json", r#"{"message":""}"#)
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(String::from_utf8_lossy(&r.body().to_vec()).contains("alice"));
    // The same pooled connection again: no credential needed any more.
    assert_eq!(ch.get("/health").unwrap().status(), 200);

    let ch = HttpChannel::new(&addr.to_string(), client_options(None)).unwrap();
    assert_eq!(ch.get("/health").unwrap().status(), 401);
}

#[test]
fn the_console_requires_authentication() {
    let (_server, addr, _) = auth_server();
    assert_eq!(http(addr, &get("/status", None)).0, 401);
    assert_eq!(http(addr, &get("/flags", Some("Bearer nope"))).0, 403);
    let (status, reply) = http(addr, &get("/status", Some(GOOD)));
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("example.EchoService"), "{reply}");
}

#[test]
fn the_internal_port_serves_the_console_without_credentials_and_nothing_else() {
    let auth = TokenAuth::presenting("");
    let (server, public) = server_with(ServerOptions {
        auth: Some(auth),
        internal_port: Some(0),
        ..ServerOptions::default()
    });
    let internal = server.internal_listen_addr().unwrap();
    // The console: without credentials on the internal port, nowhere
    // else.
    assert_eq!(http(internal, &get("/status", None)).0, 200);
    assert_eq!(http(public, &get("/status", None)).0, 401);
    // Methods on the internal port still need a credential...
    let (status, reply) = http(internal, &post_echo(None));
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("x-bd-error-code: 1004"), "{reply}");
    let e = who(Channel::new(internal, client_options(None)).unwrap()).unwrap_err();
    assert_eq!(e.code, errno::ERPCAUTH, "{e}");
    // ...and pass with one.
    let (status, reply) = http(internal, &post_echo(Some(GOOD)));
    assert_eq!(status, 200, "{reply}");
    let channel = Channel::new(internal, client_options(Some(GOOD))).unwrap();
    assert_eq!(who(channel).unwrap(), "alice/staff/admin/init/false");
}
