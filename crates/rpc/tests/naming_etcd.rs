//! The etcd naming service and server registration against a real etcd
//! v3 (Debian's `etcd-server`), started on loopback ports with a
//! temporary data directory.

mod etcd_common;

use std::time::{Duration, Instant};

use etcd_common::{free_port, wait_until, Etcd};
use fibrpc::channel::naming::{naming_service_for_url, EtcdClient, NamingWatcher, ServerNode};
use fibrpc::{Server, ServerOptions};

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
