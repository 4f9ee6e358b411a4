//! Restarting a server without refusing a connection, with two processes
//! of the `restart_echo` example: A serves; clients call in a loop; B
//! starts on the same port, taking A's listening socket; A stops
//! gracefully; the clients never see a refused connection or a failed
//! call, and their calls move from A to B. Also: a process started by
//! systemd's socket-activation convention serves on the inherited socket.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use fibrpc::{Channel, ChannelOptions, ConnectionType, Controller, RpcError};
use fibrpc_example::{EchoRequest, EchoResponse};

/// A running `restart_echo`; killed if the test ends early.
struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn start(args: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_restart_echo"));
        command.args(args);
        Process::spawn(command)
    }

    fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start restart_echo");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            stdin,
            lines,
        }
    }

    /// The rest of the first line starting with `mark` (bounded wait).
    fn expect(&self, mark: &str) -> String {
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(mark) {
                        return rest.trim().to_string();
                    }
                }
                Err(e) => panic!("restart_echo never printed {mark:?}: {e}"),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes its standard input (a graceful stop) and waits for the exit.
    fn stop(&mut self) -> u64 {
        drop(self.stdin.take());
        let calls = self.expect("STOPPED ").parse().unwrap();
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "restart_echo exited with {status}");
                return calls;
            }
            assert!(Instant::now() < give_up, "restart_echo did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one client saw.
#[derive(Default, Debug)]
struct Seen {
    calls: usize,
    /// Calls answered by each server process, in order of first answer.
    by_pid: Vec<(u32, usize)>,
    /// Attempts that failed and were sent again, with why.
    retried: Vec<String>,
}

/// Calls `addr` in a loop until `done` (or 10 s), every call checked.
fn client(addr: SocketAddr, connection_type: ConnectionType, done: Arc<AtomicBool>) -> Seen {
    let channel = Channel::new(
        addr,
        ChannelOptions {
            connection_type,
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
    .unwrap();
    let mut seen = Seen::default();
    let give_up = Instant::now() + Duration::from_secs(10);
    while !done.load(Ordering::Relaxed) && Instant::now() < give_up {
        let mut cntl = Controller::new();
        let message = format!("call {}", seen.calls);
        let r: Result<EchoResponse, RpcError> = channel.call(
            "example.EchoService",
            "Echo",
            &mut cntl,
            &EchoRequest {
                message: message.clone(),
            },
        );
        for e in cntl.attempt_errors() {
            assert_ne!(
                e.code,
                libc::ECONNREFUSED,
                "a connection was refused ({connection_type:?}, call {}): {e}",
                seen.calls
            );
            seen.retried.push(e.to_string());
        }
        let answer = r
            .unwrap_or_else(|e| panic!("call {} failed ({connection_type:?}): {e}", seen.calls))
            .message;
        let (pid, echoed) = answer.split_once(": ").expect("<pid>: <message>");
        assert_eq!(echoed, message);
        let pid: u32 = pid.parse().unwrap();
        match seen.by_pid.last_mut() {
            Some((p, n)) if *p == pid => *n += 1,
            _ => seen.by_pid.push((pid, 1)),
        }
        seen.calls += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}

#[test]
fn a_new_process_takes_over_the_port_while_the_old_one_drains() {
    let handoff = std::env::temp_dir().join(format!("fibrpc-restart-{}.sock", std::process::id()));
    let handoff = handoff.to_str().unwrap();
    let mut a = Process::start(&["--addr", "127.0.0.1:0", "--handoff", handoff]);
    let listening = a.expect("LISTENING ");
    let (addr, source) = listening.split_once(' ').unwrap();
    assert_eq!(source, "bound");
    let addr: SocketAddr = addr.parse().unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = [
        ConnectionType::Single,
        ConnectionType::Pooled,
        ConnectionType::Short,
    ]
    .into_iter()
    .map(|t| {
        let done = done.clone();
        std::thread::spawn(move || client(addr, t, done))
    })
    .collect();

    std::thread::sleep(Duration::from_millis(500));
    let port = addr.port().to_string();
    let mut b = Process::start(&["--addr", &format!("127.0.0.1:{port}"), "--handoff", handoff]);
    let listening = b.expect("LISTENING ");
    assert_eq!(listening, format!("{addr} taken-over"));
    std::thread::sleep(Duration::from_millis(500));
    let served_by_a = a.stop();
    // B alone, for a while.
    std::thread::sleep(Duration::from_millis(1000));
    done.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let served_by_b = b.stop();
    eprintln!("{seen:#?}");

    let total: usize = seen.iter().map(|s| s.calls).sum();
    // Every call ran once: an attempt sent again had not run.
    assert_eq!(served_by_a + served_by_b, total as u64, "{seen:#?}");
    for s in &seen {
        // Each client was served by A first and by B last (in between,
        // new connections went to either: both accepted from one queue).
        let pids: Vec<u32> = s.by_pid.iter().map(|(p, _)| *p).collect();
        assert_eq!(pids.first(), Some(&a.pid()), "{seen:#?}");
        assert_eq!(pids.last(), Some(&b.pid()), "{seen:#?}");
    }
}

#[test]
fn socket_activation_serves_on_the_inherited_socket() {
    // The test plays systemd: it binds, and the server inherits the socket
    // as descriptor 3 with LISTEN_FDS=1 and LISTEN_PID=<its pid> (the
    // shell execs the server, so `$$` is the server's pid).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = listener.as_raw_fd();
    let mut command = Command::new("/bin/sh");
    command
        .args(["-c", r#"LISTEN_PID=$$ exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_restart_echo"))
        // Not bound: the inherited socket wins.
        .args(["--addr", "127.0.0.1:1"])
        .env("LISTEN_FDS", "1");
    // SAFETY: runs in the child between fork and exec, making only
    // async-signal-safe calls (dup2, fcntl) on descriptors it owns. The
    // descriptor 3 it leaves has no close-on-exec flag, so the server
    // inherits it.
    unsafe {
        command.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, 3) == 3
            };
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let mut server = Process::spawn(command);
    drop(listener);
    assert_eq!(server.expect("LISTENING "), format!("{addr} inherited"));
    let channel = Channel::new(addr, ChannelOptions::default()).unwrap();
    let r: EchoResponse = channel
        .call(
            "example.EchoService",
            "Echo",
            &mut Controller::new(),
            &EchoRequest {
                message: "activated".into(),
            },
        )
        .unwrap();
    assert_eq!(r.message, format!("{}: activated", server.pid()));
    assert_eq!(server.stop(), 1);
}
