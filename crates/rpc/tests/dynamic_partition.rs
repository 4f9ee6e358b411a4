//! `DynamicPartitionChannel` against echo servers on 127.0.0.1 listed in
//! a `file://` naming service whose tags move a service from 3
//! partitions to 4, as bRPC's `combo_channel.md` walks through: the
//! calls are split between the schemes by their capacity (complete
//! copies), follow the file as it changes, and leave a scheme once it is
//! incomplete.

mod rpc_common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc::channel::combo::{
    DynamicPartitionChannel, PartitionChannelOptions, SlashPartitionParser,
};
use fibrpc::{ChannelOptions, Controller, RpcChannel, Server};
use rpc_common::{req, start_server, EchoResponse, SERVICE};

/// Calls per measurement.
const CALLS: usize = 600;

/// The naming file (replaced at once on each write; removed on drop).
struct ServerList(PathBuf);

impl ServerList {
    fn new() -> ServerList {
        let path =
            std::env::temp_dir().join(format!("fibrpc-dynpart-{}-server_list", std::process::id()));
        ServerList(path)
    }

    fn write(&self, lines: &[String]) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, lines.join("\n")).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }
}

impl Drop for ServerList {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Replica {
    _server: Server,
    calls: Arc<AtomicUsize>,
    addr: std::net::SocketAddr,
}

impl Replica {
    fn start() -> Replica {
        let (server, calls) = start_server(Default::default());
        let addr = server.listen_addr().unwrap();
        Replica {
            _server: server,
            calls,
            addr,
        }
    }

    /// Its entries: partitions `0/m` .. `(m-1)/m`, but `skip`.
    fn entries(&self, m: usize, skip: Option<usize>) -> Vec<String> {
        (0..m)
            .filter(|&i| Some(i) != skip)
            .map(|i| format!("{} {i}/{m}", self.addr))
            .collect()
    }

    fn take_calls(&self) -> usize {
        self.calls.swap(0, Ordering::Relaxed)
    }
}

/// Waits (bounded) until the channel's schemes are `want`.
fn wait_schemes(ch: &DynamicPartitionChannel, want: &[(usize, usize)]) {
    let end = Instant::now() + Duration::from_secs(10);
    while ch.schemes() != want {
        assert!(
            Instant::now() < end,
            "schemes {:?}, want {want:?}",
            ch.schemes()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes `CALLS` calls, all successful.
fn call_all(ch: &DynamicPartitionChannel) {
    for i in 0..CALLS {
        let mut cntl = Controller::new();
        let msg = format!("m{i}");
        let resp: EchoResponse = ch
            .call(SERVICE, "Echo", &mut cntl, &req(&msg))
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(resp.message, msg);
    }
}

/// The share of the calls that went to the 3-partition scheme, from the
/// sub-calls each server took (3 per call there, 4 in the other).
fn share_of_three(three: &Replica, four: &[&Replica]) -> f64 {
    let via_three = three.take_calls();
    let via_four: usize = four.iter().map(|r| r.take_calls()).sum();
    assert_eq!(via_three % 3, 0, "a call reached only some partitions");
    assert_eq!(via_four % 4, 0, "a call reached only some partitions");
    assert_eq!(via_three / 3 + via_four / 4, CALLS);
    (via_three / 3) as f64 / CALLS as f64
}

#[test]
fn calls_follow_the_schemes_capacities_as_the_list_changes() {
    let [a, b, c] = [Replica::start(), Replica::start(), Replica::start()];
    let list = ServerList::new();
    list.write(&a.entries(3, None));
    let options = PartitionChannelOptions {
        channel: ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            ..ChannelOptions::default()
        },
        fail_limit: Some(1),
        ..PartitionChannelOptions::default()
    };
    let url = format!("file://{}", list.0.display());
    let ch =
        DynamicPartitionChannel::new(Arc::new(SlashPartitionParser), &url, "rr", options).unwrap();
    assert_eq!(ch.schemes(), [(3, 1)]);
    call_all(&ch);
    assert_eq!(share_of_three(&a, &[&b, &c]), 1.0);

    // A 4-partition copy on b: capacities 1 and 1, calls split evenly.
    let mut lines = a.entries(3, None);
    lines.extend(b.entries(4, None));
    list.write(&lines);
    wait_schemes(&ch, &[(3, 1), (4, 1)]);
    call_all(&ch);
    let share = share_of_three(&a, &[&b, &c]);
    assert!((0.4..=0.6).contains(&share), "3-partition share {share}");

    // A second 4-partition copy on c: capacity 2, a third of the calls
    // stay on the 3 partitions, and b and c share the rest.
    lines.extend(c.entries(4, None));
    list.write(&lines);
    wait_schemes(&ch, &[(3, 1), (4, 2)]);
    call_all(&ch);
    let (on_b, on_c) = (
        b.calls.load(Ordering::Relaxed),
        c.calls.load(Ordering::Relaxed),
    );
    let share = share_of_three(&a, &[&b, &c]);
    assert!((0.23..=0.43).contains(&share), "3-partition share {share}");
    let diff = on_b.abs_diff(on_c) as f64 / (on_b + on_c) as f64;
    assert!(diff < 0.2, "b {on_b}, c {on_c}");

    // Partition 2/3 leaves: the 3-partition scheme is incomplete and
    // takes nothing.
    let mut lines = a.entries(3, Some(2));
    lines.extend(b.entries(4, None));
    lines.extend(c.entries(4, None));
    list.write(&lines);
    wait_schemes(&ch, &[(3, 0), (4, 2)]);
    call_all(&ch);
    assert_eq!(share_of_three(&a, &[&b, &c]), 0.0);

    // Only 3-partition servers, incomplete: calls fail at once, and the
    // 4-partition scheme is gone.
    list.write(&a.entries(3, Some(0)));
    wait_schemes(&ch, &[(3, 0)]);
    let mut cntl = Controller::new();
    let e = ch
        .call::<_, EchoResponse>(SERVICE, "Echo", &mut cntl, &req("x"))
        .unwrap_err();
    assert_eq!(e.code, libc::EHOSTDOWN, "{e}");
    assert_eq!(cntl.error_code(), libc::EHOSTDOWN);
}

#[test]
fn an_unknown_balancer_or_naming_service_is_an_error() {
    let parser = Arc::new(SlashPartitionParser);
    let e = DynamicPartitionChannel::new(
        parser.clone(),
        "list://127.0.0.1:1 0/1",
        "nope",
        PartitionChannelOptions::default(),
    )
    .unwrap_err();
    assert!(e.text.contains("nope"), "{e}");
    assert!(DynamicPartitionChannel::new(
        parser,
        "file:///nonexistent/fibrpc-dynpart",
        "rr",
        PartitionChannelOptions::default(),
    )
    .is_err());
}
