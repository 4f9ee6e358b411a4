// src/lib.rs
//! The key-value service: its generated code and its handler.

use std::collections::HashMap;

use fibrpc::fiber::sync::Mutex;
use fibrpc::{Controller, RpcError};

/// The code generated from `proto/kv.proto`: messages, the `KvService`
/// trait, the `KvServiceServer` wrapper and the `KvServiceClient` stub.
pub mod kv {
    include!(concat!(env!("OUT_DIR"), "/kv.rs"));
}

use kv::{GetRequest, GetResponse, KvService, PutRequest, PutResponse};

/// The handler: a map behind a fiber mutex (waiting for it suspends the
/// fiber, not the worker thread).
#[derive(Default)]
pub struct Store {
    map: Mutex<HashMap<String, String>>,
}

impl KvService for Store {
    fn put(&self, _cntl: &mut Controller, request: PutRequest) -> Result<PutResponse, RpcError> {
        self.map.lock().insert(request.key, request.value);
        Ok(PutResponse {})
    }

    fn get(&self, _cntl: &mut Controller, request: GetRequest) -> Result<GetResponse, RpcError> {
        let value = self.map.lock().get(&request.key).cloned();
        Ok(GetResponse {
            found: value.is_some(),
            value: value.unwrap_or_default(),
        })
    }
}
