//! Registering a started server in a naming service
//! ([`ServerOptions::register`](super::ServerOptions::register)): today
//! etcd, under a lease kept alive while the server runs.

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::channel::naming::{EtcdClient, EtcdTarget};
use crate::RpcError;

/// The lease's TTL: a server that dies without deregistering disappears
/// from its clients' lists after at most this long.
pub(crate) const REGISTER_TTL: Duration = Duration::from_secs(10);

/// A server's entry in etcd while it runs: the key `prefix/ip:port`
/// under a lease renewed every third of [`REGISTER_TTL`] (and granted
/// again, with the key put again, if it expired meanwhile, say while
/// etcd was down). Dropping it revokes the lease, which deletes the key.
pub(crate) struct Registration {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// The keepalive thread's view.
struct Lease {
    client: EtcdClient,
    key: String,
    id: Option<i64>,
}

impl Registration {
    /// Registers `addr` at `url` now (an error if the URL is not
    /// `etcd://host:port/prefix` or etcd does not answer within its
    /// request timeout), then keeps the lease alive in a thread.
    pub(crate) fn start(url: &str, addr: SocketAddr) -> Result<Registration, RpcError> {
        let target = url.strip_prefix("etcd://").ok_or_else(|| {
            RpcError::new(
                libc::EINVAL,
                format!("cannot register at {url:?}: only etcd://host:port/prefix is supported"),
            )
        })?;
        let target = EtcdTarget::parse(target)?;
        let client = EtcdClient::new(&target.endpoint)?;
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::new(local_ip_towards(&target.endpoint)?, addr.port())
        } else {
            addr
        };
        let mut lease = Lease {
            client,
            key: format!("{}{addr}", target.prefix),
            id: None,
        };
        lease
            .register()
            .map_err(|e| RpcError::new(e.code, format!("cannot register at {url}: {}", e.text)))?;
        tracing::info!(key = %lease.key, "registered in etcd");
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fibrpc-register".into())
            .spawn(move || lease.keep_alive(&stop2))
            .map_err(|e| {
                RpcError::new(
                    libc::EAGAIN,
                    format!("cannot start the registration thread: {e}"),
                )
            })?;
        Ok(Registration {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.1.notify_all();
        // Bounded: a request in flight and the revoke each end within the
        // client's timeout.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Lease {
    /// Grants a lease and puts the key under it.
    fn register(&mut self) -> Result<(), RpcError> {
        let id = self.client.grant(REGISTER_TTL.as_secs() as i64)?;
        if let Err(e) = self.client.put(&self.key, "", id) {
            let _ = self.client.revoke(id);
            return Err(e);
        }
        self.id = Some(id);
        Ok(())
    }

    /// Renews the lease until stopped, then revokes it.
    fn keep_alive(mut self, stop: &(Mutex<bool>, Condvar)) {
        let mut failing = false;
        loop {
            let stopped = stop.0.lock().unwrap_or_else(|e| e.into_inner());
            let (stopped, _) = stop
                .1
                .wait_timeout_while(stopped, REGISTER_TTL / 3, |s| !*s)
                .unwrap_or_else(|e| e.into_inner());
            if *stopped {
                break;
            }
            drop(stopped);
            match self.renew() {
                Ok(()) if failing => {
                    tracing::info!(key = %self.key, "etcd registration renewed again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(key = %self.key, error = %e, "cannot renew the etcd registration; retrying");
                    }
                    failing = true;
                }
            }
        }
        let done = match self.id {
            Some(id) => self.client.revoke(id),
            None => self.client.delete(&self.key),
        };
        match done {
            Ok(()) => tracing::info!(key = %self.key, "deregistered from etcd"),
            Err(e) => {
                tracing::warn!(key = %self.key, error = %e, "cannot deregister from etcd; the key expires with its lease")
            }
        }
    }

    /// One keepalive; a lease that is gone is granted again.
    fn renew(&mut self) -> Result<(), RpcError> {
        if let Some(id) = self.id {
            match self.client.keepalive(id) {
                Ok(ttl) if ttl > 0 => return Ok(()),
                Ok(_) => {}
                Err(e) if e.text.contains("not found") => {}
                Err(e) => return Err(e),
            }
            tracing::warn!(key = %self.key, "the etcd lease expired; registering again");
            self.id = None;
        }
        self.register()
    }
}

/// The local address this host reaches `endpoint` from (a connected UDP
/// socket's own address: no packet is sent).
fn local_ip_towards(endpoint: &str) -> Result<std::net::IpAddr, RpcError> {
    let failed = |e: std::io::Error| {
        RpcError::new(
            e.raw_os_error().unwrap_or(libc::EINVAL),
            format!("cannot find the address to register toward {endpoint}: {e}"),
        )
    };
    let peer = endpoint
        .to_socket_addrs()
        .map_err(failed)?
        .next()
        .ok_or_else(|| RpcError::new(libc::EINVAL, format!("{endpoint} resolves to nothing")))?;
    let any: SocketAddr = if peer.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any).map_err(failed)?;
    sock.connect(peer).map_err(failed)?;
    Ok(sock.local_addr().map_err(failed)?.ip())
}
