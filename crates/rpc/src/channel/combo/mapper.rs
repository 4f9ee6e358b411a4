//! bRPC's `CallMapper` and `ResponseMerger`: how a
//! [`ParallelChannel`](super::ParallelChannel) turns one call into its
//! sub-calls and their responses back into one.
//!
//! Both work on serialized messages, as the channel does. Without a
//! mapper every sub-channel gets the call's method and request; without
//! a merger a sub-response is merged by appending its bytes: for
//! protobuf, parsing concatenated messages *is* `MergeFrom` (repeated
//! fields are appended, the rest overwritten), bRPC's default. The typed
//! adapters [`map_request`] and [`merge_response`] decode and encode
//! with `prost` for mappers and mergers written over messages.

use std::marker::PhantomData;

use fibrpc_iobuf::IOBuf;

use crate::codec;

/// What a [`CallMapper`] says about one sub-channel (bRPC's `SubCall`).
#[derive(Debug)]
pub enum SubCall {
    /// Send `request` to the sub-channel, to `method` (`(service,
    /// method)`) or, if `None`, to the call's own method.
    Send {
        /// Another method for this sub-call, if any.
        method: Option<(String, String)>,
        /// The serialized sub-request.
        request: IOBuf,
    },
    /// Leave this sub-channel out of the call (bRPC's `SubCall::Skip()`).
    /// A call whose sub-channels are all skipped fails with `ECANCELED`.
    Skip,
    /// The request cannot be mapped: the whole call fails at once with
    /// `EREQUEST` (bRPC's `SubCall::Bad()`).
    Bad,
}

impl SubCall {
    /// The call's method with `request`.
    pub fn request(request: IOBuf) -> SubCall {
        SubCall::Send {
            method: None,
            request,
        }
    }

    /// The call's method with `request` encoded.
    pub fn message<M: prost::Message>(request: &M) -> SubCall {
        SubCall::request(codec::encode(request))
    }
}

/// Maps a [`ParallelChannel`](super::ParallelChannel)'s call onto one of
/// its sub-channels (bRPC's `CallMapper::Map`). One mapper may serve
/// several sub-channels.
pub trait CallMapper: Send + Sync + 'static {
    /// The sub-call of sub-channel `channel_index` (from 0) of
    /// `channel_count`, for a call of `service.method` with `request`.
    fn map(
        &self,
        channel_index: usize,
        channel_count: usize,
        service: &str,
        method: &str,
        request: &IOBuf,
    ) -> SubCall;
}

/// How a [`ResponseMerger`] took a sub-response (bRPC's
/// `ResponseMerger::Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeResult {
    /// Merged.
    Merged,
    /// Not merged: the sub-call counts as failed (towards `fail_limit`).
    Fail,
    /// The whole call fails (`ERESPONSE`).
    FailAll,
}

/// Merges a sub-channel's response into the call's (bRPC's
/// `ResponseMerger::Merge`). Mergers run one at a time, in sub-channel
/// order, once the call is decided: a merger needs no locking.
pub trait ResponseMerger: Send + Sync + 'static {
    /// Merges `sub_response` into `response` (empty before the first
    /// merge).
    fn merge(&self, response: &mut IOBuf, sub_response: &IOBuf) -> MergeResult;
}

/// A [`CallMapper`] over decoded requests: `f(index, count, &request)`.
/// A request that does not decode as `Req` is [`SubCall::Bad`].
pub fn map_request<Req, F>(f: F) -> impl CallMapper
where
    Req: prost::Message + Default + 'static,
    F: Fn(usize, usize, &Req) -> SubCall + Send + Sync + 'static,
{
    TypedMapper {
        f,
        _req: PhantomData::<fn(&Req)>,
    }
}

struct TypedMapper<Req, F> {
    f: F,
    _req: PhantomData<fn(&Req)>,
}

impl<Req, F> CallMapper for TypedMapper<Req, F>
where
    Req: prost::Message + Default + 'static,
    F: Fn(usize, usize, &Req) -> SubCall + Send + Sync + 'static,
{
    fn map(&self, index: usize, count: usize, _: &str, _: &str, request: &IOBuf) -> SubCall {
        match codec::decode_request::<Req>(request) {
            Ok(req) => (self.f)(index, count, &req),
            Err(_) => SubCall::Bad,
        }
    }
}

/// A [`ResponseMerger`] over decoded responses: `f(&mut response,
/// sub_response)`. A sub-response that does not decode as `Resp` is
/// [`MergeResult::Fail`].
pub fn merge_response<Resp, F>(f: F) -> impl ResponseMerger
where
    Resp: prost::Message + Default + 'static,
    F: Fn(&mut Resp, Resp) -> MergeResult + Send + Sync + 'static,
{
    TypedMerger {
        f,
        _resp: PhantomData::<fn(&Resp)>,
    }
}

struct TypedMerger<Resp, F> {
    f: F,
    _resp: PhantomData<fn(&Resp)>,
}

impl<Resp, F> ResponseMerger for TypedMerger<Resp, F>
where
    Resp: prost::Message + Default + 'static,
    F: Fn(&mut Resp, Resp) -> MergeResult + Send + Sync + 'static,
{
    fn merge(&self, response: &mut IOBuf, sub_response: &IOBuf) -> MergeResult {
        let Ok(sub) = codec::decode_response::<Resp>(sub_response) else {
            return MergeResult::Fail;
        };
        let Ok(mut merged) = codec::decode_response::<Resp>(response) else {
            return MergeResult::FailAll;
        };
        let r = (self.f)(&mut merged, sub);
        if r == MergeResult::Merged {
            *response = codec::encode(&merged);
        }
        r
    }
}

/// bRPC's default merge, protobuf's `MergeFrom`: the serialized
/// sub-response appended.
pub(super) fn default_merge(response: &mut IOBuf, sub_response: &IOBuf) -> MergeResult {
    response.append_buf(sub_response);
    MergeResult::Merged
}
