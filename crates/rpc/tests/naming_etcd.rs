//! The etcd naming service and server registration against a real etcd
//! v3 (Debian's `etcd-server`), started on loopback ports with a
//! temporary data directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fibrpc::channel::naming::{naming_service_for_url, EtcdClient, NamingWatcher, ServerNode};
use fibrpc::{Server, ServerOptions};

const ETCD: &str = "/usr/bin/etcd";

/// Polls `cond` every 10 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real etcd on 127.0.0.1; killed and its directory removed on drop.
struct Etcd {
    dir: PathBuf,
    port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    fn new(name: &str) -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (apt-get install -y etcd-server); \
             the etcd naming tests need a real etcd"
        );
        let dir = std::env::temp_dir().join(format!("fibrpc-etcd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut etcd = Etcd {
            dir,
            port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        etcd.start();
        etcd
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts etcd (again, on the same data directory and ports) and
    /// waits until it answers.
    fn start(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .unwrap();
        let child = Command::new(ETCD)
            .arg("--name=fibrpc-test")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=fibrpc-test={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run etcd");
        self.child = Some(child);
        let client = EtcdClient::new(&self.endpoint()).unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || client.range_prefix("/").is_ok()),
            "etcd did not answer within 20 s; its log: {}",
            std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
        );
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn registered(addr: std::net::SocketAddr) -> impl Fn(&[ServerNode]) -> bool {
    move |list| list.iter().any(|n| n.addr == addr)
}

#[test]
fn registration_is_seen_and_survives_an_etcd_restart() {
    let mut etcd = Etcd::new("cluster");
    let url = format!("etcd://{}/fibrpc/echo", etcd.endpoint());
    let watcher = NamingWatcher::shared(&url).unwrap();
    assert!(watcher.servers().is_empty());

    // A server registers at start: seen within 1 s.
    let mut server = Server::new(ServerOptions {
        register: Some(url.clone()),
        ..ServerOptions::default()
    });
    server.start("127.0.0.1:0").unwrap();
    let addr = server.listen_addr().unwrap();
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || registered(addr)(
            &watcher.servers()
        )),
        "registration not seen within 1 s: {:?}",
        watcher.servers()
    );
    eprintln!("registration seen after {:?}", t0.elapsed());

    // Keys of other prefixes do not count; a value is the tag; a key
    // that is no address is skipped.
    let client = EtcdClient::new(&etcd.endpoint()).unwrap();
    client.put("/fibrpc/other/127.0.0.1:9", "", 0).unwrap();
    client.put("/fibrpc/echo/127.0.0.1:7", "canary", 0).unwrap();
    client.put("/fibrpc/echo/garbage", "", 0).unwrap();
    let canary = ServerNode {
        addr: "127.0.0.1:7".parse().unwrap(),
        tag: "canary".into(),
    };
    assert!(wait_until(Duration::from_secs(1), || watcher
        .servers()
        .contains(&canary)));
    assert_eq!(watcher.servers().len(), 2, "{:?}", watcher.servers());

    // Leases through the gateway: renewed, then gone once revoked.
    let lease = client.grant(30).unwrap();
    assert_eq!(client.keepalive(lease).unwrap(), 30);
    client.revoke(lease).unwrap();
    assert!(client.keepalive(lease).map_or(true, |ttl| ttl <= 0));

    // etcd goes away: the last list stays.
    etcd.kill();
    let before = watcher.servers();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        watcher.servers(),
        before,
        "the last list stays while etcd is down"
    );

    // etcd comes back on the same data: updates resume.
    etcd.start();
    client.delete("/fibrpc/echo/127.0.0.1:7").unwrap();
    let t0 = Instant::now();
    assert!(
        wait_until(Duration::from_secs(1), || !watcher
            .servers()
            .contains(&canary)),
        "a change after the restart not seen within 1 s: {:?}",
        watcher.servers()
    );
    eprintln!("change after restart seen after {:?}", t0.elapsed());
    assert!(
        registered(addr)(&watcher.servers()),
        "the lease survived the restart"
    );

    // The server deregisters at stop: gone within 1 s.
    server.stop();
    server.join();
    assert!(
        wait_until(Duration::from_secs(1), || !registered(addr)(
            &watcher.servers()
        )),
        "deregistration not seen within 1 s: {:?}",
        watcher.servers()
    );
    let (_, kvs) = client.range_prefix("/fibrpc/echo/").unwrap();
    assert_eq!(kvs.len(), 1, "only the garbage key is left");
}

#[test]
fn bad_urls_and_a_down_etcd_fail_clearly_and_soon() {
    for (url, why) in [
        ("etcd://127.0.0.1:2379", "no key prefix"),
        ("etcd://127.0.0.1:2379/", "no key prefix"),
        ("etcd://127.0.0.1/fibrpc", "no host:port"),
        ("etcd://:2379/fibrpc", "no host:port"),
    ] {
        let e = naming_service_for_url(url).err().expect(url);
        assert!(e.text.contains(why), "{url}: {e}");
    }

    // Nothing listens on this port: an error within a few seconds.
    let down = format!("etcd://127.0.0.1:{}/fibrpc/echo", free_port());
    let t0 = Instant::now();
    let e = NamingWatcher::shared(&down).unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert!(e.text.contains("etcd at 127.0.0.1"), "{e}");

    let t0 = Instant::now();
    let mut server = Server::new(ServerOptions {
        register: Some(down),
        ..ServerOptions::default()
    });
    let e = server.start("127.0.0.1:0").unwrap_err();
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t0.elapsed()
    );
    assert!(e.text.contains("cannot register"), "{e}");
    assert!(
        server.listen_addr().is_none(),
        "a failed start leaves nothing running"
    );

    let mut server = Server::new(ServerOptions {
        register: Some("zk://127.0.0.1:2181/x".into()),
        ..ServerOptions::default()
    });
    let e = server.start("127.0.0.1:0").unwrap_err();
    assert_eq!(e.code, libc::EINVAL);
    assert!(e.text.contains("only etcd://"), "{e}");
}
