//! A server connection's state and its reader: frames are parsed in
//! order, in the connection's reader (one at a time), and only a
//! complete request leaves as a message.

use std::collections::VecDeque;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;
use rustc_hash::FxHashMap;

use super::frame::{self, flag, kind, setting, FrameHead, Reason, PREFACE};
use super::hpack::{self, DecodeError};
use super::inbound::{Appended, Inbound, InboundEnd};
use super::payload::{conn_err, data_of, header_fragment, ConnError, PendingAcks, RecvWindow};
use super::request::{self, Fields};
use super::send::SendSide;
use super::wire::Wire;
use super::{H2Options, H2Request};
use crate::protocol::Parsed;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// Streams this side reset whose late frames are dropped quietly (a
/// peer may have sent them before it saw the reset, RFC 9113 §5.4.2).
const RECENT_RESETS: usize = 128;

/// How long a connection that got a GOAWAY for its errors may take to
/// close its side once the GOAWAY is written (nginx's
/// `lingering_timeout`), and to take the GOAWAY at all.
const LINGER: Duration = Duration::from_secs(5);

/// CONTINUATION frames one header block may take (CVE-2024-27316:
/// endless empty CONTINUATIONs cost CPU without growing the block).
const MAX_CONTINUATIONS: u32 = 64;

/// What an HTTP/2 server connection keeps (in the socket's protocol
/// slot).
#[derive(Debug, Default)]
pub(crate) struct H2Conn {
    /// The reader's state (only the reader locks it).
    reader: Mutex<Reader>,
    /// The sending half (see `send.rs`).
    pub(super) send: fibrpc_fiber::sync::Mutex<SendSide>,
    /// The highest stream id the peer opened (read by `go_away`).
    last_stream: AtomicU32,
    /// The server stopped: streams opened from now on are refused.
    going_away: AtomicBool,
    /// Signalled when streaming responses may send again: a window
    /// opened, a stream was reset (see `stream_send.rs`).
    pub(super) send_room: fibrpc_fiber::sync::Condvar,
}

#[derive(Debug)]
struct Reader {
    decoder: hpack::Decoder,
    /// The header block being gathered (HEADERS without END_HEADERS).
    block: Option<Block>,
    last_stream: u32,
    /// Streams still receiving their request.
    open: FxHashMap<u32, RecvStream>,
    /// Streaming requests (already being processed) still receiving.
    streaming: FxHashMap<u32, Arc<Inbound>>,
    /// Streams this side reset lately (their late frames are dropped).
    recent_resets: VecDeque<u32>,
    /// What the peer may still send on the connection.
    conn_window: RecvWindow,
    /// Where the PING and SETTINGS acknowledgements not yet written
    /// stand in the output.
    pending_acks: PendingAcks,
    /// A GOAWAY for an error went out: input is dropped.
    dead: bool,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            decoder: hpack::Decoder::default(),
            block: None,
            last_stream: 0,
            open: FxHashMap::default(),
            streaming: FxHashMap::default(),
            recent_resets: VecDeque::new(),
            conn_window: RecvWindow::new(frame::DEFAULT_WINDOW),
            pending_acks: PendingAcks::default(),
            dead: false,
        }
    }
}

#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
    continuations: u32,
}

#[derive(Debug)]
struct RecvStream {
    req: Box<http::Request<IOBuf>>,
    /// What the peer may still send on this stream.
    window: i64,
    /// Bytes received and not yet given back.
    unacked: u32,
}

/// The first bytes of a connection that has no HTTP/2 state yet: the
/// preface makes it HTTP/2.
pub(super) fn detect(buf: &mut IOBuf, sock: &Arc<Socket>, opts: &H2Options) -> Parsed<H2Request> {
    let mut head = [0u8; 24];
    let n = buf.copy_to(&mut head, 0);
    if head[..n] != PREFACE[..n] {
        // `PRI ` starts no other protocol's message: a client meant
        // HTTP/2 and got its preface wrong. Over TLS, ALPN said so.
        let meant_h2 = n >= 4 && head[..4] == PREFACE[..4];
        if !meant_h2 && sock.alpn() != Some(b"h2") {
            return Parsed::NotMine;
        }
        let mut out = IOBuf::new();
        frame::put_goaway(
            &mut out,
            0,
            Reason::ProtocolError,
            b"bad connection preface",
        );
        let _ = sock.write(out);
        return Parsed::Bad("not the HTTP/2 connection preface".into());
    }
    if n < PREFACE.len() {
        return Parsed::NeedMore;
    }
    let Some(conn) = sock.protocol_state::<H2Conn>() else {
        return Parsed::Bad("HTTP/2 preface on a connection of another protocol".into());
    };
    buf.pop_front(PREFACE.len());
    conn.start(sock, opts);
    if buf.is_empty() {
        Parsed::Consumed
    } else {
        conn.parse(buf, sock, opts)
    }
}

impl H2Conn {
    /// Sends the server's SETTINGS (the server preface) and opens the
    /// connection's window to what streams are given.
    pub(super) fn start<W: Wire>(&self, sock: &W, opts: &H2Options) {
        let mut r = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = IOBuf::new();
        frame::put_settings(
            &mut out,
            &[
                (setting::ENABLE_PUSH, 0),
                (setting::MAX_CONCURRENT_STREAMS, opts.max_concurrent_streams),
                (setting::INITIAL_WINDOW_SIZE, opts.initial_window_size),
                (setting::MAX_FRAME_SIZE, opts.max_frame_size),
                (setting::MAX_HEADER_LIST_SIZE, opts.max_header_list_size),
            ],
        );
        let grow = r.conn_window.open_to(opts.initial_window_size);
        if grow > 0 {
            frame::put_window_update(&mut out, 0, grow);
        }
        sock.write(out);
    }

    /// Parses frames until a request is complete (a message), the input
    /// ends within a frame, or the peer broke the protocol (GOAWAY; the
    /// connection closes once it is written).
    pub(super) fn parse<W: Wire>(
        &self,
        buf: &mut IOBuf,
        sock: &W,
        opts: &H2Options,
    ) -> Parsed<H2Request> {
        let mut r = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if r.dead {
            buf.clear();
            return Parsed::Consumed;
        }
        let mut consumed = false;
        let mut out = IOBuf::new();
        let result = loop {
            let Some(head) = FrameHead::peek(buf) else {
                break Ok(None);
            };
            if head.len > opts.max_frame_size {
                break conn_err(
                    Reason::FrameSizeError,
                    format!(
                        "a frame of {} bytes, over SETTINGS_MAX_FRAME_SIZE",
                        head.len
                    ),
                );
            }
            if buf.len() < frame::HEADER_LEN + head.len as usize {
                break Ok(None);
            }
            buf.pop_front(frame::HEADER_LEN);
            let payload = buf.split_to(head.len as usize);
            consumed = true;
            match r.on_frame(self, head, payload, sock, opts, &mut out) {
                Ok(Some(msg)) => break Ok(Some(msg)),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(msg) => {
                if !out.is_empty() {
                    sock.write(out);
                }
                match msg {
                    Some(m) => Parsed::Message(m),
                    None if consumed => Parsed::Consumed,
                    None => Parsed::NeedMore,
                }
            }
            Err((reason, why)) => {
                r.dead = true;
                buf.clear();
                // Streaming handlers stop reading and sending now, not
                // when the connection closes.
                for (_, inbound) in r.streaming.drain() {
                    inbound.break_off(InboundEnd::Failed(reason));
                }
                self.send_room.notify_all();
                let last = r.last_stream;
                drop(r);
                let mut send = self.send.lock();
                frame::put_goaway(&mut out, last, reason, why.as_bytes());
                send.goaway = Some(last);
                send.write(sock, out);
                drop(send);
                if crate::flags::log_connection_errors() {
                    tracing::warn!(
                        peer = %sock.peer(),
                        error = ?reason,
                        reason = %why,
                        "closing HTTP/2 connection: GOAWAY"
                    );
                }
                sock.close_after_goaway();
                Parsed::Consumed
            }
        }
    }

    /// The connection's HTTP/2 state for the console: the stream count
    /// and windows of the sending half (only if its lock is free: the
    /// console never waits for a writer), the last stream the peer opened
    /// and whether GOAWAY went out.
    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![(
            "h2 last stream id",
            self.last_stream.load(Ordering::Relaxed).to_string(),
        )];
        match self.send.try_lock() {
            Some(send) => v.extend(send.describe()),
            None => v.push(("h2 streams", "busy (a writer holds them)".to_string())),
        }
        v.push((
            "h2 server stopping",
            self.going_away.load(Ordering::Relaxed).to_string(),
        ));
        v
    }

    /// The server stopped: GOAWAY (NO_ERROR) with the last stream the
    /// peer opened; streams opened after it are refused.
    pub(super) fn go_away<W: Wire>(&self, sock: &W) {
        self.going_away.store(true, Ordering::SeqCst);
        let last = self.last_stream.load(Ordering::SeqCst);
        let mut send = self.send.lock();
        if send.goaway.is_some() {
            return;
        }
        send.goaway = Some(last);
        let mut out = IOBuf::new();
        frame::put_goaway(&mut out, last, Reason::NoError, b"server stopping");
        send.write(sock, out);
    }

    /// Writes a response on `stream` (from the request's fiber).
    pub(crate) fn respond<W: Wire>(&self, sock: &W, stream: u32, resp: super::ResponseParts) {
        self.send.lock().respond(sock, stream, resp);
    }
}

impl Reader {
    fn on_frame<W: Wire>(
        &mut self,
        conn: &H2Conn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Request>, ConnError> {
        if let Some(b) = &self.block {
            if head.kind != kind::CONTINUATION || head.stream != b.stream {
                return conn_err(
                    Reason::ProtocolError,
                    "a header block not followed by its CONTINUATION",
                );
            }
        }
        match head.kind {
            kind::DATA => self.on_data(conn, head, payload, sock, opts, out),
            kind::HEADERS => self.on_headers(conn, head, payload, sock, opts, out),
            kind::CONTINUATION => self.on_continuation(conn, head, payload, sock, opts, out),
            kind::PRIORITY => {
                if head.stream == 0 {
                    return conn_err(Reason::ProtocolError, "PRIORITY on stream 0");
                }
                if head.len != 5 {
                    return conn_err(Reason::FrameSizeError, "PRIORITY of a wrong size");
                }
                Ok(None)
            }
            kind::RST_STREAM => {
                if head.stream == 0 {
                    return conn_err(Reason::ProtocolError, "RST_STREAM on stream 0");
                }
                if head.len != 4 {
                    return conn_err(Reason::FrameSizeError, "RST_STREAM of a wrong size");
                }
                if head.stream > self.last_stream {
                    return conn_err(Reason::ProtocolError, "RST_STREAM on an idle stream");
                }
                let mut receiving = self.open.remove(&head.stream).is_some();
                if let Some(inbound) = self.streaming.remove(&head.stream) {
                    // A stream whose handler is done costs nothing more.
                    receiving = !inbound.is_done();
                    let mut code = [0u8; 4];
                    payload.copy_to(&mut code, 0);
                    inbound.break_off(InboundEnd::Reset(u32::from_be_bytes(code)));
                }
                let mut send = conn.send.lock();
                let answering = send.close(head.stream);
                conn.send_room.notify_all();
                if answering || receiving {
                    send.reset_debt += 1;
                    if send.reset_debt > opts.max_reset_streams {
                        return conn_err(
                            Reason::EnhanceYourCalm,
                            format!(
                                "more than {} streams reset while in process",
                                opts.max_reset_streams
                            ),
                        );
                    }
                }
                Ok(None)
            }
            kind::SETTINGS => self.on_settings(conn, head, payload, sock, opts),
            kind::PUSH_PROMISE => conn_err(Reason::ProtocolError, "PUSH_PROMISE from a client"),
            kind::PING => {
                if head.stream != 0 {
                    return conn_err(Reason::ProtocolError, "PING on a stream");
                }
                if head.len != 8 {
                    return conn_err(Reason::FrameSizeError, "PING of a wrong size");
                }
                if !head.has(flag::ACK) {
                    self.pending_acks.count(sock, opts)?;
                    frame::put_head(out, 8, kind::PING, flag::ACK, 0);
                    out.append_owned(payload);
                }
                Ok(None)
            }
            kind::GOAWAY => {
                if head.stream != 0 {
                    return conn_err(Reason::ProtocolError, "GOAWAY on a stream");
                }
                // The client opens no more streams; those open are
                // answered, then it closes.
                Ok(None)
            }
            kind::WINDOW_UPDATE => {
                if head.len != 4 {
                    return conn_err(Reason::FrameSizeError, "WINDOW_UPDATE of a wrong size");
                }
                let mut b = [0u8; 4];
                payload.copy_to(&mut b, 0);
                let inc = u32::from_be_bytes(b) & 0x7fff_ffff;
                if inc == 0 {
                    if head.stream == 0 {
                        return conn_err(Reason::ProtocolError, "WINDOW_UPDATE of 0");
                    }
                    self.reset(conn, head.stream, Reason::ProtocolError, out, opts)?;
                    return Ok(None);
                }
                if head.stream > self.last_stream {
                    return conn_err(Reason::ProtocolError, "WINDOW_UPDATE on an idle stream");
                }
                let mut send = conn.send.lock();
                match send.window_update(head.stream, inc) {
                    Err((reason, why)) => return conn_err(reason, why),
                    Ok(false) => {
                        drop(send);
                        self.reset(conn, head.stream, Reason::FlowControlError, out, opts)?;
                        return Ok(None);
                    }
                    Ok(true) => {
                        send.flush(sock);
                        conn.send_room.notify_all();
                    }
                }
                Ok(None)
            }
            // Unknown types are ignored (RFC 9113 §4.1).
            _ => Ok(None),
        }
    }

    fn on_settings<W: Wire>(
        &mut self,
        conn: &H2Conn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
    ) -> Result<Option<H2Request>, ConnError> {
        if head.stream != 0 {
            return conn_err(Reason::ProtocolError, "SETTINGS on a stream");
        }
        if head.has(flag::ACK) {
            if head.len != 0 {
                return conn_err(Reason::FrameSizeError, "SETTINGS ACK with a payload");
            }
            return Ok(None);
        }
        if head.len % 6 != 0 {
            return conn_err(Reason::FrameSizeError, "SETTINGS of a wrong size");
        }
        let bytes = payload.to_vec();
        let mut send = conn.send.lock();
        for s in bytes.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                setting::ENABLE_PUSH if value > 1 => {
                    return conn_err(Reason::ProtocolError, "SETTINGS_ENABLE_PUSH not 0 or 1");
                }
                setting::INITIAL_WINDOW_SIZE => {
                    if i64::from(value) > frame::MAX_WINDOW {
                        return conn_err(
                            Reason::FlowControlError,
                            "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1",
                        );
                    }
                    if let Err((reason, why)) = send.set_initial_window(value) {
                        return conn_err(reason, why);
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME_SIZE..=frame::MAX_MAX_FRAME_SIZE).contains(&value)
                    {
                        return conn_err(
                            Reason::ProtocolError,
                            "SETTINGS_MAX_FRAME_SIZE out of range",
                        );
                    }
                    send.set_max_frame(value);
                }
                // HEADER_TABLE_SIZE: the encoder uses no dynamic table.
                // MAX_CONCURRENT_STREAMS: this server pushes none.
                // MAX_HEADER_LIST_SIZE: advisory; unknown ids are ignored.
                _ => {}
            }
        }
        self.pending_acks.count(sock, opts)?;
        // The acknowledgement goes before any frame sent under the new
        // settings (a larger frame size, say): a peer may hold to the
        // old ones until it sees it (gRPC's C core does).
        let mut ack = IOBuf::new();
        frame::put_head(&mut ack, 0, kind::SETTINGS, flag::ACK, 0);
        send.write(sock, ack);
        send.flush(sock);
        conn.send_room.notify_all();
        Ok(None)
    }

    fn on_headers<W: Wire>(
        &mut self,
        conn: &H2Conn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Request>, ConnError> {
        if head.stream == 0 {
            return conn_err(Reason::ProtocolError, "HEADERS on stream 0");
        }
        let bytes = header_fragment(&head, payload)?;
        let block = Block {
            stream: head.stream,
            end_stream: head.has(flag::END_STREAM),
            bytes,
            continuations: 0,
        };
        self.check_block_size(&block, opts)?;
        if head.has(flag::END_HEADERS) {
            self.on_block(conn, block, sock, opts, out)
        } else {
            self.block = Some(block);
            Ok(None)
        }
    }

    fn on_continuation<W: Wire>(
        &mut self,
        conn: &H2Conn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Request>, ConnError> {
        let Some(mut block) = self.block.take() else {
            return conn_err(Reason::ProtocolError, "CONTINUATION without a header block");
        };
        block.bytes.extend_from_slice(&payload.to_vec());
        block.continuations += 1;
        if block.continuations > MAX_CONTINUATIONS {
            return conn_err(
                Reason::EnhanceYourCalm,
                format!("a header block in more than {MAX_CONTINUATIONS} CONTINUATION frames"),
            );
        }
        self.check_block_size(&block, opts)?;
        if head.has(flag::END_HEADERS) {
            self.on_block(conn, block, sock, opts, out)
        } else {
            self.block = Some(block);
            Ok(None)
        }
    }

    /// A compressed block over the header list limit is refused before
    /// it is decoded (see `H2Options::max_header_list_size`).
    fn check_block_size(&self, block: &Block, opts: &H2Options) -> Result<(), ConnError> {
        if block.bytes.len() > opts.max_header_list_size as usize {
            return conn_err(
                Reason::EnhanceYourCalm,
                format!(
                    "a header block over SETTINGS_MAX_HEADER_LIST_SIZE ({} bytes)",
                    opts.max_header_list_size
                ),
            );
        }
        Ok(())
    }

    /// A whole header block: a new request, or a request's trailers.
    fn on_block<W: Wire>(
        &mut self,
        conn: &H2Conn,
        block: Block,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Request>, ConnError> {
        let id = block.stream;
        // Decoded whatever becomes of the stream: the table must stay in
        // step with the peer's.
        let mut fields = Fields::default();
        let decoded =
            self.decoder
                .decode(&block.bytes, opts.max_header_list_size as usize, |n, v| {
                    fields.add(n, v)
                });
        let too_large = match decoded {
            Ok(()) => false,
            Err(DecodeError::ListTooLarge) => true,
            Err(DecodeError::Compression(why)) => {
                return conn_err(Reason::CompressionError, format!("HPACK: {why}"))
            }
        };
        if let Some(inbound) = self.streaming.get(&id).cloned() {
            // A streaming request's trailers end its input.
            if !block.end_stream {
                return conn_err(Reason::ProtocolError, "trailers without END_STREAM");
            }
            if inbound.client_done() {
                self.reset(conn, id, Reason::StreamClosed, out, opts)?;
            } else {
                inbound.finish();
            }
            return Ok(None);
        }
        if let Some(s) = self.open.remove(&id) {
            // Trailers: they end the request (their fields are dropped).
            if !block.end_stream {
                return conn_err(Reason::ProtocolError, "trailers without END_STREAM");
            }
            return self.complete(conn, id, s.req, sock, opts, out);
        }
        if id <= self.last_stream {
            if self.recent_resets.contains(&id) {
                return Ok(None);
            }
            return conn_err(
                Reason::ProtocolError,
                format!("HEADERS on stream {id}: a stream id reused or decreasing"),
            );
        }
        if id % 2 == 0 {
            return conn_err(Reason::ProtocolError, "a client stream with an even id");
        }
        self.last_stream = id;
        conn.last_stream.store(id, Ordering::SeqCst);
        if conn.going_away.load(Ordering::SeqCst) {
            self.refuse(id, Reason::RefusedStream, out);
            return Ok(None);
        }
        if too_large {
            let resp = request::status_only(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            self.reject(conn, id, block.end_stream, resp, sock);
            return Ok(None);
        }
        {
            let mut send = conn.send.lock();
            if send.active() >= opts.max_concurrent_streams as usize {
                drop(send);
                self.refuse(id, Reason::RefusedStream, out);
                return Ok(None);
            }
            send.open(id);
        }
        let req = match fields.into_request() {
            Ok(r) => r,
            Err(why) => {
                if crate::flags::log_connection_errors() {
                    tracing::warn!(peer = %sock.peer(), stream = id, reason = %why,
                        "HTTP/2: malformed request, stream reset");
                }
                self.reset(conn, id, Reason::ProtocolError, out, opts)?;
                return Ok(None);
            }
        };
        if sock.is_streaming_call(&req) {
            // Processed from its HEADERS on: its DATA goes to the
            // handler as it comes.
            let inbound = Arc::new(Inbound::new(id, opts.initial_window_size, block.end_stream));
            self.forget_done_streams();
            // Kept until the handler is done, even once the client
            // finished sending: a RST_STREAM must still reach it.
            self.streaming.insert(id, inbound.clone());
            return Ok(Some(H2Request {
                stream: id,
                req,
                inbound: Some(inbound),
            }));
        }
        if block.end_stream {
            return self.complete(conn, id, req, sock, opts, out);
        }
        self.open.insert(
            id,
            RecvStream {
                req,
                window: i64::from(opts.initial_window_size),
                unacked: 0,
            },
        );
        Ok(None)
    }

    fn on_data<W: Wire>(
        &mut self,
        conn: &H2Conn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Request>, ConnError> {
        if head.stream == 0 {
            return conn_err(Reason::ProtocolError, "DATA on stream 0");
        }
        self.conn_window.receive(head.len, opts, out)?;
        let data = data_of(&head, payload)?;
        let len = i64::from(head.len);
        let id = head.stream;
        if let Some(inbound) = self.streaming.get(&id).cloned() {
            let end = head.has(flag::END_STREAM);
            if inbound.client_done() {
                self.reset(conn, id, Reason::StreamClosed, out, opts)?;
                return Ok(None);
            }
            match inbound.append(data, head.len, end) {
                Appended::Kept => {}
                Appended::Dropped(n) => {
                    if n > 0 && !end {
                        frame::put_window_update(out, id, n);
                    }
                }
                Appended::OverWindow => {
                    self.reset(conn, id, Reason::FlowControlError, out, opts)?;
                    return Ok(None);
                }
            }
            return Ok(None);
        }
        let Some(s) = self.open.get_mut(&id) else {
            if id > self.last_stream {
                return conn_err(Reason::ProtocolError, "DATA on an idle stream");
            }
            if !self.recent_resets.contains(&id) {
                self.reset(conn, id, Reason::StreamClosed, out, opts)?;
            }
            return Ok(None);
        };
        if len > s.window {
            self.reset(conn, id, Reason::FlowControlError, out, opts)?;
            return Ok(None);
        }
        s.window -= len;
        if s.req.body().len() + data.len() > sock.max_body_size() {
            let resp = request::status_only(http::StatusCode::PAYLOAD_TOO_LARGE);
            let end = head.has(flag::END_STREAM);
            self.reject(conn, id, end, resp, sock);
            return Ok(None);
        }
        s.req.body_mut().append_owned(data);
        if head.has(flag::END_STREAM) {
            return match self.open.remove(&id) {
                Some(s) => self.complete(conn, id, s.req, sock, opts, out),
                None => Ok(None),
            };
        }
        s.unacked += head.len;
        if s.unacked >= opts.initial_window_size / 2 {
            frame::put_window_update(out, id, s.unacked);
            s.window += i64::from(s.unacked);
            s.unacked = 0;
        }
        Ok(None)
    }

    /// A request whose last frame came: a message, unless its body is
    /// not the length its `content-length` said (malformed, RFC 9113
    /// §8.1.1: the stream is reset).
    fn complete<W: Wire>(
        &mut self,
        conn: &H2Conn,
        id: u32,
        req: Box<http::Request<IOBuf>>,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Request>, ConnError> {
        let declared = req.headers().get(http::header::CONTENT_LENGTH);
        let matches = declared.is_none_or(|v| {
            std::str::from_utf8(v.as_bytes())
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                == Some(req.body().len())
        });
        if !matches {
            if crate::flags::log_connection_errors() {
                tracing::warn!(peer = %sock.peer(), stream = id,
                    "HTTP/2: a body not of its content-length, stream reset");
            }
            self.reset(conn, id, Reason::ProtocolError, out, opts)?;
            return Ok(None);
        }
        Ok(Some(H2Request {
            stream: id,
            req,
            inbound: None,
        }))
    }

    /// Forgets the streaming requests whose handlers are done (or whose
    /// input ended), so that the map stays within the streams open; a
    /// late frame of one is dropped quietly (their responses ended with
    /// RST_STREAM(NO_ERROR), which the client may not have seen yet).
    fn forget_done_streams(&mut self) {
        let done: Vec<u32> = self
            .streaming
            .iter()
            .filter(|(_, s)| s.is_done())
            .map(|(&id, _)| id)
            .collect();
        for id in done {
            self.streaming.remove(&id);
            self.remember_reset(id);
        }
    }

    /// Remembers a stream this side reset (or refused): its late frames
    /// are dropped quietly.
    fn remember_reset(&mut self, id: u32) {
        if self.recent_resets.len() == RECENT_RESETS {
            self.recent_resets.pop_front();
        }
        self.recent_resets.push_back(id);
    }

    /// Refuses a new stream (nothing of it ran).
    fn refuse(&mut self, id: u32, reason: Reason, out: &mut IOBuf) {
        frame::put_rst_stream(out, id, reason);
        self.remember_reset(id);
    }

    /// Resets a stream for the peer's error; counted against
    /// `max_reset_streams`.
    fn reset(
        &mut self,
        conn: &H2Conn,
        id: u32,
        reason: Reason,
        out: &mut IOBuf,
        opts: &H2Options,
    ) -> Result<(), ConnError> {
        self.open.remove(&id);
        if let Some(inbound) = self.streaming.remove(&id) {
            inbound.break_off(InboundEnd::Failed(reason));
        }
        frame::put_rst_stream(out, id, reason);
        self.remember_reset(id);
        let mut send = conn.send.lock();
        send.close(id);
        conn.send_room.notify_all();
        send.reset_debt += 1;
        if send.reset_debt > opts.max_reset_streams {
            return conn_err(
                Reason::EnhanceYourCalm,
                format!(
                    "more than {} streams reset for errors",
                    opts.max_reset_streams
                ),
            );
        }
        Ok(())
    }

    /// Answers a stream at once with a status (its request is refused:
    /// too large) and, unless the peer finished sending, resets it with
    /// NO_ERROR so that it stops (RFC 9113 §8.1).
    fn reject<W: Wire>(
        &mut self,
        conn: &H2Conn,
        id: u32,
        peer_done: bool,
        resp: super::ResponseParts,
        sock: &W,
    ) {
        self.open.remove(&id);
        let mut send = conn.send.lock();
        if !send.is_active(id) {
            send.open(id);
        }
        send.respond(sock, id, resp);
        if !peer_done {
            let mut rst = IOBuf::new();
            frame::put_rst_stream(&mut rst, id, Reason::NoError);
            send.write(sock, rst);
            drop(send);
            self.remember_reset(id);
        }
    }
}

/// Closes a connection after its GOAWAY (nginx's lingering close):
/// once the GOAWAY is written, this side's half is shut (the peer reads
/// it, then the end), and input is still read and dropped until the
/// peer closes or [`LINGER`] passes. Closing at once would reset the
/// connection if the peer's frames were still arriving, and a reset
/// makes the peer's kernel drop the GOAWAY unread.
pub(super) fn linger_close(sock: &Arc<Socket>) {
    let s = sock.clone();
    let spawned = fibrpc_fiber::Builder::new().spawn(move || {
        let until = |deadline: Instant, done: &dyn Fn() -> bool| {
            let mut pause = Duration::from_millis(1);
            while !done() && !s.failed() && Instant::now() < deadline {
                let _ = fibrpc_fiber::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        };
        until(Instant::now() + LINGER, &|| s.unwritten_bytes() == 0);
        let _ = s.stream().shutdown(Shutdown::Write);
        // The peer's close fails the socket (the reader sees EOF).
        until(Instant::now() + LINGER, &|| false);
        s.set_failed(RpcError::new(errno::ECLOSE, "closed after GOAWAY"));
    });
    if spawned.is_err() {
        sock.set_failed(RpcError::new(errno::ECLOSE, "closed after GOAWAY"));
    }
}
