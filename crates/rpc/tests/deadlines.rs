//! Deadline inheritance across servers on 127.0.0.1: client → A → B,
//! where A's handler calls B. B's handler sees a deadline no later than
//! what the client had left; a call with too little time left fails in A
//! without reaching B; an explicit timeout in A is capped; and the
//! channel option turns it off.

mod rpc_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc::{
    codec, errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions,
    Service,
};
use rpc_common::*;

/// Where A puts the outcome of its late call to B, and how long it took.
type LateSlot = Arc<Mutex<Option<(Result<EchoResponse, RpcError>, Duration)>>>;

/// B: answers with the milliseconds its handler had left ("none"
/// without a deadline), and counts its calls.
struct Probe {
    calls: Arc<AtomicUsize>,
}

impl Service for Probe {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, c: &mut Controller, _: &IOBuf) -> Result<IOBuf, RpcError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
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

/// A: calls B from its handler. The request's message says how:
/// `relay` (at once, with A's channel timeout), `explicit` (with a 10 s
/// timeout on the controller), `late` (once only 1 ms of A's own
/// deadline is left; the outcome goes to `late`).
struct Relay {
    to_b: Channel,
    late: LateSlot,
}

impl Service for Relay {
    fn service_name(&self) -> &'static str {
        "example.Relay"
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Relay"]
    }
    fn call_method(&self, _: usize, c: &mut Controller, req: &IOBuf) -> Result<IOBuf, RpcError> {
        let req: EchoRequest = codec::decode_request(req)?;
        let mut down = Controller::new();
        match req.message.as_str() {
            "explicit" => down.set_timeout(Duration::from_secs(10)),
            "late" => {
                let deadline = c.deadline().expect("the client delivers its timeout");
                let until = deadline - Duration::from_millis(1);
                if let Some(wait) = until.checked_duration_since(Instant::now()) {
                    fibrpc::fiber::sleep(wait).unwrap();
                }
                let t0 = Instant::now();
                let r = echo(&self.to_b, &mut down, &req_msg("x"));
                *self.late.lock().unwrap() = Some((r, t0.elapsed()));
                return Err(RpcError::new(errno::ERPCTIMEDOUT, "late"));
            }
            _ => {}
        }
        let r = echo(&self.to_b, &mut down, &req_msg("x"))?;
        Ok(codec::encode(&r))
    }
}

fn req_msg(m: &str) -> EchoRequest {
    req(m)
}

struct Chain {
    _a: Server,
    _b: Server,
    a_addr: std::net::SocketAddr,
    b_addr: std::net::SocketAddr,
    b_calls: Arc<AtomicUsize>,
    late: LateSlot,
}

/// B, and A calling B with `a_options` (A's channel timeout: 5 s).
fn chain(a_options: ChannelOptions) -> Chain {
    let b_calls = Arc::new(AtomicUsize::new(0));
    let mut b = Server::new(ServerOptions::default());
    b.add_service(Probe {
        calls: b_calls.clone(),
    })
    .unwrap();
    b.start("127.0.0.1:0").unwrap();
    let to_b = Channel::new(
        b.listen_addr().unwrap(),
        ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            ..a_options
        },
    )
    .unwrap();
    let late = Arc::new(Mutex::new(None));
    let mut a = Server::new(ServerOptions::default());
    a.add_service(Relay {
        to_b,
        late: late.clone(),
    })
    .unwrap();
    a.start("127.0.0.1:0").unwrap();
    Chain {
        a_addr: a.listen_addr().unwrap(),
        b_addr: b.listen_addr().unwrap(),
        _a: a,
        _b: b,
        b_calls,
        late,
    }
}

/// The client's call to A with `timeout`; B's answer (the milliseconds
/// it had left).
fn call_a(c: &Chain, mode: &str, timeout: Duration) -> Result<String, RpcError> {
    let ch = Channel::new(c.a_addr, ChannelOptions::default()).unwrap();
    let mut cntl = Controller::new();
    cntl.set_timeout(timeout);
    let r: EchoResponse = ch.call("example.Relay", "Relay", &mut cntl, &req_msg(mode))?;
    Ok(r.message)
}

fn left_ms(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| panic!("B saw no deadline: {s}"))
}

#[test]
fn a_handlers_call_inherits_the_callers_remaining_time() {
    let c = chain(ChannelOptions::default());
    let left = left_ms(&call_a(&c, "relay", Duration::from_millis(300)).unwrap());
    // A's own channel timeout is 5 s: B sees the client's 300 ms budget
    // minus what the hops took.
    assert!(left <= 300, "B had {left} ms left of a 300 ms budget");
    assert!(left > 0);
}

#[test]
fn an_explicit_timeout_in_the_handler_is_capped_by_the_inherited_one() {
    let c = chain(ChannelOptions::default());
    let left = left_ms(&call_a(&c, "explicit", Duration::from_millis(300)).unwrap());
    assert!(left <= 300, "B had {left} ms left of a 300 ms budget");
}

#[test]
fn a_call_with_too_little_time_left_fails_without_being_sent() {
    let c = chain(ChannelOptions::default());
    let r = call_a(&c, "late", Duration::from_millis(100));
    assert!(r.is_err());
    let (late, took) = c.late.lock().unwrap().take().expect("A ran");
    let e = late.unwrap_err();
    assert_eq!(e.code, errno::ERPCTIMEDOUT, "{e}");
    assert!(e.text.contains("not sent"), "{e}");
    assert_eq!(c.b_calls.load(Ordering::Relaxed), 0, "the call reached B");
    eprintln!("failed after {took:?}");
}

#[test]
fn inheritance_can_be_turned_off() {
    let c = chain(ChannelOptions {
        inherit_deadline: false,
        ..ChannelOptions::default()
    });
    let left = left_ms(&call_a(&c, "relay", Duration::from_millis(300)).unwrap());
    assert!(left > 1000, "B had {left} ms: A's own 5 s timeout expected");
}

#[test]
fn a_call_outside_a_handler_delivers_its_own_timeout() {
    assert_eq!(fibrpc::call_context::inherited_deadline(), None);
    let c = chain(ChannelOptions::default());
    let to_b = Channel::new(
        c.b_addr,
        ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            ..ChannelOptions::default()
        },
    )
    .unwrap();
    let r = echo(&to_b, &mut Controller::new(), &req_msg("x")).unwrap();
    let left = left_ms(&r.message);
    assert!((1000..=5000).contains(&left), "{left}");
}
