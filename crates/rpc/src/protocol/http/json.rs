//! JSON bodies for pb methods called over HTTP (bRPC's json2pb), through
//! the descriptors a generated service embeds
//! ([`crate::Service::descriptor_set`]) and the proto3 JSON mapping of
//! `prost-reflect`. Responses use the `.proto` field names, as bRPC's
//! do; requests may use either those or the lowerCamelCase JSON names.

use std::sync::OnceLock;

use fibrpc_iobuf::IOBuf;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::{errno, RpcError, Service};

/// The request and response message types of each method, by index.
pub(crate) struct JsonCodec {
    methods: Vec<Option<(MessageDescriptor, MessageDescriptor)>>,
}

/// A service's codec, built on first use (`None` without descriptors).
#[derive(Default)]
pub(crate) struct LazyJsonCodec(OnceLock<Option<JsonCodec>>);

impl LazyJsonCodec {
    pub(crate) fn get(&self, service: &dyn Service) -> Option<&JsonCodec> {
        self.0.get_or_init(|| JsonCodec::new(service)).as_ref()
    }
}

impl JsonCodec {
    fn new(service: &dyn Service) -> Option<JsonCodec> {
        let pool = DescriptorPool::decode(service.descriptor_set()?)
            .inspect_err(|e| {
                tracing::warn!(
                    service = service.service_name(),
                    error = %e,
                    "cannot decode the service's descriptor set"
                )
            })
            .ok()?;
        let sd = pool.get_service_by_name(service.service_name())?;
        let methods = service
            .method_names()
            .iter()
            .map(|name| {
                sd.methods()
                    .find(|m| m.name() == *name)
                    .map(|m| (m.input(), m.output()))
            })
            .collect();
        Some(JsonCodec { methods })
    }

    /// JSON request body → serialized protobuf request.
    pub(crate) fn request_to_pb(&self, method: usize, json: &IOBuf) -> Result<IOBuf, RpcError> {
        let (input, _) = self.types(method)?;
        let text = json.to_vec();
        let text = if text.iter().all(u8::is_ascii_whitespace) {
            b"{}".to_vec()
        } else {
            text
        };
        let mut de = serde_json::Deserializer::from_slice(&text);
        let msg = DynamicMessage::deserialize(input.clone(), &mut de)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| RpcError::new(errno::EREQUEST, format!("bad JSON request: {e}")))?;
        Ok(IOBuf::from(msg.encode_to_vec()))
    }

    /// Serialized protobuf response → JSON body.
    /// The response type of `method`, for [`response_to_json`] once the
    /// handler answered (possibly later, in another fiber).
    pub(crate) fn response_type(&self, method: usize) -> Result<MessageDescriptor, RpcError> {
        Ok(self.types(method)?.1.clone())
    }

    fn types(&self, method: usize) -> Result<&(MessageDescriptor, MessageDescriptor), RpcError> {
        self.methods
            .get(method)
            .and_then(Option::as_ref)
            .ok_or_else(|| RpcError::new(errno::ENOMETHOD, "the method has no descriptor"))
    }
}

/// Serialized protobuf response of type `output` → JSON body.
pub(crate) fn response_to_json(output: MessageDescriptor, pb: &IOBuf) -> Result<IOBuf, RpcError> {
    let msg = DynamicMessage::decode(output, pb.to_vec().as_slice()).map_err(|e| {
        RpcError::new(
            errno::ERESPONSE,
            format!("the response does not parse: {e}"),
        )
    })?;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    msg.serialize_with_options(
        &mut ser,
        &SerializeOptions::new().use_proto_field_name(true),
    )
    .map_err(|e| RpcError::new(errno::EINTERNAL, format!("cannot write JSON: {e}")))?;
    Ok(IOBuf::from(out))
}
