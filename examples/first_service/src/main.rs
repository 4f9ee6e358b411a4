// src/main.rs
//! The server: `cargo run -p first-service [ADDR]`.

use fibrpc::Server;
use first_service::kv::KvServiceServer;
use first_service::Store;

fn main() -> Result<(), fibrpc::RpcError> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8000".into());
    let mut server = Server::new(Default::default());
    server.add_service(KvServiceServer::new(Store::default()))?;
    server.start(addr)?;
    println!("serving on {}", server.listen_addr().unwrap());
    // Ctrl-C or SIGTERM: answer the calls in flight, close, return.
    server.run_until_signal()
}
