//! An echo server that can be restarted without refusing a connection:
//! the new process takes the old one's listening socket, then the old one
//! stops gracefully.
//!
//! ```text
//! restart_echo --addr 127.0.0.1:8000 --handoff /run/echo/listener.sock   # A
//! restart_echo --addr 127.0.0.1:8000 --handoff /run/echo/listener.sock   # B
//! kill -TERM <A>     # or close A's stdin
//! ```
//!
//! Where the listening socket comes from, first that applies:
//! 1. `--handoff PATH` and a running server offers its socket there: take
//!    it (`fibrpc::server::take_listener`);
//! 2. systemd-style socket activation (`LISTEN_FDS`): the inherited one;
//! 3. bind `--addr` with `SO_REUSEPORT`.
//!
//! With `--handoff PATH`, the socket is then offered at `PATH` in turn to
//! the next process. The answer to `Echo` is `"<pid>: <message>"`, so a
//! client can tell which process served it.
//!
//! Prints `LISTENING <addr> <source>` once it accepts, and `STOPPED
//! <calls>` after a graceful stop, which SIGTERM, SIGINT or the end of
//! standard input starts. `--grace-ms N` bounds the stop (default 5000).

use std::future::Future;
use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fibrpc::{Controller, RpcError, Server, ServerOptions};
use fibrpc_example::{EchoRequest, EchoResponse, EchoService, EchoServiceServer};

struct Echo {
    calls: Arc<AtomicU64>,
}

impl EchoService for Echo {
    fn echo(&self, _: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(EchoResponse {
            message: format!("{}: {}", std::process::id(), request.message),
        })
    }
}

/// An echo server restarted by handing its listening socket over.
#[derive(clap::Parser)]
#[command(name = "restart_echo")]
struct Args {
    /// Where to listen when no socket is handed over or inherited.
    #[arg(long, default_value = "127.0.0.1:8000")]
    addr: String,
    /// Take the listening socket from a server offering it at PATH, and
    /// offer it there in turn.
    #[arg(long, value_name = "PATH")]
    handoff: Option<String>,
    /// Milliseconds a graceful stop may take.
    #[arg(long = "grace-ms", default_value = "5000", value_parser = parse_millis)]
    grace: Duration,
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    s.parse()
        .map(Duration::from_millis)
        .map_err(|e| format!("{e}"))
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let calls = Arc::new(AtomicU64::new(0));
    let mut server = Server::new(ServerOptions {
        reuse_port: true,
        stop_grace: args.grace,
        ..Default::default()
    });
    server
        .add_service(EchoServiceServer::new(Echo {
            calls: calls.clone(),
        }))
        .expect("add EchoService");
    let source = match start(&mut server, &args) {
        Ok(source) => source,
        Err(e) => {
            eprintln!("restart_echo: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Some(path) = &args.handoff {
        if let Err(e) = server.offer_listener(path) {
            eprintln!("restart_echo: cannot offer the listener at {path}: {e}");
            std::process::exit(1);
        }
    }
    say(&format!(
        "LISTENING {} {source}",
        server.listen_addr().expect("started")
    ));
    let stop = match signal_or_stdin_closed() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("restart_echo: cannot take SIGTERM: {e}");
            std::process::exit(1);
        }
    };
    server.run_until(stop);
    say(&format!("STOPPED {}", calls.load(Ordering::Relaxed)));
}

/// Starts on the predecessor's socket, an inherited one, or a new one;
/// says which.
fn start(server: &mut Server, args: &Args) -> Result<&'static str, RpcError> {
    if let Some(path) = &args.handoff {
        // Nobody offering there (the first process) is not an error.
        if let Ok(listener) = fibrpc::server::take_listener(path) {
            server.start_on_listener(listener)?;
            return Ok("taken-over");
        }
    }
    if let Some(listener) = fibrpc::server::listen_fds()?.into_iter().next() {
        server.start_on_listener(listener)?;
        return Ok("inherited");
    }
    server.start(args.addr.as_str())?;
    Ok("bound")
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Completes on SIGINT/SIGTERM or at the end of standard input.
fn signal_or_stdin_closed() -> std::io::Result<impl Future<Output = ()>> {
    let mut signal = fibrpc::server::shutdown_signal()?;
    let closed: Arc<Mutex<(bool, Option<Waker>)>> = Arc::default();
    let set = closed.clone();
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let mut s = set.lock().unwrap_or_else(|e| e.into_inner());
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    });
    Ok(std::future::poll_fn(move |cx: &mut Context<'_>| {
        if Pin::new(&mut signal).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        let mut s = closed.lock().unwrap_or_else(|e| e.into_inner());
        if s.0 {
            return Poll::Ready(());
        }
        s.1 = Some(cx.waker().clone());
        Poll::Pending
    }))
}
