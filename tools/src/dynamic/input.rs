//! Requests from JSON (the proto3 JSON mapping): one object per line, or
//! one JSON array of objects. Each becomes a dynamic message of the
//! method's input type, then its protobuf encoding.

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};

/// One request of the input, encoded both ways.
#[derive(Debug, Clone)]
pub struct JsonRequest {
    /// The protobuf encoding (baidu_std's payload).
    pub pb: Vec<u8>,
    /// Canonical JSON (an HTTP body), `.proto` field names.
    pub json: Vec<u8>,
}

/// Parses `text` (named `source` in errors) into requests of type `input`.
/// An empty input is an error: there would be nothing to send.
pub fn parse_requests(
    text: &str,
    source: &str,
    input: &MessageDescriptor,
) -> Result<Vec<JsonRequest>, String> {
    let trimmed = text.trim_start();
    let values: Vec<(String, serde_json::Value)> = if trimmed.starts_with('[') {
        let all: serde_json::Value = serde_json::from_str(trimmed)
            .map_err(|e| format!("{source}: malformed JSON array: {e}"))?;
        let serde_json::Value::Array(items) = all else {
            unreachable!("a JSON text that starts with '[' is an array")
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("{source}: element {i}"), v))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let at = format!("{source} line {}", i + 1);
                serde_json::from_str(l)
                    .map(|v| (at.clone(), v))
                    .map_err(|e| format!("{at}: malformed JSON: {e}"))
            })
            .collect::<Result<_, _>>()?
    };
    if values.is_empty() {
        return Err(format!("{source}: no requests"));
    }
    values
        .into_iter()
        .map(|(at, v)| to_request(v, input).map_err(|e| format!("{at}: {e}")))
        .collect()
}

fn to_request(v: serde_json::Value, input: &MessageDescriptor) -> Result<JsonRequest, String> {
    let msg = DynamicMessage::deserialize(input.clone(), v)
        .map_err(|e| format!("not a {}: {e}", input.full_name()))?;
    let mut ser = serde_json::Serializer::new(Vec::new());
    msg.serialize_with_options(
        &mut ser,
        &SerializeOptions::new().use_proto_field_name(true),
    )
    .map_err(|e| format!("cannot write {} as JSON: {e}", input.full_name()))?;
    Ok(JsonRequest {
        pb: msg.encode_to_vec(),
        json: ser.into_inner(),
    })
}
