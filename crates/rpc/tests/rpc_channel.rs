//! Channel options end to end: pooled and short connections, backup
//! requests, log ids, and handlers that call other servers synchronously.

mod rpc_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::{
    codec, Channel, ChannelOptions, ConnectionType, Controller, IOBuf, RpcError, Server,
    ServerOptions, Service,
};
use rpc_common::*;

fn channel_with(server: &Server, kind: ConnectionType) -> Channel {
    let options = ChannelOptions {
        connection_type: kind,
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    Channel::new(server.listen_addr().unwrap(), options).unwrap()
}

#[test]
fn pooled_connections_carry_one_call_each_and_are_reused() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel_with(&server, ConnectionType::Pooled);
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                let mut r = req(&format!("p{i}"));
                r.sleep_ms = Some(100);
                echo(&ch, &mut Controller::new(), &r).map(|r| r.message)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap().unwrap(), format!("p{i}"));
    }
    // Eight calls at once needed eight connections; they stay pooled.
    assert_eq!(wait_for_connections(&server, 8), 8);
    for _ in 0..5 {
        echo(&ch, &mut Controller::new(), &req("again")).unwrap();
    }
    assert_eq!(server.connection_count(), 8, "idle connections are reused");
    drop(ch);
    assert_eq!(
        wait_for_connections(&server, 0),
        0,
        "dropping the channel closes them"
    );
}

#[test]
fn short_connections_close_after_each_call() {
    let (server, _) = start_server(ServerOptions::default());
    let ch = channel_with(&server, ConnectionType::Short);
    for i in 0..5 {
        let m = format!("s{i}");
        assert_eq!(
            echo(&ch, &mut Controller::new(), &req(&m)).unwrap().message,
            m
        );
    }
    assert_eq!(wait_for_connections(&server, 0), 0);
}

/// Sleeps on the first call only, so a backup request is answered at once.
struct SlowFirst(AtomicUsize);

impl Service for SlowFirst {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, r: &IOBuf) -> Result<IOBuf, RpcError> {
        let req: EchoRequest = codec::decode_request(r)?;
        if self.0.fetch_add(1, Ordering::Relaxed) == 0 {
            fibrpc::fiber::sleep(Duration::from_millis(1000)).unwrap();
        }
        Ok(codec::encode(&EchoResponse {
            message: req.message,
        }))
    }
}

#[test]
fn backup_request_answers_when_the_first_is_slow() {
    let mut server = Server::new(ServerOptions::default());
    let calls = Arc::new(SlowFirst(AtomicUsize::new(0)));
    server.add_service(ArcService(calls.clone())).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let ch = channel_with(&server, ConnectionType::Single);
    let mut cntl = Controller::new();
    cntl.set_backup_request(Duration::from_millis(50));
    let t = Instant::now();
    assert_eq!(echo(&ch, &mut cntl, &req("b")).unwrap().message, "b");
    assert!(cntl.has_backup_request());
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(calls.0.load(Ordering::Relaxed), 2);
}

/// `Service` for an `Arc`, so the test keeps a handle on the counters.
struct ArcService<S>(Arc<S>);

impl<S: Service> Service for ArcService<S> {
    fn service_name(&self) -> &'static str {
        self.0.service_name()
    }
    fn method_names(&self) -> &'static [&'static str] {
        self.0.method_names()
    }
    fn call_method(&self, m: usize, c: &mut Controller, r: &IOBuf) -> Result<IOBuf, RpcError> {
        self.0.call_method(m, c, r)
    }
}

/// Forwards each call to another server through a channel, from inside the
/// handler (a fiber): a synchronous nested call.
struct Proxy(Channel);

impl Service for Proxy {
    fn service_name(&self) -> &'static str {
        "example.Proxy"
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, c: &mut Controller, r: &IOBuf) -> Result<IOBuf, RpcError> {
        let mut inner = Controller::new();
        inner.set_log_id(c.log_id());
        let resp: EchoResponse = self.0.call(SERVICE, "Echo", &mut inner, &{
            let mut q: EchoRequest = codec::decode_request(r)?;
            q.message = format!("{} via proxy (log_id {})", q.message, c.log_id());
            q
        })?;
        Ok(codec::encode(&resp))
    }
}

#[test]
fn handlers_call_other_servers_synchronously() {
    let (backend, _) = start_server(ServerOptions::default());
    let mut proxy = Server::new(ServerOptions::default());
    proxy
        .add_service(Proxy(channel_with(&backend, ConnectionType::Single)))
        .unwrap();
    proxy.start("127.0.0.1:0").unwrap();
    let ch = channel_with(&proxy, ConnectionType::Single);
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let ch = ch.clone();
            fibrpc::fiber::spawn(move || {
                let mut cntl = Controller::new();
                cntl.set_log_id(1000 + i);
                let r: Result<EchoResponse, _> =
                    ch.call("example.Proxy", "Echo", &mut cntl, &req(&format!("n{i}")));
                r.map(|r| r.message)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(
            h.join().unwrap().unwrap(),
            format!("n{i} via proxy (log_id {})", 1000 + i)
        );
    }
}

/// Answers with the time left before the call's deadline as the server
/// saw it ("none" without one).
struct DeadlineProbe;

impl Service for DeadlineProbe {
    fn service_name(&self) -> &'static str {
        "example.DeadlineProbe"
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Probe"]
    }
    fn call_method(&self, _: usize, c: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        let left = match c.deadline() {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_millis()
                .to_string(),
            None => "none".into(),
        };
        Ok(codec::encode(&EchoResponse { message: left }))
    }
}

#[test]
fn the_timeout_reaches_the_server_only_when_delivered() {
    let mut server = Server::new(ServerOptions::default());
    server.add_service(DeadlineProbe).unwrap();
    server.start("127.0.0.1:0").unwrap();
    let probe = |deliver_timeout: bool| {
        let options = ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            deliver_timeout,
            ..Default::default()
        };
        let ch = Channel::new(server.listen_addr().unwrap(), options).unwrap();
        let resp: EchoResponse = ch
            .call(
                "example.DeadlineProbe",
                "Probe",
                &mut Controller::new(),
                &req("x"),
            )
            .unwrap();
        resp.message
    };
    // bRPC's default: no `timeout_ms` in the request meta.
    assert_eq!(probe(false), "none");
    let left: u64 = probe(true).parse().unwrap();
    assert!(
        (1000..=5000).contains(&left),
        "{left} ms left of a 5 s timeout"
    );
}
