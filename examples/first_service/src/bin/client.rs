// src/bin/client.rs
//! The client: `cargo run -p first-service --bin client [ADDR]`.

use first_service::kv::{GetRequest, KvServiceClient, PutRequest};

fn main() -> Result<(), fibrpc::RpcError> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8000".into());
    let client = KvServiceClient::new(fibrpc::connect(addr)?);
    let put = PutRequest {
        key: "greeting".into(),
        value: "hello".into(),
    };
    client.put_simple(&put)?;
    let get = GetRequest {
        key: "greeting".into(),
    };
    let reply = client.get_simple(&get)?;
    println!("greeting = {:?} (found: {})", reply.value, reply.found);
    Ok(())
}
