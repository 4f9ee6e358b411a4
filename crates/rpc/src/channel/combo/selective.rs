//! [`SelectiveChannel`] (bRPC's "schan"): each call goes to one
//! sub-channel a load balancer picks; a failed sub-call is retried on
//! another.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use fibrpc_iobuf::IOBuf;
use rustc_hash::FxHashMap;

use super::{combo_deadline, left, sub_controller, wait_for};
use crate::channel::async_call::spawn_done;
use crate::channel::engine::{record_outcome, reset_outcome};
use crate::channel::lb::{load_balancer_by_name, LoadBalancer, ServerEntry};
use crate::channel::rpc_channel::{RawDone, RpcChannel};
use crate::channel::{
    AttemptOutcome, ChannelOptions, DefaultRetryPolicy, FailedAttempt, RequestSent, RetryPolicy,
    SelectInput,
};
use crate::{errno, Controller, RpcError};

/// Names a sub-channel of a [`SelectiveChannel`], for
/// [`SelectiveChannel::remove_and_destroy_channel`] (bRPC's
/// `ChannelHandle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChannelHandle(u32);

impl ChannelHandle {
    /// The balancer sees sub-channels as servers: each handle is an
    /// address no real server has (in `2001:db8::/32`, the range kept
    /// for documentation, port 0), as bRPC gives each sub-channel a fake
    /// socket.
    fn addr(self) -> SocketAddr {
        let ip = (0x2001_0db8_u128 << 96) | u128::from(self.0);
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), 0, 0, 0))
    }
}

/// Sends each call to one of its sub-channels, picked by a load balancer
/// (bRPC's `SelectiveChannel`). Sub-channels are typically clusters
/// ([`Channel::with_naming`](crate::Channel::with_naming)), so this
/// balances between groups of servers — several naming services, say —
/// and then within the chosen group.
///
/// - The balancer is one of [`load_balancer_by_name`]'s (`rr`, `random`,
///   `la`, `c_murmurhash`, `c_md5`; `wrr` needs weights, which
///   sub-channels do not have), fed with each sub-call's outcome.
/// - A sub-call that fails after the sub-channel's own retries is sent to
///   another sub-channel, up to `max_retry` times (the controller's or
///   the options'), when the retry policy allows it
///   ([`ChannelOptions::retry_policy`], the controller's, or the default:
///   the engine's rule, plus a sub-channel that had no server to send to
///   — `EHOSTDOWN`, `ENODATA`, `EREJECT` — which never sent the
///   request).
/// - The options' (or the controller's) timeout covers the whole call,
///   retries included: each sub-call gets the time left, overriding the
///   sub-channels' timeouts.
/// - [`Controller::sub`]`(0)` is the last sub-call's controller; the
///   call's [`Controller::retried_count`] counts sub-channels retried.
///
/// Sub-channels may be added and removed at any time; calls under way
/// keep theirs. Cheap to clone.
#[derive(Clone)]
pub struct SelectiveChannel {
    inner: Arc<Inner>,
}

struct Inner {
    lb: Box<dyn LoadBalancer>,
    options: ChannelOptions,
    /// The sub-channels by their balancer address, read by every call.
    channels: ArcSwap<FxHashMap<SocketAddr, Arc<dyn RpcChannel>>>,
    /// Serializes changes to `channels`, in handle order for the balancer.
    order: Mutex<Vec<ChannelHandle>>,
    next: AtomicU32,
}

impl std::fmt::Debug for SelectiveChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelectiveChannel")
            .field("lb", &self.inner.lb.name())
            .field("channels", &self.inner.channels.load().len())
            .finish()
    }
}

impl SelectiveChannel {
    /// A selective channel picking with the balancer `lb` names (bRPC's
    /// `SelectiveChannel::Init(lb_name, &options)`), using `options`'
    /// `timeout`, `max_retry`, `retry_policy` and `idempotent`.
    pub fn new(lb: &str, options: ChannelOptions) -> Result<SelectiveChannel, RpcError> {
        Ok(SelectiveChannel {
            inner: Arc::new(Inner {
                lb: load_balancer_by_name(lb)?,
                options,
                channels: ArcSwap::default(),
                order: Mutex::new(Vec::new()),
                next: AtomicU32::new(1),
            }),
        })
    }

    /// Adds a sub-channel (bRPC's `AddChannel`); the handle removes it.
    pub fn add_channel(&self, channel: Arc<dyn RpcChannel>) -> ChannelHandle {
        let handle = ChannelHandle(self.inner.next.fetch_add(1, Relaxed));
        let mut order = self.inner.order.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = (**self.inner.channels.load()).clone();
        map.insert(handle.addr(), channel);
        order.push(handle);
        self.inner.publish(&order, map);
        handle
    }

    /// Removes a sub-channel (bRPC's `RemoveAndDestroyChannel`); calls
    /// under way on it finish there. Returns whether it was there.
    pub fn remove_and_destroy_channel(&self, handle: ChannelHandle) -> bool {
        let mut order = self.inner.order.lock().unwrap_or_else(|e| e.into_inner());
        let mut map = (**self.inner.channels.load()).clone();
        if map.remove(&handle.addr()).is_none() {
            return false;
        }
        order.retain(|h| *h != handle);
        self.inner.publish(&order, map);
        true
    }

    /// How many sub-channels there are.
    pub fn channel_count(&self) -> usize {
        self.inner.channels.load().len()
    }
}

impl Inner {
    /// Makes `map` the sub-channels, and the balancer's list.
    fn publish(&self, order: &[ChannelHandle], map: FxHashMap<SocketAddr, Arc<dyn RpcChannel>>) {
        self.channels.store(Arc::new(map));
        let entries: Vec<ServerEntry> = order
            .iter()
            .map(|h| ServerEntry::new(h.addr(), ""))
            .collect();
        self.lb.reset(&entries);
    }
}

/// A selective call in flight, moved from each sub-call's completion to
/// the next.
struct Call {
    inner: Arc<Inner>,
    service: String,
    method: String,
    request: IOBuf,
    cntl: Controller,
    done: RawDone,
    start: Instant,
    deadline: Option<Instant>,
    tried: Vec<SocketAddr>,
    max_retry: u32,
}

impl Call {
    /// Sends the next attempt to a sub-channel not tried yet, if any.
    fn attempt(mut self) {
        let input = SelectInput::new(&self.tried, self.cntl.request_code);
        let picked = self.inner.lb.select(&input).and_then(|addr| {
            match self.inner.channels.load().get(&addr) {
                Some(ch) => Ok((addr, ch.clone())),
                None => Err(no_channel()),
            }
        });
        let (addr, channel) = match picked {
            Ok(p) => p,
            Err(e) => {
                let e = if e.code == libc::ENODATA {
                    no_channel()
                } else {
                    e
                };
                // The first attempt runs in the caller's context, where
                // `done` must not run.
                if self.tried.is_empty() {
                    let Call {
                        mut cntl,
                        done,
                        start,
                        ..
                    } = self;
                    record_outcome(&mut cntl, start, &Err::<(), _>(e.clone()));
                    return spawn_done(cntl, Err(e), done);
                }
                return self.end(Err(e));
            }
        };
        self.tried.push(addr);
        let sub = sub_controller(&self.cntl, left(self.deadline));
        let sent = Instant::now();
        let (service, method, request) = (
            self.service.clone(),
            self.method.clone(),
            self.request.clone(),
        );
        channel.call_raw_async(
            &service,
            &method,
            sub,
            request,
            Box::new(move |c, r| self.attempted(addr, sent, c, r)),
        );
    }

    /// A sub-call ended: done, or retried on another sub-channel.
    fn attempted(
        mut self,
        addr: SocketAddr,
        sent: Instant,
        mut sub: Controller,
        r: Result<IOBuf, RpcError>,
    ) {
        let outcome = AttemptOutcome::new(addr, r.as_ref().err(), sent.elapsed());
        self.inner.lb.feedback(&outcome);
        self.cntl.remote_side = sub.remote_side;
        self.cntl.response_attachment = std::mem::take(&mut sub.response_attachment);
        let e = match r {
            Ok(resp) => {
                self.cntl.subs = vec![Some(sub)];
                return self.end(Ok(resp));
            }
            Err(e) => e,
        };
        self.cntl.subs = vec![Some(sub)];
        self.cntl.attempt_errors.push(e.clone());
        let attempt = self.tried.len() as u32;
        // A cancelled call is not retried.
        let retry = !crate::channel::cancel::is_cancelled(&e)
            && attempt <= self.max_retry
            && self.deadline.is_none_or(|d| Instant::now() < d)
            && self.tried.len() < self.inner.channels.load().len()
            && self.may_retry(&e, attempt);
        if !retry {
            return self.end(Err(e));
        }
        self.cntl.retried += 1;
        self.attempt()
    }

    /// Whether the policy retries a sub-call that failed with `e`.
    fn may_retry(&self, e: &RpcError, attempt: u32) -> bool {
        let sent = if never_sent(e) {
            RequestSent::No
        } else {
            RequestSent::Maybe
        };
        let idempotent = self
            .cntl
            .idempotent
            .or(self.inner.options.idempotent)
            .unwrap_or(false);
        let failed = FailedAttempt::new(e, attempt, sent, idempotent, None);
        match self
            .cntl
            .retry_policy
            .as_ref()
            .or(self.inner.options.retry_policy.as_ref())
        {
            Some(p) => p.do_retry(&failed),
            None => DefaultRetryPolicy.do_retry(&failed) || (e.is_local() && no_server(e)),
        }
    }

    fn end(self, r: Result<IOBuf, RpcError>) {
        let Call {
            mut cntl,
            done,
            start,
            ..
        } = self;
        record_outcome(&mut cntl, start, &r);
        done(cntl, r)
    }
}

/// A sub-channel that had no server to send to.
fn no_server(e: &RpcError) -> bool {
    matches!(e.code, libc::EHOSTDOWN | libc::ENODATA | errno::EREJECT)
}

/// This side's failures that never carried the request: no server, or a
/// connection that could not be made.
fn never_sent(e: &RpcError) -> bool {
    e.is_local()
        && (no_server(e)
            || matches!(
                e.code,
                libc::ECONNREFUSED | libc::ENETUNREACH | libc::EHOSTUNREACH
            ))
}

fn no_channel() -> RpcError {
    RpcError::new(
        libc::EHOSTDOWN,
        "the selective channel has no sub-channel to call",
    )
    .into_local()
}

impl SelectiveChannel {
    fn start(
        &self,
        service: &str,
        method: &str,
        mut cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        let start = Instant::now();
        reset_outcome(&mut cntl);
        let max_retry = cntl.max_retry.unwrap_or(self.inner.options.max_retry);
        let deadline = combo_deadline(&cntl, self.inner.options.timeout, start);
        Call {
            inner: self.inner.clone(),
            service: service.to_owned(),
            method: method.to_owned(),
            request,
            cntl,
            done,
            start,
            deadline,
            tried: Vec::new(),
            max_retry,
        }
        .attempt()
    }
}

impl RpcChannel for SelectiveChannel {
    fn call_raw(
        &self,
        service: &str,
        method: &str,
        cntl: &mut Controller,
        request: IOBuf,
    ) -> Result<IOBuf, RpcError> {
        wait_for(cntl, |c, done| {
            self.start(service, method, c, request, done)
        })
    }

    fn call_raw_async(
        &self,
        service: &str,
        method: &str,
        cntl: Controller,
        request: IOBuf,
        done: RawDone,
    ) {
        self.start(service, method, cntl, request, done)
    }
}
