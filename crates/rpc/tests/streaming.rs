//! bRPC's streaming RPC end to end, fibrpc to fibrpc: opening streams
//! with a call, echo in order, many streams on one connection, flow
//! control under a large transfer, a stalled reader, close from either
//! side, connection failure, the console.

mod rpc_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc::protocol::streaming::{Stream, StreamInput, StreamInputHandler, StreamOptions};
use fibrpc::{errno, Channel, ChannelOptions, Controller, IOBuf, RpcError, Server, ServerOptions};
use rpc_common::wait_until;

use fibrpc_example::{
    EchoRequest, EchoResponse, EchoService, EchoServiceClient, EchoServiceServer,
};

type Accept = dyn Fn(&mut Controller, &EchoRequest) -> Result<EchoResponse, RpcError> + Send + Sync;

/// `example.EchoService` whose `Echo` does what the test says (accept
/// streams, or not).
struct StreamService(Arc<Accept>);

impl EchoService for StreamService {
    fn echo(&self, cntl: &mut Controller, request: EchoRequest) -> Result<EchoResponse, RpcError> {
        (self.0)(cntl, &request)
    }
}

fn start(
    f: impl Fn(&mut Controller, &EchoRequest) -> Result<EchoResponse, RpcError> + Send + Sync + 'static,
) -> Server {
    start_with(ServerOptions::default(), f)
}

fn start_with(
    options: ServerOptions,
    f: impl Fn(&mut Controller, &EchoRequest) -> Result<EchoResponse, RpcError> + Send + Sync + 'static,
) -> Server {
    let mut server = Server::new(options);
    server
        .add_service(EchoServiceServer::new(StreamService(Arc::new(f))))
        .unwrap();
    server.start("127.0.0.1:0").unwrap();
    server
}

fn client(server: &Server) -> EchoServiceClient {
    let channel = Channel::new(
        server.listen_addr().unwrap(),
        ChannelOptions {
            timeout: Some(Duration::from_secs(5)),
            ..Default::default()
        },
    )
    .unwrap();
    EchoServiceClient::new(channel)
}

fn req(s: &str) -> EchoRequest {
    EchoRequest { message: s.into() }
}

/// Opens a stream with one call.
fn open(c: &EchoServiceClient, options: StreamOptions) -> Stream {
    let mut cntl = Controller::new();
    let stream = Stream::create(&mut cntl, options);
    let resp = c
        .echo(&mut cntl, &req("open"))
        .expect("the call opening the stream");
    assert_eq!(resp.message, "accepted");
    assert!(stream.is_connected());
    stream
}

/// Echoes every message back on its stream, and counts closes.
#[derive(Default)]
struct EchoBack {
    closed: AtomicUsize,
    failed: AtomicUsize,
    batches: Mutex<Vec<usize>>,
}

impl StreamInputHandler for EchoBack {
    fn on_received_messages(&self, stream: &Stream, messages: &mut [IOBuf]) {
        self.batches.lock().unwrap().push(messages.len());
        for m in messages.iter() {
            // The peer's recv may be closed by now; nothing to do then.
            let _ = stream.write(m.clone());
        }
    }
    fn on_failed(&self, _stream: &Stream, _error: &RpcError) {
        self.failed.fetch_add(1, Ordering::SeqCst);
    }
    fn on_closed(&self, _stream: &Stream) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

fn echo_server() -> (Server, Arc<EchoBack>) {
    let h = Arc::new(EchoBack::default());
    let handler = h.clone();
    let server = start(move |cntl, _| {
        Stream::accept(cntl, StreamOptions::with_handler(handler.clone()))?;
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    });
    (server, h)
}

#[test]
fn messages_come_back_in_order_and_close_ends_both_sides() {
    let (server, h) = echo_server();
    let c = client(&server);
    let s = open(&c, StreamOptions::default());
    for i in 0..200 {
        s.write(IOBuf::from(format!("message {i}"))).unwrap();
    }
    for i in 0..200 {
        let m = s.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(m, format!("message {i}").as_bytes().to_vec());
    }
    s.close();
    assert!(s.is_closed());
    let e = s.write(IOBuf::from("late")).unwrap_err();
    assert_eq!(e.code, libc::EINVAL);
    assert!(wait_until(Duration::from_secs(5), || h
        .closed
        .load(Ordering::SeqCst)
        == 1));
    assert_eq!(h.failed.load(Ordering::SeqCst), 0, "a normal close");
    assert!(h.batches.lock().unwrap().iter().all(|&n| n <= 128));
}

#[test]
fn a_server_close_is_the_clients_end_of_stream() {
    let (tx, rx) = mpsc::channel::<Stream>();
    let tx = Mutex::new(tx);
    let server = start(move |cntl, _| {
        let s = Stream::accept(cntl, StreamOptions::default())?;
        // Written before the response: held, and sent after it.
        s.write(IOBuf::from("hello from server")).unwrap();
        tx.lock().unwrap().send(s).unwrap();
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    });
    let c = client(&server);
    let s = open(&c, StreamOptions::default());
    let theirs = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(s.recv().unwrap().unwrap(), b"hello from server".to_vec());
    theirs.write(IOBuf::from("bye from server")).unwrap();
    theirs.close();
    assert_eq!(s.recv().unwrap().unwrap(), b"bye from server".to_vec());
    assert_eq!(s.recv().unwrap(), None, "the end of the stream");
    assert!(s.is_closed());
}

#[test]
fn a_call_whose_stream_is_not_accepted_fails() {
    let server = start(|_, _| {
        Ok(EchoResponse {
            message: "not accepted".into(),
        })
    });
    let c = client(&server);
    let mut cntl = Controller::new();
    let s = Stream::create(&mut cntl, StreamOptions::default());
    let e = c.echo(&mut cntl, &req("x")).unwrap_err();
    assert_eq!(e.code, errno::EREQUEST, "{e}");
    assert!(s.is_closed());
    assert!(s.write(IOBuf::from("x")).is_err());

    // A short connection would close the stream with the call.
    let short = EchoServiceClient::new(
        Channel::new(
            server.listen_addr().unwrap(),
            ChannelOptions {
                connection_type: fibrpc::ConnectionType::Short,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let mut cntl = Controller::new();
    let s = Stream::create(&mut cntl, StreamOptions::default());
    let e = short.echo(&mut cntl, &req("x")).unwrap_err();
    assert_eq!(e.code, libc::EINVAL, "{e}");
    assert!(s.is_closed());

    // A stream whose call is never made closes with its controller.
    let mut cntl = Controller::new();
    let s = Stream::create(&mut cntl, StreamOptions::default());
    assert!(!s.is_closed());
    drop(cntl);
    assert!(s.is_closed());

    // A handler accepting a stream the request does not carry fails.
    let server = start(|cntl, _| {
        Stream::accept(cntl, StreamOptions::default())?;
        Ok(EchoResponse::default())
    });
    let e = client(&server)
        .echo(&mut Controller::new(), &req("x"))
        .unwrap_err();
    assert_eq!(e.code, libc::EINVAL, "{e}");
}

#[test]
fn several_streams_open_with_one_call() {
    let (tx, rx) = mpsc::channel::<Vec<Stream>>();
    let tx = Mutex::new(tx);
    let server = start(move |cntl, _| {
        let all = Stream::accept_all(cntl, StreamOptions::default())?;
        tx.lock().unwrap().send(all).unwrap();
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    });
    let c = client(&server);
    let mut cntl = Controller::new();
    let mine: Vec<Stream> = (0..3)
        .map(|_| Stream::create(&mut cntl, StreamOptions::default()))
        .collect();
    c.echo(&mut cntl, &req("open")).unwrap();
    let theirs = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(theirs.len(), 3);
    for (m, t) in mine.iter().zip(&theirs) {
        assert_eq!(m.remote_id(), t.id());
        assert_eq!(t.remote_id(), m.id());
        m.write(IOBuf::from(format!("to {}", t.id()))).unwrap();
        assert_eq!(
            t.recv().unwrap().unwrap(),
            format!("to {}", t.id()).as_bytes().to_vec()
        );
    }
}

#[test]
fn a_thousand_streams_share_one_connection() {
    let (server, h) = echo_server();
    let c = client(&server);
    let streams: Vec<Stream> = (0..1000)
        .map(|_| open(&c, StreamOptions::default()))
        .collect();
    assert_eq!(server.connection_count(), 1);
    for (i, s) in streams.iter().enumerate() {
        for j in 0..3 {
            s.write(IOBuf::from(format!("{i}/{j}"))).unwrap();
        }
    }
    for (i, s) in streams.iter().enumerate() {
        for j in 0..3 {
            let m = s.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
            assert_eq!(m, format!("{i}/{j}").as_bytes().to_vec());
        }
    }
    // One stream stalls (its reader stops); the others go on.
    let stalled = &streams[0];
    let window = fibrpc::protocol::streaming::DEFAULT_MAX_BUF_SIZE;
    let chunk = vec![7u8; 64 << 10];
    let mut n = 0;
    while stalled.try_write(IOBuf::from(&chunk[..])).is_ok() {
        n += 1;
        assert!(n <= 2 * window / chunk.len() + 2, "the window never filled");
    }
    for (i, s) in streams.iter().enumerate().skip(1).step_by(97) {
        s.write(IOBuf::from(format!("still {i}"))).unwrap();
        let m = s.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert_eq!(m, format!("still {i}").as_bytes().to_vec());
    }
    for s in &streams {
        s.close();
    }
    assert!(wait_until(Duration::from_secs(10), || h
        .closed
        .load(Ordering::SeqCst)
        == 1000));
    // Gone from the process's streams (other tests' may be open).
    let ids: Vec<i64> = streams.iter().map(Stream::id).collect();
    assert!(wait_until(Duration::from_secs(5), || {
        fibrpc::protocol::streaming::open_streams()
            .iter()
            .all(|s| !ids.contains(&s.id) && !ids.contains(&s.remote_id))
    }));
}

#[test]
fn a_large_transfer_stays_within_the_window() {
    const WINDOW: usize = 64 << 10;
    const MESSAGE: usize = 16 << 10;
    const TOTAL: usize = 1 << 30;
    let (tx, rx) = mpsc::channel::<Stream>();
    let tx = Mutex::new(tx);
    let server = start(move |cntl, _| {
        let s = Stream::accept(
            cntl,
            StreamOptions {
                max_buf_size: WINDOW,
                ..Default::default()
            },
        )?;
        tx.lock().unwrap().send(s).unwrap();
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    });
    let c = client(&server);
    let s = open(
        &c,
        StreamOptions {
            max_buf_size: WINDOW,
            ..Default::default()
        },
    );
    let theirs = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = 0usize;
        let mut expect = 0u8;
        while let Some(m) = theirs.recv().unwrap() {
            assert_eq!(m.len(), MESSAGE);
            assert_eq!(m.to_vec()[0], expect, "in order");
            expect = expect.wrapping_add(1);
            got += m.len();
        }
        (got, theirs.stats())
    });
    let started = Instant::now();
    let mut block = vec![0u8; MESSAGE];
    for i in 0..TOTAL / MESSAGE {
        block[0] = i as u8;
        s.write(IOBuf::from(&block[..])).unwrap();
    }
    s.close();
    let (got, stats) = reader.join().unwrap();
    let took = started.elapsed();
    assert_eq!(got, TOTAL);
    assert!(
        stats.max_unconsumed as usize <= WINDOW + MESSAGE,
        "the receiver held {} bytes unconsumed, over the window {WINDOW} plus one message",
        stats.max_unconsumed
    );
    println!(
        "{} MiB in {took:?}: {:.0} MiB/s, at most {} bytes unconsumed",
        TOTAL >> 20,
        (TOTAL >> 20) as f64 / took.as_secs_f64(),
        stats.max_unconsumed
    );
}

/// Counts idle timeouts.
#[derive(Default)]
struct Idle {
    timeouts: AtomicUsize,
}

impl StreamInputHandler for Idle {
    fn on_received_messages(&self, _: &Stream, _: &mut [IOBuf]) {}
    fn on_idle_timeout(&self, _: &Stream) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_writer_to_a_stalled_reader_waits_and_its_idle_timeout_fires() {
    const WINDOW: usize = 8 << 10;
    let (tx, rx) = mpsc::channel::<Stream>();
    let tx = Mutex::new(tx);
    let server = start(move |cntl, _| {
        let s = Stream::accept(
            cntl,
            StreamOptions {
                max_buf_size: WINDOW,
                ..Default::default()
            },
        )?;
        tx.lock().unwrap().send(s).unwrap();
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    });
    let idle = Arc::new(Idle::default());
    // The channel outlives its streams (its drop closes the connection).
    let c = client(&server);
    let s = open(
        &c,
        StreamOptions {
            max_buf_size: WINDOW,
            idle_timeout: Some(Duration::from_millis(200)),
            input: StreamInput::Handler(idle.clone()),
            ..Default::default()
        },
    );
    let theirs = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // The server never reads: the window fills.
    let mut written = 0;
    while s.try_write(IOBuf::from(vec![1u8; 1024])).is_ok() {
        written += 1024;
        assert!(written <= WINDOW, "wrote past the window");
    }
    let e = s.try_write(IOBuf::from("x")).unwrap_err();
    assert_eq!(e.code, libc::EAGAIN);
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let writer = s.clone();
    let blocked = std::thread::spawn(move || {
        let r = writer.write(IOBuf::from("blocked"));
        d.store(1, Ordering::SeqCst);
        r
    });
    assert!(wait_until(Duration::from_secs(5), || idle
        .timeouts
        .load(Ordering::SeqCst)
        >= 1));
    assert_eq!(done.load(Ordering::SeqCst), 0, "the writer still waits");
    // The reader takes one message: the window opens, the writer goes on.
    assert_eq!(theirs.recv().unwrap().unwrap().len(), 1024);
    let mut drained = 1024;
    while drained < written {
        drained += theirs.recv().unwrap().unwrap().len();
    }
    blocked.join().unwrap().unwrap();
    assert_eq!(theirs.recv().unwrap().unwrap(), b"blocked".to_vec());
    assert!(theirs.stats().max_unconsumed as usize <= WINDOW + 1024);
    // Closing wakes a writer that waits (once every FEEDBACK is in, so
    // that the window stays full).
    assert!(wait_until(Duration::from_secs(5), || {
        let st = s.stats();
        st.remote_consumed == st.produced
    }));
    while s.try_write(IOBuf::from(vec![1u8; 1024])).is_ok() {}
    let writer = s.clone();
    let blocked = std::thread::spawn(move || writer.write(IOBuf::from("never")));
    std::thread::sleep(Duration::from_millis(50));
    s.close();
    assert_eq!(blocked.join().unwrap().unwrap_err().code, libc::EINVAL);
}

#[test]
fn recv_reports_an_idle_timeout_and_stays_open() {
    let (tx, rx) = mpsc::channel::<Stream>();
    let tx = Mutex::new(tx);
    let server = start(move |cntl, _| {
        let s = Stream::accept(cntl, StreamOptions::default())?;
        tx.lock().unwrap().send(s).unwrap();
        Ok(EchoResponse {
            message: "accepted".into(),
        })
    });
    // The channel outlives its streams (its drop closes the connection).
    let c = client(&server);
    let s = open(
        &c,
        StreamOptions {
            idle_timeout: Some(Duration::from_millis(100)),
            ..Default::default()
        },
    );
    let theirs = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let e = s.recv().unwrap_err();
    assert_eq!(e.code, libc::ETIMEDOUT);
    assert!(!s.is_closed());
    theirs.write(IOBuf::from("after idle")).unwrap();
    assert_eq!(s.recv().unwrap().unwrap(), b"after idle".to_vec());
}

#[test]
fn a_connection_failure_fails_its_streams() {
    let (tx, rx) = mpsc::channel::<Stream>();
    let tx = Mutex::new(tx);
    let server = start_with(
        ServerOptions {
            stop_grace: Duration::from_millis(100),
            ..Default::default()
        },
        move |cntl, _| {
            let s = Stream::accept(cntl, StreamOptions::default())?;
            tx.lock().unwrap().send(s).unwrap();
            Ok(EchoResponse {
                message: "accepted".into(),
            })
        },
    );
    let c = client(&server);
    let s = open(&c, StreamOptions::default());
    let theirs = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let mut server = server;
    server.stop();
    server.join();
    let e = s.recv_timeout(Duration::from_secs(5)).unwrap_err();
    assert_ne!(e.code, errno::ERPCTIMEDOUT, "the stream failed: {e}");
    assert!(s.is_closed());
    // The failure reaches the streams in a fiber of its own.
    assert!(wait_until(Duration::from_secs(5), || theirs.is_closed()));
    assert!(theirs.write(IOBuf::from("x")).is_err());
}

#[test]
fn the_console_lists_streams() {
    let (server, _h) = echo_server();
    let c = client(&server);
    let s = open(&c, StreamOptions::default());
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut t = std::net::TcpStream::connect(server.listen_addr().unwrap()).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            t,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        t.read_to_string(&mut body).unwrap();
        body
    };
    let page = get("/streams");
    assert!(
        page.contains("1 streams") || page.contains(" streams"),
        "{page}"
    );
    assert!(page.contains(&format!("{}", s.id())), "{page}");
    assert!(page.contains("connected"), "{page}");
    let page = get("/connections");
    assert!(page.contains("streams"), "{page}");
    s.close();
}
