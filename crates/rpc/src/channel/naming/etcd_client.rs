//! A small etcd v3 client over etcd's HTTP/JSON gateway, on fibrpc's own
//! [`HttpChannel`]: what the etcd naming service and server registration
//! need (range, put, delete, leases).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::channel::{ChannelOptions, ConnectionType};
use crate::http::HttpChannel;
use crate::RpcError;

/// Each request to etcd gives up after this long: a down etcd is an
/// error soon, never a hang.
pub const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// `host:port/prefix`, the part after `etcd://` of a naming or
/// registration URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdTarget {
    /// etcd's client address, `host:port`.
    pub endpoint: String,
    /// The key prefix, always starting and ending with `/`
    /// (`etcd://h:2379/fibrpc/echo` → `/fibrpc/echo/`).
    pub prefix: String,
}

impl EtcdTarget {
    /// Parses `host:port/prefix`. The prefix must not be empty (the keys
    /// of one cluster share it).
    pub fn parse(target: &str) -> Result<EtcdTarget, RpcError> {
        let bad = |why: &str| {
            RpcError::new(
                libc::EINVAL,
                format!("bad etcd URL etcd://{target}: {why} (etcd://host:port/prefix)"),
            )
        };
        let (endpoint, prefix) = target.split_once('/').ok_or_else(|| bad("no key prefix"))?;
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            return Err(bad("no key prefix"));
        }
        match endpoint.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
            }
            _ => return Err(bad("no host:port")),
        }
        Ok(EtcdTarget {
            endpoint: endpoint.to_string(),
            prefix: format!("/{prefix}/"),
        })
    }
}

/// A key and its value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// An etcd v3 client over the HTTP/JSON gateway (`/v3/kv/range`, ...),
/// every request bounded by [`ETCD_REQUEST_TIMEOUT`].
#[derive(Debug, Clone)]
pub struct EtcdClient {
    channel: HttpChannel,
    endpoint: String,
}

impl EtcdClient {
    /// A client of etcd at `endpoint` (`host:port`; resolved now,
    /// connected at the first request).
    pub fn new(endpoint: &str) -> Result<EtcdClient, RpcError> {
        let options = ChannelOptions {
            timeout: Some(ETCD_REQUEST_TIMEOUT),
            connect_timeout: Duration::from_millis(300),
            max_retry: 1,
            connection_type: ConnectionType::Pooled,
            ..ChannelOptions::default()
        };
        let channel = HttpChannel::new(endpoint, options)
            .map_err(|e| RpcError::new(e.code, format!("etcd at {endpoint}: {}", e.text)))?;
        Ok(EtcdClient {
            channel,
            endpoint: endpoint.to_string(),
        })
    }

    /// POSTs `body` to `path` and returns the first JSON object of the
    /// response (streaming endpoints answer a sequence of them).
    fn call(&self, path: &str, body: Value) -> Result<Value, RpcError> {
        let failed = |what: String| {
            RpcError::new(
                crate::errno::ERESPONSE,
                format!("etcd at {} {path}: {what}", self.endpoint),
            )
        };
        let resp = self
            .channel
            .post(path, "application/json", body.to_string().into_bytes())
            .map_err(|e| {
                RpcError::new(
                    e.code,
                    format!("etcd at {} {path}: {}", self.endpoint, e.text),
                )
            })?;
        let bytes = resp.body().to_vec();
        let value: Value = serde_json::Deserializer::from_slice(&bytes)
            .into_iter::<Value>()
            .next()
            .ok_or_else(|| failed(format!("status {}, empty body", resp.status())))?
            .map_err(|e| failed(format!("status {}, bad JSON: {e}", resp.status())))?;
        // A stream's message is {"result": ...} or {"error": ...}.
        let value = match value {
            Value::Object(mut o) if o.contains_key("result") => {
                o.remove("result").unwrap_or_default()
            }
            v => v,
        };
        if let Some(err) = value.get("error") {
            let msg = err
                .get("message")
                .or_else(|| value.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(failed(msg));
        }
        if resp.status() != 200 {
            return Err(failed(format!("status {}: {value}", resp.status())));
        }
        Ok(value)
    }

    /// Every key starting with `prefix` and its value, and the store's
    /// revision (which changes at every write anywhere in etcd).
    pub fn range_prefix(&self, prefix: &str) -> Result<(i64, Vec<KeyValue>), RpcError> {
        let resp = self.call(
            "/v3/kv/range",
            json!({
                "key": B64.encode(prefix),
                "range_end": B64.encode(prefix_end(prefix.as_bytes())),
            }),
        )?;
        let revision = resp
            .get("header")
            .and_then(|h| int(h.get("revision")?))
            .unwrap_or(0);
        let mut kvs = Vec::new();
        for kv in resp
            .get("kvs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let field = |name: &str| -> Vec<u8> {
                kv.get(name)
                    .and_then(Value::as_str)
                    .and_then(|s| B64.decode(s).ok())
                    .unwrap_or_default()
            };
            kvs.push((field("key"), field("value")));
        }
        Ok((revision, kvs))
    }

    /// Sets `key` to `value`, attached to `lease` (0: none).
    pub fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), RpcError> {
        let mut body = json!({ "key": B64.encode(key), "value": B64.encode(value) });
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        self.call("/v3/kv/put", body).map(drop)
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &str) -> Result<(), RpcError> {
        self.call("/v3/kv/deleterange", json!({ "key": B64.encode(key) }))
            .map(drop)
    }

    /// A new lease of `ttl_s` seconds; its id.
    pub fn grant(&self, ttl_s: i64) -> Result<i64, RpcError> {
        let resp = self.call("/v3/lease/grant", json!({ "TTL": ttl_s.to_string() }))?;
        resp.get("ID").and_then(int).ok_or_else(|| {
            RpcError::new(
                crate::errno::ERESPONSE,
                format!("etcd lease grant: no ID in {resp}"),
            )
        })
    }

    /// Renews lease `id`; its TTL in seconds, 0 or less if the lease is
    /// gone (expired or revoked).
    pub fn keepalive(&self, id: i64) -> Result<i64, RpcError> {
        let resp = self.call("/v3/lease/keepalive", json!({ "ID": id.to_string() }))?;
        Ok(resp.get("TTL").and_then(int).unwrap_or(0))
    }

    /// Revokes lease `id`, deleting its keys.
    pub fn revoke(&self, id: i64) -> Result<(), RpcError> {
        self.call("/v3/lease/revoke", json!({ "ID": id.to_string() }))
            .map(drop)
    }
}

/// The gateway writes 64-bit integers as strings.
fn int(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

/// The end of the range of keys starting with `prefix` (etcd's
/// `clientv3.GetPrefixRangeEnd`): the prefix with its last byte below
/// 0xff incremented and the rest dropped.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): every key from `prefix` on.
    vec![0]
}
