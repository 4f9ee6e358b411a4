//! `floor_echo_server`: the least an echo server can do, as a yardstick.
//!
//! ```text
//! floor_echo_server [--port P (7003)] [--workers W (2)]
//! ```
//!
//! Not a peer but the floor under every peer ([`fibrpc_tools::floor`]: raw
//! edge-triggered epoll per thread, no runtime, no tasks): what is read
//! (4 KiB at a time) is written back. Its requests/s under the same
//! generator shows what an echo server doing one read and one write per
//! message can get on this machine with next to no user-space work: a
//! yardstick, not a proven maximum (`benches/net/README.md`).

use fibrpc_bench_net::{announce_listening, server_flags, LISTEN_BACKLOG};
use fibrpc_tools::floor::{serve, Protocol};

const USAGE: &str = "usage: floor_echo_server [--port P (7003)] [--workers W (2)]";

fn main() -> std::io::Result<()> {
    let (port, workers) = server_flags(USAGE, 7003);
    serve::<Echo>(port, workers, LISTEN_BACKLOG, announce_listening)
}

#[derive(Default)]
struct Echo;

impl Protocol for Echo {
    fn on_input(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(input);
    }
}
