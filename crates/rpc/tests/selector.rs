//! The call engine's seam "choose the server for this attempt": a
//! `ServerSelector` of the test's own sees every attempt, learns which
//! servers failed, and a retry goes elsewhere.

mod rpc_common;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use fibrpc::channel::{AttemptOutcome, SelectInput, ServerSelector};
use fibrpc::{Channel, ChannelOptions, Controller, RpcError};
use rpc_common::{echo, req, start_server};

/// Picks the first of its servers that no earlier attempt of the call
/// failed on, and records every outcome.
struct FirstHealthy {
    servers: Vec<SocketAddr>,
    outcomes: Mutex<Vec<(SocketAddr, bool)>>,
}

impl ServerSelector for FirstHealthy {
    fn select(&self, call: &SelectInput<'_>) -> Result<SocketAddr, RpcError> {
        self.servers
            .iter()
            .copied()
            .find(|s| !call.excluded.contains(s))
            // bRPC's "no server available" (EHOSTDOWN): not retryable.
            .ok_or_else(|| RpcError::new(libc::EHOSTDOWN, "no server left"))
    }

    fn feedback(&self, outcome: &AttemptOutcome<'_>) {
        self.outcomes
            .lock()
            .unwrap()
            .push((outcome.server, outcome.error.is_none()));
    }
}

/// An address nothing listens on (bound, then closed).
fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn a_retry_goes_to_the_server_the_selector_picks_next() {
    let (server, calls) = start_server(Default::default());
    let live = server.listen_addr().unwrap();
    let dead = dead_addr();
    let selector = Arc::new(FirstHealthy {
        servers: vec![dead, live],
        outcomes: Mutex::default(),
    });
    let ch = Channel::with_selector(selector.clone(), ChannelOptions::default());

    let mut cntl = Controller::new();
    let resp = echo(&ch, &mut cntl, &req("over there")).unwrap();
    assert_eq!(resp.message, "over there");
    assert_eq!(cntl.retried_count(), 1);
    assert_eq!(cntl.remote_side(), Some(live));
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The selector heard of both attempts, the failed one first.
    assert_eq!(
        *selector.outcomes.lock().unwrap(),
        vec![(dead, false), (live, true)]
    );
}

#[test]
fn a_selector_with_no_server_left_fails_the_call() {
    let dead = dead_addr();
    let selector = Arc::new(FirstHealthy {
        servers: vec![dead],
        outcomes: Mutex::default(),
    });
    let ch = Channel::with_selector(selector, ChannelOptions::default());
    let mut cntl = Controller::new();
    let e = echo(&ch, &mut cntl, &req("nowhere")).unwrap_err();
    assert_eq!(e.code, libc::EHOSTDOWN, "{e}");
    assert!(e.text.contains("no server left"), "{e}");
    // The first failure is in the history.
    assert_eq!(
        cntl.attempt_errors().len(),
        2,
        "{:?}",
        cntl.attempt_errors()
    );
}

#[test]
fn a_channel_over_more_servers_than_it_finds_without_a_lock_reaches_each() {
    // Nine dead servers before the live one: each call's attempts make
    // (then find again) connections to ten servers, the last ones past
    // the few the engine keeps outside its map.
    let (server, calls) = start_server(Default::default());
    let live = server.listen_addr().unwrap();
    let mut servers: Vec<SocketAddr> = (0..9).map(|_| dead_addr()).collect();
    servers.push(live);
    let selector = Arc::new(FirstHealthy {
        servers: servers.clone(),
        outcomes: Mutex::default(),
    });
    let options = ChannelOptions {
        max_retry: 9,
        ..Default::default()
    };
    let ch = Channel::with_selector(selector.clone(), options);
    for i in 1..=2 {
        let mut cntl = Controller::new();
        let resp = echo(&ch, &mut cntl, &req("past the dead")).unwrap();
        assert_eq!(resp.message, "past the dead");
        assert_eq!(cntl.retried_count(), 9);
        assert_eq!(cntl.remote_side(), Some(live));
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), i);
    }
    let outcomes = selector.outcomes.lock().unwrap();
    let tried: Vec<SocketAddr> = outcomes.iter().map(|o| o.0).collect();
    assert_eq!(tried, [servers.clone(), servers].concat());
    assert!(outcomes.iter().all(|&(s, ok)| ok == (s == live)));
}
