// src/bin/client.rs
//! The client: `cargo run -p first-service --bin client [ADDR]`.

use fibrpc::{Channel, Controller};
use first_service::kv::{GetRequest, KvServiceClient, PutRequest};

fn main() -> Result<(), fibrpc::RpcError> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8000".into());
    let client = KvServiceClient::new(Channel::new(addr, Default::default())?);
    let put = PutRequest {
        key: "greeting".into(),
        value: "hello".into(),
    };
    client.put(&mut Controller::new(), &put)?;
    let get = GetRequest {
        key: "greeting".into(),
    };
    let reply = client.get(&mut Controller::new(), &get)?;
    println!("greeting = {:?} (found: {})", reply.value, reply.found);
    Ok(())
}
