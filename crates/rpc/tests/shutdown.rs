//! Graceful shutdown: `Server::run_until` / `serve_with_shutdown` with a
//! future completed from another thread, and `Server::run_until_signal`
//! in a child process that receives SIGTERM.

mod rpc_common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fibrpc::{Channel, Controller, IOBuf, RpcError, Server, ServerOptions, Service};
use rpc_common::*;

/// Set in the child process: `signal_child_server` then acts as the server.
const CHILD_ENV: &str = "FIBRPC_SHUTDOWN_TEST_CHILD";

fn slow_request(ms: u32) -> EchoRequest {
    EchoRequest {
        sleep_ms: Some(ms),
        ..req("slow")
    }
}

/// A channel whose calls outlast the slow requests.
fn connect(addr: impl std::net::ToSocketAddrs) -> Result<Channel, RpcError> {
    let options = fibrpc::ChannelOptions {
        timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    };
    Channel::new(addr, options)
}

/// A shutdown future, and the sender that completes it.
fn shutdown_trigger() -> (
    tokio::sync::oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// Waits until the server has taken `n` calls (bounded).
fn wait_calls(calls: &std::sync::atomic::AtomicUsize, n: usize) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while calls.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < give_up,
            "the call never reached the server"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn run_until_answers_in_flight_calls_then_returns() {
    let (mut server, calls) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let (tx, shutdown) = shutdown_trigger();
    let serving = std::thread::spawn(move || {
        server.run_until(shutdown);
        (Instant::now(), server)
    });

    let channel = connect(addr).unwrap();
    let called = Instant::now();
    let call =
        std::thread::spawn(move || echo(&channel, &mut Controller::new(), &slow_request(300)));
    wait_calls(&calls, 1);
    tx.send(()).unwrap();

    assert_eq!(call.join().unwrap().unwrap().message, "slow");
    let (returned, server) = serving.join().unwrap();
    // The handler started after `called` and slept 300 ms.
    assert!(
        returned >= called + Duration::from_millis(300),
        "run_until returned before the call in flight was answered"
    );
    assert_eq!(server.listen_addr(), None, "stopped");
    // Nobody listens any more.
    let late = connect(addr).and_then(|ch| echo(&ch, &mut Controller::new(), &req("late")));
    assert!(late.is_err(), "a call after the stop succeeded");
}

#[test]
fn run_until_in_a_fiber_waits_in_the_fiber() {
    let (mut server, calls) = start_server(ServerOptions::default());
    let addr = server.listen_addr().unwrap();
    let (tx, shutdown) = shutdown_trigger();
    // Only the fiber waits: the workers go on serving meanwhile.
    let serving = fibrpc::fiber::spawn(move || {
        server.run_until(shutdown);
        server.listen_addr()
    });
    let channel = connect(addr).unwrap();
    assert_eq!(
        echo(&channel, &mut Controller::new(), &req("x"))
            .unwrap()
            .message,
        "x"
    );
    let call =
        std::thread::spawn(move || echo(&channel, &mut Controller::new(), &slow_request(200)));
    wait_calls(&calls, 2);
    tx.send(()).unwrap();
    assert_eq!(call.join().unwrap().unwrap().message, "slow");
    assert_eq!(serving.join().unwrap(), None, "stopped");
}

#[test]
fn serve_with_shutdown_starts_serves_and_stops() {
    // serve_with_shutdown blocks, so pick the port first.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let echo_service = Echo::default();
    let calls = echo_service.calls.clone();
    let (tx, shutdown) = shutdown_trigger();
    let serving = std::thread::spawn(move || {
        let mut server = Server::new(ServerOptions::default());
        server.add_service(echo_service).unwrap();
        server.serve_with_shutdown(("127.0.0.1", port), shutdown)
    });

    let channel = connect(("127.0.0.1", port)).unwrap();
    let give_up = Instant::now() + Duration::from_secs(10);
    let first = loop {
        // Until the server listens.
        match echo(&channel, &mut Controller::new(), &req("hi")) {
            Ok(r) => break r,
            Err(_) if Instant::now() < give_up => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("the server never answered: {e}"),
        }
    };
    assert_eq!(first.message, "hi");
    let call =
        std::thread::spawn(move || echo(&channel, &mut Controller::new(), &slow_request(200)));
    wait_calls(&calls, 2);
    drop(tx); // a dropped sender completes the future too

    assert_eq!(call.join().unwrap().unwrap().message, "slow");
    serving.join().unwrap().unwrap();
}

#[test]
fn a_dropped_shutdown_signal_restores_the_default_action() {
    fn sigterm_action() -> libc::sighandler_t {
        // SAFETY: a query: no new action, a valid out pointer.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(
                libc::sigaction(libc::SIGTERM, std::ptr::null(), &mut old),
                0
            );
            old.sa_sigaction
        }
    }
    assert_eq!(sigterm_action(), libc::SIG_DFL);
    let signal = fibrpc::server::shutdown_signal().unwrap();
    assert_ne!(sigterm_action(), libc::SIG_DFL, "the handler is installed");
    drop(signal);
    assert_eq!(sigterm_action(), libc::SIG_DFL);
}

/// The echo service, saying on stdout when a call arrives, so the parent
/// knows when to send the signal.
struct AnnouncingEcho(Echo);

impl Service for AnnouncingEcho {
    fn service_name(&self) -> &'static str {
        self.0.service_name()
    }
    fn method_names(&self) -> &'static [&'static str] {
        self.0.method_names()
    }
    fn call_method(
        &self,
        method: usize,
        cntl: &mut Controller,
        request: &IOBuf,
    ) -> Result<IOBuf, RpcError> {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "CHILD CALL");
        let _ = out.flush();
        drop(out);
        self.0.call_method(method, cntl, request)
    }
}

/// The server half of `sigterm_stops_gracefully`: does nothing unless run
/// by it as a child process.
#[test]
fn signal_child_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let mut server = Server::new(ServerOptions::default());
    server.add_service(AnnouncingEcho(Echo::default())).unwrap();
    server.start("127.0.0.1:0").unwrap();
    println!("CHILD ADDR {}", server.listen_addr().unwrap());
    std::io::stdout().flush().unwrap();
    server.run_until_signal().unwrap();
    println!("CHILD STOPPED");
    std::io::stdout().flush().unwrap();
}

#[test]
fn sigterm_stops_gracefully() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "signal_child_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Whatever happens below, the child does not outlive the test.
    struct Reaper(std::process::Child);
    impl Drop for Reaper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let mut child = Reaper(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The harness prints `test signal_child_server ... ` before the
    // child's first line, so a mark may be mid-line: return what follows it.
    let expect = |mark: &str| -> String {
        let give_up = Instant::now() + Duration::from_secs(20);
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find(mark) {
                        return line[at + mark.len()..].to_string();
                    }
                }
                Err(e) => panic!("the child never printed {mark:?}: {e}"),
            }
        }
    };

    let addr: std::net::SocketAddr = expect("CHILD ADDR ").trim().parse().unwrap();
    let channel = connect(addr).unwrap();
    let call =
        std::thread::spawn(move || echo(&channel, &mut Controller::new(), &slow_request(500)));
    expect("CHILD CALL");
    // SAFETY: sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    // The call in flight is answered despite the signal...
    assert_eq!(call.join().unwrap().unwrap().message, "slow");
    // ...and the child stops by itself, successfully.
    expect("CHILD STOPPED");
    let give_up = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < give_up, "the child did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "the child exited with {status}");
}
