//! Retries on the call engine's seams, over real servers on 127.0.0.1:
//! a user's `RetryPolicy` deciding, retries and backup requests going to
//! replicas the call has not tried, the attempts on the `Controller`, and
//! the retry budget capping retries when every replica fails.

mod rpc_common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc::channel::{AttemptStatus, FailedAttempt, RetryBudget, RetryPolicy};
use fibrpc::{
    codec, errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions,
    Service,
};
use rpc_common::*;

/// The echo service of a replica that answers every request with
/// `fail_code` (if set) or after `sleep_ms`; it keeps the messages it
/// saw.
struct Replica {
    fail_code: Option<i32>,
    sleep_ms: u64,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Service for Replica {
    fn service_name(&self) -> &'static str {
        SERVICE
    }
    fn method_names(&self) -> &'static [&'static str] {
        &["Echo"]
    }
    fn call_method(&self, _: usize, _: &mut Controller, req: &IOBuf) -> Result<IOBuf, RpcError> {
        let req: EchoRequest = codec::decode_request(req)?;
        self.seen.lock().unwrap().push(req.message.clone());
        if self.sleep_ms > 0 {
            fibrpc::fiber::sleep(Duration::from_millis(self.sleep_ms)).unwrap();
        }
        if let Some(code) = self.fail_code {
            return Err(RpcError::new(code, "this replica always fails"));
        }
        Ok(codec::encode(&EchoResponse {
            message: req.message,
        }))
    }
}

struct Running {
    _server: Server,
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(fail_code: Option<i32>, sleep_ms: u64) -> Running {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server::new(ServerOptions::default());
        server
            .add_service(Replica {
                fail_code,
                sleep_ms,
                seen: seen.clone(),
            })
            .unwrap();
        server.start("127.0.0.1:0").unwrap();
        let addr = server.listen_addr().unwrap();
        Running {
            _server: server,
            addr,
            seen,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn list_url(replicas: &[&Running]) -> String {
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.to_string()).collect();
    format!("list://{}", addrs.join(","))
}

/// Retries what the server answers with `code` (bRPC's default retries
/// `ELIMIT`, fibrpc's does not), while `attempt < up_to`; keeps the
/// attempts it was asked about.
struct RetryCode {
    code: i32,
    up_to: u32,
    backoff: Duration,
    asked: Mutex<Vec<(u32, i32, Option<SocketAddr>)>>,
}

impl RetryCode {
    fn new(code: i32, up_to: u32) -> Arc<RetryCode> {
        Arc::new(RetryCode {
            code,
            up_to,
            backoff: Duration::ZERO,
            asked: Mutex::new(Vec::new()),
        })
    }
}

impl RetryPolicy for RetryCode {
    fn do_retry(&self, a: &FailedAttempt<'_>) -> bool {
        self.asked
            .lock()
            .unwrap()
            .push((a.attempt, a.error.code, a.server));
        a.error.code == self.code && a.attempt < self.up_to
    }
    fn backoff(&self, _: &FailedAttempt<'_>) -> Duration {
        self.backoff
    }
}

fn options() -> ChannelOptions {
    ChannelOptions {
        timeout: Some(Duration::from_secs(2)),
        max_retry: 5,
        ..ChannelOptions::default()
    }
}

#[test]
fn a_custom_policy_decides_which_answers_are_retried() {
    let r = Running::start(Some(errno::ELIMIT), 0);
    // The default policy: an error the server answered is final.
    let ch = Channel::new(r.addr, options()).unwrap();
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, &req("default")).unwrap_err();
    assert_eq!(e.code, errno::ELIMIT);
    assert_eq!(cntl.retried_count(), 0);
    assert_eq!(r.seen().len(), 1);

    // The channel's policy: retried until its third attempt.
    let policy = RetryCode::new(errno::ELIMIT, 3);
    let ch = Channel::new(
        r.addr,
        ChannelOptions {
            retry_policy: Some(policy.clone()),
            ..options()
        },
    )
    .unwrap();
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, &req("channel")).unwrap_err();
    assert_eq!(e.code, errno::ELIMIT);
    assert_eq!(cntl.retried_count(), 2);
    let asked: Vec<_> = policy.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![
            (1, errno::ELIMIT, Some(r.addr)),
            (2, errno::ELIMIT, Some(r.addr)),
            (3, errno::ELIMIT, Some(r.addr)),
        ]
    );
    assert_eq!(cntl.attempt_errors().len(), 2);
    assert_eq!(r.seen().iter().filter(|m| *m == "channel").count(), 3);

    // The controller's policy overrides the channel's; max_retry still
    // bounds it.
    let mut cntl = Controller::new();
    cntl.set_retry_policy(RetryCode::new(errno::ELIMIT, 100));
    cntl.set_max_retry(1);
    assert!(echo(&ch, &mut cntl, &req("call")).is_err());
    assert_eq!(cntl.retried_count(), 1);
    assert_eq!(r.seen().iter().filter(|m| *m == "call").count(), 2);
}

#[test]
fn a_backoff_that_would_pass_the_deadline_ends_the_retries() {
    let r = Running::start(Some(errno::ELIMIT), 0);
    let policy = Arc::new(RetryCode {
        code: errno::ELIMIT,
        up_to: 10,
        backoff: Duration::from_secs(30),
        asked: Mutex::new(Vec::new()),
    });
    let ch = Channel::new(
        r.addr,
        ChannelOptions {
            retry_policy: Some(policy),
            ..options()
        },
    )
    .unwrap();
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, &req("x")).unwrap_err();
    assert_eq!(e.code, errno::ELIMIT);
    assert!(e.text.contains("backoff"), "{e}");
    assert_eq!(cntl.retried_count(), 0);
    assert_eq!(r.seen().len(), 1);
}

#[test]
fn retries_go_to_replicas_the_call_has_not_tried() {
    let bad = Running::start(Some(errno::ELIMIT), 0);
    let good = [Running::start(None, 0), Running::start(None, 0)];
    let url = list_url(&[&bad, &good[0], &good[1]]);
    // Random picks: without the tried replicas excluded, a third of the
    // retries would land on the failing replica again.
    let ch = Channel::with_naming(
        &url,
        "random",
        ChannelOptions {
            retry_policy: Some(RetryCode::new(errno::ELIMIT, 10)),
            ..options()
        },
    )
    .unwrap();
    for i in 0..60 {
        let mut cntl = Controller::new();
        let msg = format!("m{i}");
        let r = echo(&ch, &mut cntl, &req(&msg));
        assert!(r.is_ok(), "{:?}", cntl.error());
        assert_ne!(cntl.remote_side(), Some(bad.addr));
        let attempts = cntl.attempts();
        assert_eq!(attempts.len() as u32, cntl.retried_count() + 1);
        if cntl.retried_count() > 0 {
            assert_eq!(attempts[0].server, Some(bad.addr));
            assert!(
                matches!(&attempts[0].status, AttemptStatus::Failed(e) if e.code == errno::ELIMIT)
            );
        }
        let last = attempts.last().unwrap();
        assert_eq!(last.status, AttemptStatus::Answered);
        assert_eq!(last.server, cntl.remote_side());
    }
    let seen = bad.seen();
    assert!(!seen.is_empty(), "the failing replica was never picked");
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "a call went twice to the failing replica"
    );
}

#[test]
fn a_backup_request_goes_to_another_replica() {
    let slow = Running::start(None, 400);
    let fast = Running::start(None, 0);
    // Random picks: without the first attempt's replica excluded, half
    // of the backup requests would go to the slow replica again.
    let ch = Channel::with_naming(
        &list_url(&[&slow, &fast]),
        "random",
        ChannelOptions {
            backup_request: Some(Duration::from_millis(30)),
            ..options()
        },
    )
    .unwrap();
    let mut backed_up = 0;
    for i in 0..16 {
        let mut cntl = Controller::new();
        let r = echo(&ch, &mut cntl, &req(&format!("b{i}")));
        assert!(r.is_ok(), "{:?}", cntl.error());
        assert_eq!(cntl.remote_side(), Some(fast.addr), "{:?}", cntl.attempts());
        if cntl.has_backup_request() {
            backed_up += 1;
            let attempts = cntl.attempts();
            assert_eq!(attempts.len(), 2, "{attempts:?}");
            assert_eq!(attempts[0].server, Some(slow.addr));
            assert_eq!(attempts[0].status, AttemptStatus::Superseded);
            assert_eq!(attempts[1].server, Some(fast.addr));
            assert_eq!(attempts[1].status, AttemptStatus::Answered);
            // Usually the backup (the first went to the slow replica);
            // on a loaded machine the fast one may be backed up too.
            assert_ne!(attempts[0].backup, attempts[1].backup);
        }
        assert_eq!(cntl.retried_count(), 0);
    }
    assert!(backed_up > 0, "no call started on the slow replica");
    // The slow replica saw only first attempts: no backup went there.
    assert_eq!(slow.seen().len(), backed_up);
}

#[test]
fn the_attempts_name_each_server_and_how_it_ended() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let live = Running::start(None, 0);
    let url = format!("list://{dead},{}", live.addr);
    let ch = Channel::with_naming(&url, "rr", options()).unwrap();
    let mut saw_retry = false;
    for i in 0..4 {
        let mut cntl = Controller::new();
        echo(&ch, &mut cntl, &req(&format!("a{i}"))).unwrap();
        let attempts = cntl.attempts();
        if cntl.retried_count() == 1 {
            saw_retry = true;
            assert_eq!(attempts.len(), 2, "{attempts:?}");
            assert_eq!(attempts[0].server, Some(dead));
            assert!(
                matches!(&attempts[0].status, AttemptStatus::Failed(e) if e.code == libc::ECONNREFUSED),
                "{attempts:?}"
            );
        } else {
            assert_eq!(attempts.len(), 1, "{attempts:?}");
        }
        let last = attempts.last().unwrap();
        assert_eq!(last.server, Some(live.addr));
        assert_eq!(last.status, AttemptStatus::Answered);
        assert_eq!(cntl.remote_side(), Some(live.addr));
    }
    assert!(saw_retry, "the dead replica was never picked");
}

/// Calls `ch` `n` times; every call fails.
fn fail_calls(ch: &Channel, n: usize) {
    for i in 0..n {
        let mut cntl = Controller::new();
        assert!(echo(ch, &mut cntl, &req(&format!("f{i}"))).is_err());
    }
}

fn total_seen(replicas: &[Running]) -> usize {
    replicas.iter().map(|r| r.seen().len()).sum()
}

#[test]
fn the_retry_budget_caps_retries_when_every_replica_fails() {
    const CALLS: usize = 200;
    // Answered "stopping" (`ELOGOFF`): retried by the default policy,
    // whatever the call.
    let replicas: Vec<Running> = (0..3)
        .map(|_| Running::start(Some(errno::ELOGOFF), 0))
        .collect();
    let url = list_url(&replicas.iter().collect::<Vec<_>>());
    let budget = RetryBudget {
        max_tokens: 10,
        token_ratio: 0.1,
    };
    let ch = Channel::with_naming(
        &url,
        "rr",
        ChannelOptions {
            max_retry: 3,
            retry_budget: Some(budget),
            ..options()
        },
    )
    .unwrap();
    fail_calls(&ch, CALLS);
    let attempts = total_seen(&replicas);
    eprintln!("{attempts} attempts for {CALLS} calls under the budget");
    let cap = CALLS + (CALLS as f64 * budget.token_ratio) as usize + budget.max_tokens as usize;
    assert!(attempts <= cap, "{attempts} attempts > {cap}");
    assert!(attempts > CALLS, "no retry at all");

    // Without a budget every call takes its four attempts.
    let before = total_seen(&replicas);
    let ch = Channel::with_naming(
        &url,
        "rr",
        ChannelOptions {
            max_retry: 3,
            retry_budget: None,
            ..options()
        },
    )
    .unwrap();
    fail_calls(&ch, 50);
    assert_eq!(total_seen(&replicas) - before, 50 * 4);
}

#[test]
fn a_refused_retry_says_the_budget_is_spent() {
    let r = Running::start(Some(errno::ELOGOFF), 0);
    let ch = Channel::new(
        r.addr,
        ChannelOptions {
            max_retry: 3,
            retry_budget: Some(RetryBudget {
                max_tokens: 1,
                token_ratio: 0.0,
            }),
            ..options()
        },
    )
    .unwrap();
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, &req("x")).unwrap_err();
    assert_eq!(cntl.retried_count(), 1);
    assert!(e.text.contains("retry budget"), "{e}");
    assert_eq!(r.seen().len(), 2);
}
