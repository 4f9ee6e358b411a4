//! A redis server (bRPC's `example/redis_c++/redis_server`): an in-memory
//! key-value store answering `redis-cli` and `redis-benchmark` (`GET`,
//! `SET` with `EX`/`PX`/`NX`/`XX`, `DEL`, `INCR`, `MGET`, `EXPIRE`,
//! `PING`, `ECHO`, ...) on the same port as baidu_std and the HTTP
//! console.
//!
//! ```text
//! cargo run --release -p fibrpc --example redis_server -- --port 6379
//! redis-cli -p 6379 set k v
//! redis-benchmark -p 6379 -t get,set,incr,mget -q
//! ```
//!
//! Flags: `--port N` (default 6379), `--duration SECS` (stop by itself).
//! Ctrl-C (or SIGTERM) stops gracefully.

#[path = "common/logging.rs"]
mod logging;
#[path = "common/redis_kv.rs"]
mod redis_kv;
#[path = "common/stop.rs"]
mod stop;

use std::time::Duration;

use fibrpc::{Server, ServerOptions};

/// A redis server with an in-memory store.
#[derive(clap::Parser)]
#[command(name = "redis_server")]
struct Flags {
    /// The port.
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Stop by itself after this many seconds.
    #[arg(long, value_parser = stop::parse_secs)]
    duration: Option<Duration>,
}

fn main() {
    logging::init();
    let Flags { port, duration } = clap::Parser::parse();
    let mut server = Server::new(ServerOptions::default());
    let kv = redis_kv::Kv::default();
    server
        .add_redis_service(kv.service())
        .expect("add the redis service");
    if let Err(e) = server.start(("0.0.0.0", port)) {
        eprintln!("redis_server: cannot start on port {port}: {e}");
        std::process::exit(1);
    }
    println!(
        "redis_server: serving redis on {}",
        server.listen_addr().unwrap()
    );
    server.run_until(stop::signal_or_after(duration));
    println!("redis_server: stopped");
}
