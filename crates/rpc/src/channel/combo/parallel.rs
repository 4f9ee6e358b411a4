//! [`ParallelChannel`] (bRPC's "pchan"): one call fanned out to every
//! sub-channel, the responses merged.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;

use super::mapper::{default_merge, CallMapper, MergeResult, ResponseMerger, SubCall};
use super::{combo_deadline, left, sub_controller, wait_for, DEFAULT_COMBO_TIMEOUT};
use crate::channel::async_call::spawn_done;
use crate::channel::cancel::{cancelled, cancelled_error};
use crate::channel::engine::{record_outcome, reset_outcome};
use crate::channel::rpc_channel::{RawDone, RpcChannel};
use crate::channel::CallCanceller;
use crate::{errno, Controller, RpcError};

/// Settings of a [`ParallelChannel`] (bRPC's `ParallelChannelOptions`).
#[derive(Debug, Clone)]
pub struct ParallelChannelOptions {
    /// Deadline of the whole call (default 500 ms, bRPC's; `None`: the
    /// sub-channels' own). [`Controller::set_timeout`] overrides it. Each
    /// sub-call gets the time left: the sub-channels' timeouts do not
    /// apply.
    pub timeout: Option<Duration>,
    /// The call fails as soon as this many sub-calls failed (`None`: the
    /// number of sub-calls, so it fails only if all do). A sub-response
    /// the merger refused counts as a failure.
    pub fail_limit: Option<usize>,
    /// The call succeeds as soon as this many sub-calls succeeded
    /// (`None`: the number of sub-calls, so it waits for all).
    pub success_limit: Option<usize>,
}

impl Default for ParallelChannelOptions {
    fn default() -> Self {
        ParallelChannelOptions {
            timeout: Some(DEFAULT_COMBO_TIMEOUT),
            fail_limit: None,
            success_limit: None,
        }
    }
}

/// One sub-channel with its mapper and merger.
#[derive(Clone)]
struct SubChannel {
    channel: Arc<dyn RpcChannel>,
    mapper: Option<Arc<dyn CallMapper>>,
    merger: Option<Arc<dyn ResponseMerger>>,
}

/// Sends each call to all its sub-channels at once and merges their
/// responses (bRPC's `ParallelChannel`):
///
/// - Each sub-channel's request comes from its [`CallMapper`] (none: the
///   call's own). A [`SubCall::Skip`] leaves the sub-channel out (all
///   skipped: `ECANCELED`); a [`SubCall::Bad`] fails the call with
///   `EREQUEST` before anything is sent.
/// - The call ends when `fail_limit` sub-calls failed (`ETOOMANYFAILS`,
///   the text listing each sub-call's error), when `success_limit`
///   succeeded, or when all ended. Sub-calls still running then are
///   cancelled, as bRPC does ([`CallCanceller`](crate::channel::CallCanceller)):
///   each ends with `ECANCELED` without blaming its server, a response
///   that still comes is dropped, and [`Controller::sub`] shows
///   `EPCHANFINISH` for it. Cancelling the call cancels every sub-call;
///   the call then fails with `ECANCELED`.
/// - The successful sub-responses are merged into the response in
///   sub-channel order by their [`ResponseMerger`] (none: protobuf's
///   `MergeFrom`); a merge that fails counts as a failed sub-call.
///
/// A sub-channel may be any [`RpcChannel`], combo channels included, and
/// may be added more than once. Cheap to clone.
///
/// ```no_run
/// # fn main() -> Result<(), fibrpc::RpcError> {
/// use std::sync::Arc;
/// use fibrpc::channel::combo::{ParallelChannel, ParallelChannelOptions};
/// use fibrpc::Channel;
///
/// let mut pchan = ParallelChannel::new(ParallelChannelOptions::default());
/// for addr in ["127.0.0.1:8001", "127.0.0.1:8002"] {
///     pchan.add_channel(Arc::new(fibrpc::connect(addr)?), None, None);
/// }
/// let client = fibrpc_example::EchoServiceClient::new(pchan);
/// # let _ = client;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ParallelChannel {
    options: ParallelChannelOptions,
    subs: Vec<SubChannel>,
}

impl std::fmt::Debug for ParallelChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelChannel")
            .field("options", &self.options)
            .field("channels", &self.subs.len())
            .finish()
    }
}

impl ParallelChannel {
    /// A parallel channel with no sub-channel yet.
    pub fn new(options: ParallelChannelOptions) -> ParallelChannel {
        ParallelChannel {
            options,
            subs: Vec::new(),
        }
    }

    /// Adds a sub-channel (bRPC's `AddChannel`), with the mapper of its
    /// sub-calls and the merger of its responses (`None`: the defaults,
    /// see the type's docs).
    pub fn add_channel(
        &mut self,
        channel: Arc<dyn RpcChannel>,
        call_mapper: Option<Arc<dyn CallMapper>>,
        response_merger: Option<Arc<dyn ResponseMerger>>,
    ) {
        self.subs.push(SubChannel {
            channel,
            mapper: call_mapper,
            merger: response_merger,
        });
    }

    /// How many sub-channels there are.
    pub fn channel_count(&self) -> usize {
        self.subs.len()
    }

    /// The options.
    pub fn options(&self) -> &ParallelChannelOptions {
        &self.options
    }

    /// Starts a call: maps it, sends the sub-calls, and leaves the rest
    /// to their completions.
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
        let fail = |mut cntl: Controller, e: RpcError, done: RawDone| {
            record_outcome(&mut cntl, start, &Err::<(), _>(e.clone()));
            spawn_done(cntl, Err(e), done)
        };
        let n = self.subs.len();
        if n == 0 {
            let e = RpcError::new(libc::EINVAL, "the parallel channel has no sub-channel");
            return fail(cntl, e, done);
        }
        let mut calls = Vec::with_capacity(n);
        for (i, sub) in self.subs.iter().enumerate() {
            let mapped = match &sub.mapper {
                Some(m) => m.map(i, n, service, method, &request),
                None => SubCall::request(request.clone()),
            };
            match mapped {
                SubCall::Send { method, request } => calls.push((i, method, request)),
                SubCall::Skip => {}
                SubCall::Bad => {
                    let e = RpcError::new(
                        errno::EREQUEST,
                        format!("the call mapper of sub-channel {i} refused the request"),
                    );
                    return fail(cntl, e, done);
                }
            }
        }
        if calls.is_empty() {
            let e = RpcError::new(libc::ECANCELED, "every sub-channel was skipped");
            return fail(cntl, e, done);
        }
        let ncalls = calls.len();
        let limit = |l: Option<usize>| l.unwrap_or(ncalls).clamp(1, ncalls);
        let deadline = combo_deadline(&cntl, self.options.timeout, start);
        let mut sub_cntls: Vec<Controller> = calls
            .iter()
            .map(|_| sub_controller(&cntl, left(deadline)))
            .collect();
        let mut cancellers: Vec<Option<CallCanceller>> = (0..n).map(|_| None).collect();
        for ((i, ..), c) in calls.iter().zip(&mut sub_cntls) {
            cancellers[*i] = Some(c.canceller());
        }
        let state = Arc::new(Mutex::new(State {
            pending: Some(Pending { cntl, done }),
            results: (0..n).map(|_| None).collect(),
            mergers: self.subs.iter().map(|s| s.merger.clone()).collect(),
            cancellers,
            sent: calls.iter().map(|c| c.0).collect(),
            succeeded: 0,
            failed: 0,
            fail_limit: limit(self.options.fail_limit),
            success_limit: limit(self.options.success_limit),
            start,
        }));
        for ((i, sub_method, sub_request), sub_cntl) in calls.into_iter().zip(sub_cntls) {
            let (svc, m) = match &sub_method {
                Some((s, m)) => (s.as_str(), m.as_str()),
                None => (service, method),
            };
            let state = state.clone();
            self.subs[i].channel.call_raw_async(
                svc,
                m,
                sub_cntl,
                sub_request,
                Box::new(move |c, r| sub_done(&state, i, c, r)),
            );
        }
    }
}

/// The caller's half of a call in flight.
struct Pending {
    cntl: Controller,
    done: RawDone,
}

/// A parallel call in flight.
struct State {
    /// `None` once the call is decided.
    pending: Option<Pending>,
    /// Per sub-channel: its controller and outcome once ended.
    results: Vec<Option<(Controller, Result<IOBuf, RpcError>)>>,
    mergers: Vec<Option<Arc<dyn ResponseMerger>>>,
    /// Per sub-channel called: what cancels its sub-call.
    cancellers: Vec<Option<CallCanceller>>,
    /// The sub-channels called (not skipped).
    sent: Vec<usize>,
    succeeded: usize,
    failed: usize,
    fail_limit: usize,
    success_limit: usize,
    start: Instant,
}

/// A sub-call ended: record it, and end the call if that decides it.
fn sub_done(state: &Mutex<State>, i: usize, c: Controller, r: Result<IOBuf, RpcError>) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if st.pending.is_none() {
        return; // Decided already: this sub-call's outcome is not wanted.
    }
    match &r {
        Ok(_) => st.succeeded += 1,
        Err(_) => st.failed += 1,
    }
    st.results[i] = Some((c, r));
    let ended = st.succeeded + st.failed;
    if st.failed < st.fail_limit && st.succeeded < st.success_limit && ended < st.sent.len() {
        return;
    }
    let Some(Pending { mut cntl, done }) = st.pending.take() else {
        return;
    };
    let mut results = std::mem::take(&mut st.results);
    let mergers = std::mem::take(&mut st.mergers);
    let cancellers = std::mem::take(&mut st.cancellers);
    let (sent, mut failed, fail_limit, start) = (
        std::mem::take(&mut st.sent),
        st.failed,
        st.fail_limit,
        st.start,
    );
    drop(st);
    // The sub-calls still running are not needed: cancelled (their
    // completions find the call decided and drop their outcomes).
    for (slot, canceller) in results.iter().zip(&cancellers) {
        if let (None, Some(c)) = (slot, canceller) {
            c.cancel();
        }
    }
    let r = if cancelled(&cntl) {
        Err(cancelled_error())
    } else {
        finish(&mut results, &mergers, &sent, &mut failed, fail_limit)
    };
    cntl.subs = results
        .into_iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            Some((c, _)) => Some(c),
            None if sent.contains(&i) => Some(unfinished()),
            None => None,
        })
        .collect();
    record_outcome(&mut cntl, start, &r);
    done(cntl, r)
}

/// Merges the successful sub-responses (in sub-channel order) and says
/// whether the call succeeded.
fn finish(
    results: &mut [Option<(Controller, Result<IOBuf, RpcError>)>],
    mergers: &[Option<Arc<dyn ResponseMerger>>],
    sent: &[usize],
    failed: &mut usize,
    fail_limit: usize,
) -> Result<IOBuf, RpcError> {
    let mut response = IOBuf::new();
    if *failed < fail_limit {
        for (i, slot) in results.iter_mut().enumerate() {
            let Some((c, Ok(sub))) = slot else { continue };
            let merged = match &mergers[i] {
                Some(m) => m.merge(&mut response, sub),
                None => default_merge(&mut response, sub),
            };
            match merged {
                MergeResult::Merged => {}
                MergeResult::Fail => {
                    *failed += 1;
                    let e = RpcError::new(
                        errno::ERESPONSE,
                        format!("the response merger of sub-channel {i} refused its response"),
                    );
                    c.error = Some(e.clone());
                    slot.as_mut().expect("matched as Some above").1 = Err(e);
                }
                MergeResult::FailAll => {
                    return Err(RpcError::new(
                        errno::ERESPONSE,
                        format!("the response merger of sub-channel {i} failed the call"),
                    ))
                }
            }
        }
    }
    if *failed < fail_limit {
        return Ok(response);
    }
    let mut text = format!(
        "{failed}/{} channels failed, fail_limit={fail_limit}",
        sent.len()
    );
    for (i, slot) in results.iter().enumerate() {
        if let Some((_, Err(e))) = slot {
            let _ = write!(text, " [C{i}]{e}");
        }
    }
    Err(RpcError::new(errno::ETOOMANYFAILS, text))
}

/// The controller shown for a sub-call still running when the call was
/// decided.
fn unfinished() -> Controller {
    let mut c = Controller::new();
    c.error = Some(RpcError::new(
        errno::EPCHANFINISH,
        "the parallel call ended before this sub-call",
    ));
    c
}

impl RpcChannel for ParallelChannel {
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
