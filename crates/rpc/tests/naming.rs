//! Naming services without etcd: list parsing, files reloaded when they
//! change, DNS, the shared watcher and user-written services.

// For its `wait_until` (no etcd is started here).
mod etcd_common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_common::wait_until;
use fibrpc::channel::naming::{
    naming_service_for_url, parse_server_node, ListNamingService, NamingService,
    NamingServiceActions, NamingWatcher, ServerNode,
};
use fibrpc::RpcError;

fn node(addr: &str, tag: &str) -> ServerNode {
    ServerNode {
        addr: addr.parse().unwrap(),
        tag: tag.to_string(),
    }
}

/// A fresh file path under the temp directory (removed on drop).
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempFile(
            std::env::temp_dir().join(format!("fibrpc-naming-{}-{n}-{name}", std::process::id())),
        )
    }

    /// Replaces the file at once (a rename), as the docs advise.
    fn write(&self, text: &str) {
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.0).unwrap();
    }

    fn url(&self) -> String {
        format!("file://{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn entries_with_and_without_tags() {
    assert_eq!(
        parse_server_node("127.0.0.1:8000").unwrap(),
        Some(node("127.0.0.1:8000", ""))
    );
    assert_eq!(
        parse_server_node("  127.0.0.1:8001   shard 1  ").unwrap(),
        Some(node("127.0.0.1:8001", "shard 1"))
    );
    assert_eq!(
        parse_server_node("[::1]:8002 v6").unwrap(),
        Some(node("[::1]:8002", "v6"))
    );
    assert_eq!(parse_server_node("   ").unwrap(), None);
    let localhost = parse_server_node("localhost:8003").unwrap().unwrap();
    assert!(localhost.addr.ip().is_loopback());
    assert_eq!(localhost.addr.port(), 8003);

    let list = ListNamingService::parse("127.0.0.1:1,127.0.0.1:2 a, ,127.0.0.1:3,").unwrap();
    assert_eq!(
        list.servers(),
        [
            node("127.0.0.1:1", ""),
            node("127.0.0.1:2", "a"),
            node("127.0.0.1:3", "")
        ]
    );
}

#[test]
fn malformed_entries_are_clear_errors() {
    for (entry, why) in [
        ("127.0.0.1", "no port"),
        ("127.0.0.1:99999", "port"),
        ("127.0.0.1:http", "port"),
        ("127.0.0.1:0", "port 0"),
        (":8000", "no host"),
        ("no-such-host.invalid:80", "cannot resolve"),
    ] {
        let e = parse_server_node(entry).unwrap_err();
        assert_eq!(e.code, libc::EINVAL, "{entry}: {e}");
        assert!(
            e.text.contains(entry) && e.text.contains(why),
            "{entry}: {e}"
        );
    }
    // One bad entry fails a hand-written list, naming the entry.
    let e = naming_service_for_url("list://127.0.0.1:1,127.0.0.1")
        .err()
        .unwrap();
    assert!(
        e.text.contains("\"127.0.0.1\"") && e.text.contains("no port"),
        "{e}"
    );
    let e = naming_service_for_url("zk://127.0.0.1:2181/x")
        .err()
        .unwrap();
    assert!(e.text.contains("unknown naming service"), "{e}");
    let e = naming_service_for_url("dns://localhost").err().unwrap();
    assert!(e.text.contains("no port"), "{e}");
}

#[test]
fn empty_list_and_duplicates() {
    let w = NamingWatcher::shared("list://").unwrap();
    assert!(w.servers().is_empty());
    assert_ne!(w.version(), 0, "an empty list is a list");

    // The same address and tag once; another tag is another server.
    let w = NamingWatcher::shared(
        "list://127.0.0.1:7002,127.0.0.1:7001,127.0.0.1:7001,127.0.0.1:7001 b,127.0.0.1:7001 b",
    )
    .unwrap();
    assert_eq!(
        *w.servers(),
        [
            node("127.0.0.1:7001", ""),
            node("127.0.0.1:7001", "b"),
            node("127.0.0.1:7002", "")
        ]
    );
}

#[test]
fn a_plain_address_is_one_server() {
    let w = NamingWatcher::shared("127.0.0.1:7100").unwrap();
    assert_eq!(*w.servers(), [node("127.0.0.1:7100", "")]);
}

#[test]
fn one_watcher_per_url_while_used() {
    let url = "list://127.0.0.1:7200,127.0.0.1:7201";
    let a = NamingWatcher::shared(url).unwrap();
    let b = NamingWatcher::shared(url).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let other = NamingWatcher::shared("list://127.0.0.1:7200").unwrap();
    assert!(!Arc::ptr_eq(&a, &other));
    let weak = Arc::downgrade(&a);
    drop((a, b));
    assert!(
        weak.upgrade().is_none(),
        "the registry holds no strong reference"
    );
    let c = NamingWatcher::shared(url).unwrap();
    assert_eq!(c.servers().len(), 2);
}

#[test]
fn file_is_reloaded_when_it_changes() {
    let file = TempFile::new("servers");
    file.write(
        "# the echo cluster\n127.0.0.1:7301\n\n127.0.0.1:7302 canary # trailing comment\nnot-an-entry\n",
    );
    let w = NamingWatcher::shared(&file.url()).unwrap();
    assert_eq!(
        *w.servers(),
        [node("127.0.0.1:7301", ""), node("127.0.0.1:7302", "canary")],
        "comments, blank and malformed lines are skipped"
    );
    let changes = Arc::new(Mutex::new(Vec::new()));
    let seen = changes.clone();
    let _handle = w.watch(move |c| {
        seen.lock()
            .unwrap()
            .push((c.added.to_vec(), c.removed.to_vec()));
    });

    file.write("127.0.0.1:7302 canary\n127.0.0.1:7303\n");
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || w.servers().len() == 2
            && w.servers()[1] == node("127.0.0.1:7303", "")),
        "the change is seen within 1 s: {:?}",
        w.servers()
    );
    eprintln!("file change seen after {:?}", t0.elapsed());
    let changes = changes.lock().unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        changes[0].0.len(),
        2,
        "the observer starts with the whole list"
    );
    assert_eq!(
        changes[1],
        (
            vec![node("127.0.0.1:7303", "")],
            vec![node("127.0.0.1:7301", "")]
        )
    );
}

#[test]
fn a_file_that_goes_missing_keeps_the_last_list() {
    let file = TempFile::new("vanishing");
    file.write("127.0.0.1:7401\n");
    let w = NamingWatcher::shared(&file.url()).unwrap();
    let version = w.version();
    std::fs::remove_file(&file.0).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(*w.servers(), [node("127.0.0.1:7401", "")]);
    assert_eq!(w.version(), version);
    // And comes back.
    file.write("127.0.0.1:7402\n");
    assert!(wait_until(Duration::from_secs(1), || *w.servers()
        == [node("127.0.0.1:7402", "")]));
}

#[test]
fn missing_file_is_a_clear_error() {
    let file = TempFile::new("absent");
    let e = NamingWatcher::shared(&file.url()).unwrap_err();
    assert_eq!(e.code, libc::ENOENT, "{e}");
    assert!(e.text.contains(&file.0.display().to_string()), "{e}");
    let e = naming_service_for_url("file://").err().unwrap();
    assert!(e.text.contains("needs a path"), "{e}");
}

#[test]
fn dns_resolves_localhost() {
    let w = NamingWatcher::shared("dns://localhost:7501").unwrap();
    let servers = w.servers();
    assert!(!servers.is_empty());
    assert!(
        servers
            .iter()
            .all(|n| n.addr.ip().is_loopback() && n.addr.port() == 7501 && n.tag.is_empty()),
        "{servers:?}"
    );
    let e = NamingWatcher::shared("dns://no-such-host.invalid:80").unwrap_err();
    assert!(e.text.contains("cannot resolve"), "{e}");
}

/// A user's naming service: lists pushed from the test.
struct Pushed(Arc<Mutex<Vec<Vec<ServerNode>>>>);

impl NamingService for Pushed {
    fn run(&mut self, actions: &NamingServiceActions) -> Result<(), RpcError> {
        while !actions.stopped() {
            let lists: Vec<_> = self.0.lock().unwrap().drain(..).collect();
            for l in lists {
                actions.reset_servers(l);
            }
            actions.wait(Duration::from_millis(10));
        }
        Ok(())
    }
}

#[test]
fn user_naming_service_and_observers() {
    let queue = Arc::new(Mutex::new(vec![vec![node("127.0.0.1:7601", "")]]));
    let w = NamingWatcher::start("pushed", Box::new(Pushed(queue.clone()))).unwrap();
    assert_eq!(*w.servers(), [node("127.0.0.1:7601", "")]);

    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let handle = w.watch(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The same list again is no change.
    let v = w.version();
    queue.lock().unwrap().push(vec![node("127.0.0.1:7601", "")]);
    queue.lock().unwrap().push(vec![node("127.0.0.1:7602", "")]);
    assert!(wait_until(Duration::from_secs(5), || w.version() != v));
    assert!(wait_until(Duration::from_secs(5), || calls
        .load(Ordering::SeqCst)
        == 2));
    assert_eq!(w.version(), v + 1);

    drop(handle);
    queue.lock().unwrap().push(vec![]);
    assert!(wait_until(Duration::from_secs(5), || w
        .servers()
        .is_empty()));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a dropped handle is not called"
    );
}

/// A service that fails before its first list.
struct Broken;

impl NamingService for Broken {
    fn run(&mut self, _: &NamingServiceActions) -> Result<(), RpcError> {
        Err(RpcError::new(libc::ECONNREFUSED, "registry unreachable"))
    }
}

#[test]
fn a_service_failing_at_start_fails_the_watcher() {
    let e = NamingWatcher::start("broken", Box::new(Broken)).unwrap_err();
    assert_eq!(e.code, libc::ECONNREFUSED);
    assert!(
        e.text.contains("broken") && e.text.contains("registry unreachable"),
        "{e}"
    );
}

#[test]
fn server_node_display() {
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert_eq!(ServerNode::new(a).to_string(), "127.0.0.1:1");
    assert_eq!(node("127.0.0.1:1", "t").to_string(), "127.0.0.1:1 t");
}
