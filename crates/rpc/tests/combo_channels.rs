//! The combo channels against real echo servers on 127.0.0.1: a
//! `ParallelChannel`'s fan-out, merge, `fail_limit` and `success_limit`;
//! a `SelectiveChannel` over clusters retrying past a dead one; a
//! `PartitionChannel` routing by `list://` tags. Calls go through the
//! generated stub (`fibrpc_example::EchoServiceClient`), which the
//! hand-written echo service of `rpc_common` answers (same wire form).

mod rpc_common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fibrpc::channel::combo::{
    map_request, merge_response, MergeResult, ParallelChannel, ParallelChannelOptions,
    PartitionChannel, PartitionChannelOptions, SelectiveChannel, SlashPartitionParser, SubCall,
};
use fibrpc::{errno, Channel, ChannelOptions, Controller, RpcChannel, Server, ServerOptions};
use fibrpc_example::{EchoRequest, EchoResponse, EchoServiceClient};
use rpc_common::{req, Echo};

/// An echo server and its handler-call counter.
struct Replica {
    _server: Server,
    calls: Arc<AtomicUsize>,
    addr: SocketAddr,
}

impl Replica {
    fn start() -> Replica {
        let echo = Echo::default();
        let calls = echo.calls.clone();
        let mut server = Server::new(ServerOptions::default());
        server.add_service(echo).unwrap();
        server.start("127.0.0.1:0").unwrap();
        let addr = server.listen_addr().unwrap();
        Replica {
            _server: server,
            calls,
            addr,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }
}

/// An address nothing listens on (bound, then closed).
fn dead_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn channel_to(addr: SocketAddr) -> Arc<dyn RpcChannel> {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(2)),
        ..ChannelOptions::default()
    };
    Arc::new(Channel::new(addr, options).unwrap())
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
    }
}

/// Sub-channel `i` gets `"{message}{i}"`; a sub-channel whose index is
/// in `slow` sleeps 400 ms first (the test service's `sleep_ms`).
fn indexed_mapper(slow: &'static [usize]) -> Arc<dyn fibrpc::channel::combo::CallMapper> {
    Arc::new(map_request(move |i, _n, r: &EchoRequest| {
        let mut sub = req(&format!("{}{i}", r.message));
        if slow.contains(&i) {
            sub.sleep_ms = Some(400);
        }
        SubCall::message(&sub)
    }))
}

/// Concatenates the sub-responses' messages.
fn concat_merger() -> Arc<dyn fibrpc::channel::combo::ResponseMerger> {
    Arc::new(merge_response(
        |resp: &mut EchoResponse, sub: EchoResponse| {
            resp.message.push_str(&sub.message);
            MergeResult::Merged
        },
    ))
}

fn pchan(subs: &[Arc<dyn RpcChannel>], options: ParallelChannelOptions) -> ParallelChannel {
    let mut p = ParallelChannel::new(options);
    for s in subs {
        p.add_channel(s.clone(), Some(indexed_mapper(&[])), Some(concat_merger()));
    }
    p
}

#[test]
fn parallel_channel_fans_out_and_merges_in_all_three_forms() {
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let subs: Vec<_> = replicas.iter().map(|r| channel_to(r.addr)).collect();
    let client = EchoServiceClient::new(pchan(&subs, ParallelChannelOptions::default()));

    let mut cntl = Controller::new();
    let resp = client.echo(&mut cntl, &request("m")).unwrap();
    assert_eq!(resp.message, "m0m1m2");
    assert_eq!(cntl.sub_count(), 3);
    for (i, r) in replicas.iter().enumerate() {
        assert_eq!(r.calls(), 1, "replica {i}");
        let sub = cntl.sub(i).unwrap();
        assert!(!sub.failed(), "{:?}", sub.error());
        assert_eq!(sub.remote_side(), Some(r.addr));
    }

    let (tx, rx) = mpsc::channel();
    client.echo_async(Controller::new(), &request("a"), move |_, r| {
        tx.send(r.map(|r| r.message)).unwrap()
    });
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got.unwrap(), "a0a1a2");

    let (cntl, r) = fibrpc::fiber::block_on(client.echo_future(Controller::new(), &request("f")));
    assert_eq!(r.unwrap().message, "f0f1f2");
    assert_eq!(cntl.sub_count(), 3);
}

#[test]
fn the_default_merge_is_protobuf_merge_from_in_channel_order() {
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let mut p = ParallelChannel::new(ParallelChannelOptions::default());
    for r in &replicas {
        p.add_channel(channel_to(r.addr), Some(indexed_mapper(&[])), None);
    }
    // `message` is a singular field: the last sub-channel's wins.
    let resp = EchoServiceClient::new(p)
        .echo_simple(&request("x"))
        .unwrap();
    assert_eq!(resp.message, "x2");
}

#[test]
fn fail_limit_decides_whether_a_dead_sub_channel_fails_the_call() {
    let live = [Replica::start(), Replica::start()];
    let subs = vec![
        channel_to(live[0].addr),
        channel_to(dead_addr()),
        channel_to(live[1].addr),
    ];

    // Default fail_limit: the number of sub-calls — one dead is fine.
    let mut cntl = Controller::new();
    let client = EchoServiceClient::new(pchan(&subs, ParallelChannelOptions::default()));
    let resp = client.echo(&mut cntl, &request("m")).unwrap();
    assert_eq!(resp.message, "m0m2");
    assert!(cntl.sub(1).unwrap().failed());
    assert_eq!(cntl.sub(1).unwrap().error_code(), libc::ECONNREFUSED);

    // fail_limit = 1: the dead one fails the call.
    let options = ParallelChannelOptions {
        fail_limit: Some(1),
        ..ParallelChannelOptions::default()
    };
    let client = EchoServiceClient::new(pchan(&subs, options));
    let mut cntl = Controller::new();
    let e = client.echo(&mut cntl, &request("m")).unwrap_err();
    assert_eq!(e.code, errno::ETOOMANYFAILS, "{e}");
    assert!(e.text.contains("1/3 channels failed, fail_limit=1"), "{e}");
    assert!(e.text.contains("[C1]"), "{e}");
    assert_eq!(cntl.error_code(), errno::ETOOMANYFAILS);
}

#[test]
fn reaching_fail_limit_ends_the_call_without_waiting_for_slow_sub_calls() {
    let live = [Replica::start(), Replica::start()];
    let subs = vec![
        channel_to(live[0].addr),
        channel_to(dead_addr()),
        channel_to(live[1].addr),
    ];
    let options = ParallelChannelOptions {
        fail_limit: Some(1),
        ..ParallelChannelOptions::default()
    };
    let mut p = ParallelChannel::new(options);
    for s in &subs {
        // Sub-channels 0 and 2 answer after 400 ms.
        p.add_channel(s.clone(), Some(indexed_mapper(&[0, 2])), None);
    }
    let mut cntl = Controller::new();
    let e = p
        .call::<_, EchoResponse>(rpc_common::SERVICE, "Echo", &mut cntl, &request("m"))
        .unwrap_err();
    assert_eq!(e.code, errno::ETOOMANYFAILS, "{e}");
    // Decided by the refused connect, while the others still ran.
    assert_eq!(cntl.sub(0).unwrap().error_code(), errno::EPCHANFINISH);
    assert_eq!(cntl.sub(2).unwrap().error_code(), errno::EPCHANFINISH);
}

#[test]
fn success_limit_ends_the_call_at_the_first_successes() {
    let replicas: Vec<Replica> = (0..3).map(|_| Replica::start()).collect();
    let options = ParallelChannelOptions {
        success_limit: Some(1),
        ..ParallelChannelOptions::default()
    };
    let mut p = ParallelChannel::new(options);
    for r in &replicas {
        p.add_channel(
            channel_to(r.addr),
            Some(indexed_mapper(&[1, 2])),
            Some(concat_merger()),
        );
    }
    let mut cntl = Controller::new();
    let resp = EchoServiceClient::new(p)
        .echo(&mut cntl, &request("m"))
        .unwrap();
    assert_eq!(resp.message, "m0");
    assert_eq!(cntl.sub(1).unwrap().error_code(), errno::EPCHANFINISH);
}

#[test]
fn skipped_and_bad_sub_calls() {
    let r = Replica::start();
    let mut skip_all = ParallelChannel::new(ParallelChannelOptions::default());
    skip_all.add_channel(
        channel_to(r.addr),
        Some(Arc::new(map_request(|_, _, _: &EchoRequest| SubCall::Skip))),
        None,
    );
    let e = EchoServiceClient::new(skip_all)
        .echo_simple(&request("m"))
        .unwrap_err();
    assert_eq!(e.code, libc::ECANCELED, "{e}");

    let mut some_skipped = ParallelChannel::new(ParallelChannelOptions::default());
    for _ in 0..2 {
        some_skipped.add_channel(
            channel_to(r.addr),
            Some(Arc::new(map_request(|i, _, q: &EchoRequest| {
                if i == 0 {
                    SubCall::Skip
                } else {
                    SubCall::message(q)
                }
            }))),
            None,
        );
    }
    let mut cntl = Controller::new();
    let resp = EchoServiceClient::new(some_skipped)
        .echo(&mut cntl, &request("only"))
        .unwrap();
    assert_eq!(resp.message, "only");
    assert!(cntl.sub(0).is_none());
    assert!(cntl.sub(1).is_some());

    let mut bad = ParallelChannel::new(ParallelChannelOptions::default());
    bad.add_channel(
        channel_to(r.addr),
        Some(Arc::new(map_request(|_, _, _: &EchoRequest| SubCall::Bad))),
        None,
    );
    let e = EchoServiceClient::new(bad)
        .echo_simple(&request("m"))
        .unwrap_err();
    assert_eq!(e.code, errno::EREQUEST, "{e}");
    assert_eq!(r.calls(), 1, "only the unskipped sub-call ran");
}

fn cluster(url: &str) -> Arc<dyn RpcChannel> {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(2)),
        health_check_interval: Duration::from_secs(60),
        ..ChannelOptions::default()
    };
    Arc::new(Channel::with_naming(url, "rr", options).unwrap())
}

fn schan(max_retry: u32) -> SelectiveChannel {
    let options = ChannelOptions {
        timeout: Some(Duration::from_secs(2)),
        max_retry,
        ..ChannelOptions::default()
    };
    SelectiveChannel::new("rr", options).unwrap()
}

#[test]
fn selective_channel_balances_between_clusters() {
    let a = [Replica::start(), Replica::start()];
    let b = Replica::start();
    let s = schan(3);
    s.add_channel(cluster(&format!("list://{},{}", a[0].addr, a[1].addr)));
    let hb = s.add_channel(cluster(&format!("list://{}", b.addr)));
    let client = EchoServiceClient::new(s.clone());
    for i in 0..40 {
        let resp = client.echo_simple(&request(&format!("{i}"))).unwrap();
        assert_eq!(resp.message, format!("{i}"));
    }
    assert_eq!(b.calls(), 20);
    assert_eq!(a[0].calls() + a[1].calls(), 20);
    assert!(a[0].calls() > 0 && a[1].calls() > 0);

    assert!(s.remove_and_destroy_channel(hb));
    assert!(!s.remove_and_destroy_channel(hb));
    for _ in 0..10 {
        client.echo_simple(&request("x")).unwrap();
    }
    assert_eq!(b.calls(), 20, "a removed sub-channel takes no call");

    // The other forms.
    let (tx, rx) = mpsc::channel();
    client.echo_async(Controller::new(), &request("a"), move |c, r| {
        tx.send((c.sub_count(), r.map(|r| r.message))).unwrap()
    });
    let (subs, got) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((subs, got.unwrap().as_str()), (1, "a"));
    let (_, r) = fibrpc::fiber::block_on(client.echo_future(Controller::new(), &request("f")));
    assert_eq!(r.unwrap().message, "f");
}

#[test]
fn selective_channel_retries_a_dead_sub_channel_on_another() {
    let live = Replica::start();
    let dead = cluster(&format!("list://{}", dead_addr()));
    let s = schan(3);
    s.add_channel(dead.clone());
    s.add_channel(cluster(&format!("list://{}", live.addr)));
    let client = EchoServiceClient::new(s);
    let mut retried = 0;
    for _ in 0..20 {
        let mut cntl = Controller::new();
        // Not idempotent: only failures that never sent are retried.
        client.echo(&mut cntl, &request("m")).unwrap();
        retried += cntl.retried_count();
    }
    assert_eq!(live.calls(), 20);
    assert!(
        retried >= 5,
        "rr sends about half the calls to the dead one first: {retried}"
    );

    // Without retries, the dead sub-channel's calls fail.
    let s = schan(0);
    s.add_channel(dead);
    s.add_channel(cluster(&format!("list://{}", live.addr)));
    let client = EchoServiceClient::new(s);
    let failed = (0..20)
        .filter(|_| client.echo_simple(&request("m")).is_err())
        .count();
    assert!(failed >= 5, "{failed}");
}

#[test]
fn partition_channel_routes_by_tag_and_merges() {
    let p0 = [Replica::start(), Replica::start()];
    let p1 = [Replica::start(), Replica::start()];
    let other_scheme = Replica::start();
    let untagged = Replica::start();
    let url = format!(
        "list://{} 0/2,{} 1/2,{} 0/2,{} 1/2,{} 0/3,{}",
        p0[0].addr, p1[0].addr, p0[1].addr, p1[1].addr, other_scheme.addr, untagged.addr
    );
    let options = PartitionChannelOptions {
        channel: ChannelOptions {
            timeout: Some(Duration::from_secs(2)),
            ..ChannelOptions::default()
        },
        call_mapper: Some(Arc::new(map_request(|i, n, r: &EchoRequest| {
            SubCall::message(&request(&format!("{}[{i}/{n}]", r.message)))
        }))),
        response_merger: Some(concat_merger()),
        ..PartitionChannelOptions::default()
    };
    let pchan =
        PartitionChannel::new(2, Arc::new(SlashPartitionParser), &url, "rr", options).unwrap();
    assert_eq!(pchan.partition_count(), 2);
    let client = EchoServiceClient::new(pchan);
    for _ in 0..20 {
        let mut cntl = Controller::new();
        let resp = client.echo(&mut cntl, &request("k")).unwrap();
        assert_eq!(resp.message, "k[0/2]k[1/2]");
        let s0 = cntl.sub(0).unwrap().remote_side().unwrap();
        let s1 = cntl.sub(1).unwrap().remote_side().unwrap();
        assert!(p0.iter().any(|r| r.addr == s0), "{s0}");
        assert!(p1.iter().any(|r| r.addr == s1), "{s1}");
    }
    assert_eq!(p0[0].calls() + p0[1].calls(), 20);
    assert_eq!(p1[0].calls() + p1[1].calls(), 20);
    assert_eq!(p0[0].calls(), 10, "rr within the partition");
    assert_eq!(other_scheme.calls() + untagged.calls(), 0);
}

#[test]
fn a_partition_without_servers_fails_its_sub_call() {
    let r = Replica::start();
    let url = format!("list://{} 0/2", r.addr);
    let options = PartitionChannelOptions {
        fail_limit: Some(2),
        ..PartitionChannelOptions::default()
    };
    let pchan =
        PartitionChannel::new(2, Arc::new(SlashPartitionParser), &url, "rr", options).unwrap();
    let mut cntl = Controller::new();
    let resp = EchoServiceClient::new(pchan)
        .echo(&mut cntl, &request("k"))
        .unwrap();
    assert_eq!(resp.message, "k");
    assert!(cntl.sub(1).unwrap().failed());
    assert!(PartitionChannel::new(
        0,
        Arc::new(SlashPartitionParser),
        &url,
        "rr",
        PartitionChannelOptions::default()
    )
    .is_err());
}

#[test]
fn slash_parser_reads_n_of_m() {
    use fibrpc::channel::combo::{Partition, PartitionParser};
    let p = SlashPartitionParser;
    assert_eq!(
        p.parse_from_tag("1/3"),
        Some(Partition {
            index: 1,
            num_partition_kinds: 3
        })
    );
    for bad in ["", "3", "3/3", "a/2", "1/b", "-1/2"] {
        assert_eq!(p.parse_from_tag(bad), None, "{bad}");
    }
}
