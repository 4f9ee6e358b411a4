//! bRPC's combo channels: channels made of other channels, each an
//! [`RpcChannel`](super::RpcChannel) itself, so they nest and generated
//! stubs use them like a [`Channel`](super::Channel).
//!
//! - [`ParallelChannel`] sends one call to every sub-channel at once
//!   ([`CallMapper`] makes each sub-call) and merges the responses
//!   ([`ResponseMerger`]); `fail_limit` failures end the call as failed,
//!   `success_limit` successes end it as succeeded.
//! - [`SelectiveChannel`] sends each call to one sub-channel chosen by a
//!   load balancer (bRPC's names), and retries another sub-channel when
//!   one fails; a sub-channel is typically a cluster.
//! - [`PartitionChannel`] is a parallel channel whose sub-channels are
//!   the partitions of one naming service, told apart by the servers'
//!   tags ([`PartitionParser`]).
//! - [`DynamicPartitionChannel`] lets partitioning schemes coexist in
//!   one naming service (servers in 3 partitions beside servers in 4),
//!   a [`PartitionChannel`] each, and splits the calls between them by
//!   their capacity.
//!
//! A combo channel's sub-calls go out with the `done` form of their
//! sub-channels, so no fiber waits per sub-call; the synchronous form
//! waits for the combined outcome, the `Future` form resolves with it.
//! Sub-controllers inherit the caller's settings and the time left
//! (`Controller::sub` shows them after the call); cancelling a combo
//! call ([`Controller::canceller`]) cancels its sub-calls.

mod dynamic_partition;
mod mapper;
mod parallel;
mod partition;
mod selective;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_fiber::sync::CountdownEvent;
use fibrpc_iobuf::IOBuf;

use super::rpc_channel::RawDone;
use super::CallCanceller;
use crate::{Controller, RpcError};
pub use dynamic_partition::DynamicPartitionChannel;
pub use mapper::{map_request, merge_response, CallMapper, MergeResult, ResponseMerger, SubCall};
pub use parallel::{ParallelChannel, ParallelChannelOptions};
pub use partition::{
    Partition, PartitionChannel, PartitionChannelOptions, PartitionParser, SlashPartitionParser,
};
pub use selective::{ChannelHandle, SelectiveChannel};

/// bRPC's default timeout of a combo call (`timeout_ms` = 500).
pub const DEFAULT_COMBO_TIMEOUT: Duration = Duration::from_millis(500);

/// A sub-call's controller: the caller's settings (retries, idempotency,
/// backup request, log id, request code, compression, checksum, user
/// fields, attachment) with `left` as its timeout — the combo channel's
/// deadline governs, as in bRPC — and a canceller the caller's cancels.
pub(crate) fn sub_controller(parent: &Controller, left: Option<Duration>) -> Controller {
    Controller {
        timeout: left.or(parent.timeout),
        max_retry: parent.max_retry,
        idempotent: parent.idempotent,
        backup_request: parent.backup_request,
        log_id: parent.log_id,
        has_log_id: parent.has_log_id,
        compress_type: parent.compress_type,
        checksum: parent.checksum,
        request_attachment: parent.request_attachment.clone(),
        retry_policy: parent.retry_policy.clone(),
        request_code: parent.request_code,
        request_user_fields: parent.request_user_fields.clone(),
        canceller: parent.canceller.as_ref().map(CallCanceller::child),
        ..Controller::default()
    }
}

/// The deadline of a combo call started at `start`: the controller's
/// timeout, else the channel's, capped by the one a handler's calls
/// inherit ([`crate::call_context`]): the sub-calls may run in other
/// fibers, which inherit nothing.
pub(crate) fn combo_deadline(
    cntl: &Controller,
    default: Option<Duration>,
    start: Instant,
) -> Option<Instant> {
    let own = cntl.timeout.or(default).map(|t| start + t);
    match crate::call_context::inherited_deadline() {
        Some(d) if own.is_none_or(|o| d < o) => Some(d),
        _ => own,
    }
}

/// What is left until `deadline` (at least a millisecond, so a sub-call
/// started at the last moment fails as a timeout, not as "no timeout").
pub(crate) fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    })
}

/// Runs a `done`-style call and waits for it (a fiber switch in a fiber,
/// a blocked thread outside one): the synchronous form of a combo call.
pub(crate) fn wait_for(
    cntl: &mut Controller,
    start: impl FnOnce(Controller, RawDone),
) -> Result<IOBuf, RpcError> {
    type Slot = Mutex<Option<(Controller, Result<IOBuf, RpcError>)>>;
    let slot: Arc<Slot> = Arc::new(Mutex::new(None));
    let event = Arc::new(CountdownEvent::new(1));
    let (theirs, ev) = (slot.clone(), event.clone());
    start(
        std::mem::take(cntl),
        Box::new(move |c, r| {
            *theirs.lock().unwrap_or_else(|e| e.into_inner()) = Some((c, r));
            ev.signal(1);
        }),
    );
    event.wait();
    let (c, r) = slot
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .expect("a combo call's callback ran before its event fired");
    *cntl = c;
    r
}
