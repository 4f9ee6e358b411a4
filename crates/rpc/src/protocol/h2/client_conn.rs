//! A client connection's HTTP/2 state (in the socket's protocol slot)
//! and its reader: the server's frames are parsed in order, in the
//! connection's reader, and only the end of a stream leaves as a
//! message (see `client.rs` for the whole picture).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_iobuf::IOBuf;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use rustc_hash::FxHashMap;

use super::client::{H2Reply, H2Response, StreamError, StreamRequest};
use super::client_send::ClientSend;
use super::client_stream::StreamSink;
use super::flow;
use super::frame::{self, flag, kind, setting, FrameHead, Reason};
use super::hpack::{self, DecodeError};
use super::payload::{conn_err, data_of, header_fragment, ConnError, PendingAcks, RecvWindow};
use super::wire::Wire;
use super::H2Options;
use crate::protocol::Parsed;
use crate::socket::Socket;
use crate::{errno, RpcError};

/// CONTINUATION frames one header block may take (as the server's
/// reader: endless empty CONTINUATIONs cost CPU without growing it).
const MAX_CONTINUATIONS: u32 = 64;

/// How often a request waiting for a stream looks whether the
/// connection broke (a broken connection does not signal the wait).
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// What an HTTP/2 client connection keeps.
pub(crate) struct H2ClientConn {
    /// The reader's state (only the reader locks it).
    reader: Mutex<Reader>,
    /// The sending half (a fiber mutex: writes under it may wait for a
    /// TLS session's lock, and requests wait on `room` with it).
    send: fibrpc_fiber::sync::Mutex<ClientSend>,
    /// Signalled when a stream ends, the server allows more streams, or
    /// the connection takes no more.
    room: fibrpc_fiber::sync::Condvar,
}

impl Default for H2ClientConn {
    fn default() -> Self {
        H2ClientConn {
            reader: Mutex::new(Reader::default()),
            send: fibrpc_fiber::sync::Mutex::new(ClientSend::default()),
            room: fibrpc_fiber::sync::Condvar::new(),
        }
    }
}

impl std::fmt::Debug for H2ClientConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2ClientConn").finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Reader {
    decoder: hpack::Decoder,
    /// The server's SETTINGS (its preface) came.
    got_settings: bool,
    /// The header block being gathered (HEADERS without END_HEADERS).
    block: Option<Block>,
    /// Streams whose response HEADERS came.
    recv: FxHashMap<u32, RecvStream>,
    /// What the server may still send on the connection.
    conn_window: RecvWindow,
    /// Where the PING and SETTINGS acknowledgements not yet written
    /// stand in the output.
    pending_acks: PendingAcks,
    /// The streams the GOAWAY at the front of the input fails, one
    /// message each; the frame is consumed after the last.
    goaway_failing: Option<VecDeque<H2Reply>>,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            decoder: hpack::Decoder::default(),
            got_settings: false,
            block: None,
            recv: FxHashMap::default(),
            conn_window: RecvWindow::new(frame::DEFAULT_WINDOW),
            pending_acks: PendingAcks::default(),
            goaway_failing: None,
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
    cid: u64,
    /// A streaming request's: the DATA goes there, and its caller gives
    /// the window back.
    sink: Option<Arc<StreamSink>>,
    resp: H2Response,
    /// What the server may still send on this stream.
    window: i64,
    unacked: u32,
}

impl H2ClientConn {
    /// See [`super::client::open_stream`].
    pub(super) fn open_stream<W: Wire>(
        &self,
        sock: &W,
        opts: &H2Options,
        cid: u64,
        req: StreamRequest<'_>,
    ) -> Result<IOBuf, RpcError> {
        let mut s = self.send.lock();
        loop {
            if let Some(why) = &s.dead {
                return Err(RpcError::new(
                    errno::EFAILEDSOCKET,
                    format!("the HTTP/2 connection to {} broke: {why}", sock.peer()),
                ));
            }
            if let Some(e) = sock.failure() {
                return Err(e);
            }
            if s.goaway.is_some() || s.ids_exhausted() {
                // New calls take another connection.
                sock.set_logoff();
                let why = if s.goaway.is_some() {
                    "the server sent GOAWAY"
                } else {
                    "its stream ids are used up"
                };
                return Err(RpcError::new(
                    errno::ELOGOFF,
                    format!(
                        "the HTTP/2 connection to {} takes no new stream: {why}",
                        sock.peer()
                    ),
                ));
            }
            if s.has_room() {
                break;
            }
            let now = Instant::now();
            if req.deadline.is_some_and(|d| now >= d) {
                return Err(RpcError::new(
                    errno::ERPCTIMEDOUT,
                    format!(
                        "no HTTP/2 stream to {} freed up before the deadline ({} open, \
                         the server's SETTINGS_MAX_CONCURRENT_STREAMS)",
                        sock.peer(),
                        s.active()
                    ),
                ));
            }
            let until = req
                .deadline
                .map_or(now + WAIT_SLICE, |d| d.min(now + WAIT_SLICE));
            s = self.room.wait_deadline(s, until).0;
        }
        let (_, out) = s.open(cid, req.headers, req.body, req.end, req.sink, opts);
        Ok(out)
    }

    /// See [`super::client::send_data`].
    pub(super) fn send_data(
        &self,
        sock: &Arc<Socket>,
        cid: u64,
        data: IOBuf,
        end: bool,
    ) -> Result<(), RpcError> {
        let mut s = self.send.lock();
        if let Some(why) = &s.dead {
            return Err(RpcError::new(
                errno::EFAILEDSOCKET,
                format!(
                    "the HTTP/2 connection to {} broke: {why}",
                    sock.remote_side()
                ),
            ));
        }
        let queued = s.send_more(cid, data, end, |out| {
            let _ = sock.write(out);
        });
        drop(s);
        match queued {
            Some(start_flush) => {
                if start_flush {
                    let flusher = sock.clone();
                    flow::spawn_flush(sock, move || {
                        if let Some(conn) = flusher.existing_protocol_state::<H2ClientConn>() {
                            let mut s = conn.send.lock();
                            s.flushed();
                            s.flush(|out| {
                                let _ = flusher.write(out);
                            });
                        }
                    });
                }
                Ok(())
            }
            None => Err(RpcError::new(
                libc::ECANCELED,
                "the HTTP/2 stream ended before this message was sent",
            )),
        }
    }

    /// See [`super::client::give_back`].
    pub(super) fn give_back(&self, sock: &Arc<Socket>, cid: u64, n: u32) {
        let mut s = self.send.lock();
        let Some(id) = s.stream_of(cid) else {
            return;
        };
        let mut out = IOBuf::new();
        frame::put_window_update(&mut out, id, n);
        s.write_control(out, |out| {
            let _ = sock.write(out);
        });
    }

    /// See [`super::client::request_queued`].
    pub(super) fn posted<W: Wire>(&self, sock: &W, cid: u64, queued: bool) -> Option<H2Reply> {
        let mut s = self.send.lock();
        let refused = s.posted(cid, queued, |out| {
            sock.write(out);
        });
        let last = s.goaway.unwrap_or(0);
        drop(s);
        if !queued {
            self.room.notify_one();
        }
        let id = refused?;
        Some(H2Reply {
            stream: id,
            cid,
            result: Err(StreamError {
                reason: None,
                unprocessed: true,
                goaway: true,
                text: format!(
                    "{} sent GOAWAY (last stream {last}) while stream {id} was being opened: \
                     it was not processed",
                    sock.peer()
                ),
            }),
        })
    }

    /// See [`super::client::cancel`].
    pub(super) fn cancel<W: Wire>(&self, sock: &W, cid: u64) {
        // The reader's lock first, as the reader takes them.
        let mut r = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = self.send.lock();
        let Some(id) = s.stream_of(cid) else {
            return;
        };
        let mut out = IOBuf::new();
        // What a deferred flush has not written yet goes first.
        s.push_queued(id, &mut out);
        s.close(id);
        r.recv.remove(&id);
        frame::put_rst_stream(&mut out, id, Reason::Cancel);
        sock.write(out);
        drop(s);
        self.room.notify_one();
    }

    /// See [`super::client::parse`].
    pub(super) fn parse<W: Wire>(
        &self,
        buf: &mut IOBuf,
        sock: &W,
        opts: &H2Options,
    ) -> Parsed<H2Reply> {
        let mut r = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut consumed = false;
        let mut out = IOBuf::new();
        let result = loop {
            if let Some(failing) = r.goaway_failing.as_mut() {
                if let Some(reply) = failing.pop_front() {
                    break Ok(Some(reply));
                }
                r.goaway_failing = None;
                if let Some(head) = FrameHead::peek(buf) {
                    buf.pop_front(frame::HEADER_LEN + head.len as usize);
                }
                consumed = true;
                continue;
            }
            let Some(head) = FrameHead::peek(buf) else {
                break Ok(None);
            };
            if !r.got_settings && (head.kind != kind::SETTINGS || head.has(flag::ACK)) {
                break conn_err(
                    Reason::ProtocolError,
                    "the server's first frame is not SETTINGS (is it an HTTP/2 server?)",
                );
            }
            if head.len > opts.max_frame_size {
                break conn_err(
                    Reason::FrameSizeError,
                    format!(
                        "a frame of {} bytes, over the SETTINGS_MAX_FRAME_SIZE of {}",
                        head.len, opts.max_frame_size
                    ),
                );
            }
            if buf.len() < frame::HEADER_LEN + head.len as usize {
                break Ok(None);
            }
            if head.kind == kind::GOAWAY && r.block.is_none() {
                // Left at the front until each stream it fails has had
                // its message: the reader cuts again while input is left.
                match self.on_goaway(&mut r, head, buf, sock) {
                    Ok(()) => continue,
                    Err(e) => break Err(e),
                }
            }
            buf.pop_front(frame::HEADER_LEN);
            let payload = buf.split_to(head.len as usize);
            consumed = true;
            match r.on_frame(self, head, payload, sock, opts, &mut out) {
                Ok(Some(reply)) => break Ok(Some(reply)),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(reply) => {
                if !out.is_empty() {
                    self.send.lock().write_control(out, |out| {
                        sock.write(out);
                    });
                }
                match reply {
                    Some(m) => Parsed::Message(m),
                    None if consumed => Parsed::Consumed,
                    None => Parsed::NeedMore,
                }
            }
            Err((reason, why)) => {
                buf.clear();
                frame::put_goaway(&mut out, 0, reason, why.as_bytes());
                sock.write(out);
                self.send.lock().dead = Some(why.clone());
                self.room.notify_all();
                Parsed::Bad(format!("HTTP/2 {reason:?} (GOAWAY sent): {why}"))
            }
        }
    }

    /// A GOAWAY at the front of `buf` (complete, not consumed): the
    /// connection takes no new stream, and the streams past its last id
    /// are failed as not processed.
    fn on_goaway<W: Wire>(
        &self,
        r: &mut Reader,
        head: FrameHead,
        buf: &IOBuf,
        sock: &W,
    ) -> Result<(), ConnError> {
        if head.stream != 0 {
            return conn_err(Reason::ProtocolError, "GOAWAY on a stream");
        }
        if head.len < 8 {
            return conn_err(Reason::FrameSizeError, "GOAWAY of a wrong size");
        }
        let mut fixed = [0u8; 8];
        buf.copy_to(&mut fixed, frame::HEADER_LEN);
        let last = u32::from_be_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]) & 0x7fff_ffff;
        let code = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let mut debug = vec![0u8; (head.len as usize - 8).min(256)];
        buf.copy_to(&mut debug, frame::HEADER_LEN + 8);
        let debug = String::from_utf8_lossy(&debug);
        sock.set_logoff();
        let gone = self.send.lock().go_away(last);
        self.room.notify_all();
        let failing = gone
            .into_iter()
            .map(|(id, cid)| {
                r.recv.remove(&id);
                H2Reply {
                    stream: id,
                    cid,
                    result: Err(StreamError {
                        reason: Some(code),
                        unprocessed: true,
                        goaway: true,
                        text: format!(
                            "{} sent GOAWAY ({}, last stream {last}, {debug:?}): \
                             stream {id} was not processed",
                            sock.peer(),
                            reason_name(code)
                        ),
                    }),
                }
            })
            .collect();
        r.goaway_failing = Some(failing);
        Ok(())
    }
}

impl Reader {
    fn on_frame<W: Wire>(
        &mut self,
        conn: &H2ClientConn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Reply>, ConnError> {
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
            kind::HEADERS => self.on_headers(conn, head, payload, opts, out),
            kind::CONTINUATION => self.on_continuation(conn, head, payload, opts, out),
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
                let mut b = [0u8; 4];
                payload.copy_to(&mut b, 0);
                let code = u32::from_be_bytes(b);
                self.recv.remove(&head.stream);
                let mut send = conn.send.lock();
                if !send.ever_opened(head.stream) {
                    return conn_err(Reason::ProtocolError, "RST_STREAM on an idle stream");
                }
                let closed = send.close(head.stream);
                drop(send);
                conn.room.notify_one();
                Ok(closed.map(|c| H2Reply {
                    stream: head.stream,
                    cid: c.cid,
                    result: Err(StreamError {
                        reason: Some(code),
                        unprocessed: code == Reason::RefusedStream as u32,
                        goaway: false,
                        text: format!(
                            "{} reset stream {} ({})",
                            sock.peer(),
                            head.stream,
                            reason_name(code)
                        ),
                    }),
                }))
            }
            kind::SETTINGS => self.on_settings(conn, head, payload, sock, opts),
            kind::PUSH_PROMISE => conn_err(
                Reason::ProtocolError,
                "PUSH_PROMISE, though this client disabled push",
            ),
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
            kind::WINDOW_UPDATE => self.on_window_update(conn, head, payload, sock, out),
            // GOAWAY is handled before (a GOAWAY inside a header block
            // failed above); unknown types are ignored (RFC 9113 §4.1).
            _ => Ok(None),
        }
    }

    fn on_settings<W: Wire>(
        &mut self,
        conn: &H2ClientConn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
    ) -> Result<Option<H2Reply>, ConnError> {
        if head.stream != 0 {
            return conn_err(Reason::ProtocolError, "SETTINGS on a stream");
        }
        if head.has(flag::ACK) {
            if head.len != 0 {
                return conn_err(Reason::FrameSizeError, "a SETTINGS ACK with a payload");
            }
            return Ok(None);
        }
        if head.len % 6 != 0 {
            return conn_err(Reason::FrameSizeError, "SETTINGS of a wrong size");
        }
        let mut send = conn.send.lock();
        if !self.got_settings {
            // The server's preface: the connection's window is what this
            // side's preface opened it to.
            self.got_settings = true;
            self.conn_window.open_to(opts.initial_window_size);
            send.settled = true;
            conn.room.notify_all();
        }
        let bytes = payload.to_vec();
        for s in bytes.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
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
                setting::MAX_CONCURRENT_STREAMS => {
                    send.max_streams = value;
                    conn.room.notify_all();
                }
                // HEADER_TABLE_SIZE: the encoder uses no dynamic table;
                // the rest is advisory or unknown.
                _ => {}
            }
        }
        self.pending_acks.count(sock, opts)?;
        // Before any frame sent under the new settings.
        // (Held while the preface is not queued: it goes first.)
        let mut ack = IOBuf::new();
        frame::put_head(&mut ack, 0, kind::SETTINGS, flag::ACK, 0);
        send.write_control(ack, |ack| {
            sock.write(ack);
        });
        send.flush(|o| {
            sock.write(o);
        });
        Ok(None)
    }

    fn on_window_update<W: Wire>(
        &mut self,
        conn: &H2ClientConn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        out: &mut IOBuf,
    ) -> Result<Option<H2Reply>, ConnError> {
        if head.len != 4 {
            return conn_err(Reason::FrameSizeError, "WINDOW_UPDATE of a wrong size");
        }
        let mut b = [0u8; 4];
        payload.copy_to(&mut b, 0);
        let inc = u32::from_be_bytes(b) & 0x7fff_ffff;
        let mut send = conn.send.lock();
        if head.stream != 0 && !send.ever_opened(head.stream) {
            return conn_err(Reason::ProtocolError, "WINDOW_UPDATE on an idle stream");
        }
        if inc == 0 {
            if head.stream == 0 {
                return conn_err(Reason::ProtocolError, "WINDOW_UPDATE of 0");
            }
            drop(send);
            return Ok(self.fail_stream(
                conn,
                head.stream,
                Reason::ProtocolError,
                "a WINDOW_UPDATE of 0 on the stream".into(),
                out,
            ));
        }
        match send.window_update(head.stream, inc) {
            Err((reason, why)) => conn_err(reason, why),
            Ok(false) => {
                drop(send);
                Ok(self.fail_stream(
                    conn,
                    head.stream,
                    Reason::FlowControlError,
                    "a WINDOW_UPDATE overflows the stream's window".into(),
                    out,
                ))
            }
            Ok(true) => {
                send.flush(|o| {
                    sock.write(o);
                });
                Ok(None)
            }
        }
    }

    fn on_headers(
        &mut self,
        conn: &H2ClientConn,
        head: FrameHead,
        payload: IOBuf,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Reply>, ConnError> {
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
        check_block_size(&block, opts)?;
        if head.has(flag::END_HEADERS) {
            self.on_block(conn, block, opts, out)
        } else {
            self.block = Some(block);
            Ok(None)
        }
    }

    fn on_continuation(
        &mut self,
        conn: &H2ClientConn,
        head: FrameHead,
        payload: IOBuf,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Reply>, ConnError> {
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
        check_block_size(&block, opts)?;
        if head.has(flag::END_HEADERS) {
            self.on_block(conn, block, opts, out)
        } else {
            self.block = Some(block);
            Ok(None)
        }
    }

    /// A whole header block: a response's headers, or its trailers.
    fn on_block(
        &mut self,
        conn: &H2ClientConn,
        block: Block,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Reply>, ConnError> {
        let id = block.stream;
        // Decoded whatever becomes of the stream: the table must stay in
        // step with the server's.
        let mut fields = Fields::default();
        let limit = opts.max_header_list_size as usize;
        let too_large = match self
            .decoder
            .decode(&block.bytes, limit, |n, v| fields.add(n, v))
        {
            Ok(()) => false,
            Err(DecodeError::ListTooLarge) => true,
            Err(DecodeError::Compression(why)) => {
                return conn_err(Reason::CompressionError, format!("HPACK: {why}"))
            }
        };
        let (cid, sink) = {
            let send = conn.send.lock();
            match send.cid_of(id) {
                Some(cid) => (cid, send.sink_of(id)),
                // A stream this side reset: its late frames are dropped.
                None if send.ever_opened(id) => return Ok(None),
                None => {
                    return conn_err(
                        Reason::ProtocolError,
                        format!("HEADERS on stream {id}, which this client did not open"),
                    )
                }
            }
        };
        if too_large {
            let why =
                format!("the response's header list is over max_header_list_size ({limit} bytes)");
            return Ok(self.fail_stream(conn, id, Reason::Cancel, why, out));
        }
        if let Some(s) = self.recv.get_mut(&id) {
            if !block.end_stream {
                let why = "trailers without END_STREAM".to_string();
                return Ok(self.fail_stream(conn, id, Reason::ProtocolError, why, out));
            }
            match fields.into_trailers() {
                Ok(t) => s.resp.trailers = t,
                Err(why) => {
                    let why = format!("malformed trailers: {why}");
                    return Ok(self.fail_stream(conn, id, Reason::ProtocolError, why, out));
                }
            }
        } else {
            let (status, headers) = match fields.into_head() {
                Ok(h) => h,
                Err(why) => {
                    let why = format!("a malformed response: {why}");
                    return Ok(self.fail_stream(conn, id, Reason::ProtocolError, why, out));
                }
            };
            if (100..200).contains(&status) {
                // Informational: the response follows.
                if block.end_stream {
                    let why = "a 1xx response with END_STREAM".to_string();
                    return Ok(self.fail_stream(conn, id, Reason::ProtocolError, why, out));
                }
                return Ok(None);
            }
            if let Some(sink) = &sink {
                sink.set_head(status, headers.clone());
            }
            self.recv.insert(
                id,
                RecvStream {
                    cid,
                    sink,
                    resp: H2Response {
                        status,
                        headers,
                        ..Default::default()
                    },
                    window: i64::from(opts.initial_window_size),
                    unacked: 0,
                },
            );
        }
        if block.end_stream {
            return Ok(self.complete(conn, id, out));
        }
        Ok(None)
    }

    fn on_data<W: Wire>(
        &mut self,
        conn: &H2ClientConn,
        head: FrameHead,
        payload: IOBuf,
        sock: &W,
        opts: &H2Options,
        out: &mut IOBuf,
    ) -> Result<Option<H2Reply>, ConnError> {
        if head.stream == 0 {
            return conn_err(Reason::ProtocolError, "DATA on stream 0");
        }
        self.conn_window.receive(head.len, opts, out)?;
        let data = data_of(&head, payload)?;
        let len = i64::from(head.len);
        let id = head.stream;
        let Some(s) = self.recv.get_mut(&id) else {
            let send = conn.send.lock();
            if send.cid_of(id).is_some() {
                drop(send);
                let why = "DATA before the response's HEADERS".to_string();
                return Ok(self.fail_stream(conn, id, Reason::ProtocolError, why, out));
            }
            if send.ever_opened(id) {
                return Ok(None);
            }
            return conn_err(
                Reason::ProtocolError,
                format!("DATA on stream {id}, which this client did not open"),
            );
        };
        if let Some(sink) = s.sink.clone() {
            // Streaming: the caller takes it, and gives the window back.
            if !sink.receive(head.len, data) {
                let why = "DATA past the stream's window".to_string();
                return Ok(self.fail_stream(conn, id, Reason::FlowControlError, why, out));
            }
            if head.has(flag::END_STREAM) {
                return Ok(self.complete(conn, id, out));
            }
            return Ok(None);
        }
        if len > s.window {
            let why = "DATA past the stream's window".to_string();
            return Ok(self.fail_stream(conn, id, Reason::FlowControlError, why, out));
        }
        s.window -= len;
        let max = sock.max_body_size();
        if s.resp.body.len() + data.len() > max {
            let why = format!("a response body over max_body_size ({max} bytes)");
            return Ok(self.fail_stream(conn, id, Reason::Cancel, why, out));
        }
        s.resp.body.append_owned(data);
        if head.has(flag::END_STREAM) {
            return Ok(self.complete(conn, id, out));
        }
        s.unacked += head.len;
        if s.unacked >= opts.initial_window_size / 2 {
            frame::put_window_update(out, id, s.unacked);
            s.window += i64::from(s.unacked);
            s.unacked = 0;
        }
        Ok(None)
    }

    /// The server ended stream `id`: its response, for its call.
    fn complete(&mut self, conn: &H2ClientConn, id: u32, out: &mut IOBuf) -> Option<H2Reply> {
        let s = self.recv.remove(&id)?;
        let closed = conn.send.lock().close(id);
        conn.room.notify_one();
        if closed.is_some_and(|c| c.unfinished) {
            // Answered before the request was sent in full: the rest is
            // not wanted (RFC 9113 §8.1).
            frame::put_rst_stream(out, id, Reason::Cancel);
        }
        Some(H2Reply {
            stream: id,
            cid: s.cid,
            result: Ok(s.resp),
        })
    }

    /// Resets stream `id` for the server's error `why`: its call fails
    /// (the connection goes on).
    fn fail_stream(
        &mut self,
        conn: &H2ClientConn,
        id: u32,
        reason: Reason,
        why: String,
        out: &mut IOBuf,
    ) -> Option<H2Reply> {
        self.recv.remove(&id);
        let closed = conn.send.lock().close(id)?;
        conn.room.notify_one();
        frame::put_rst_stream(out, id, reason);
        Some(H2Reply {
            stream: id,
            cid: closed.cid,
            result: Err(StreamError {
                reason: None,
                unprocessed: false,
                goaway: false,
                text: format!("stream {id} reset by this client: {why}"),
            }),
        })
    }
}

/// A compressed block over the header list limit ends the connection
/// before it is decoded (an HPACK bomb costs at most this much).
fn check_block_size(block: &Block, opts: &H2Options) -> Result<(), ConnError> {
    if block.bytes.len() > opts.max_header_list_size as usize {
        return conn_err(
            Reason::EnhanceYourCalm,
            format!(
                "a header block over max_header_list_size ({} bytes) before decoding",
                opts.max_header_list_size
            ),
        );
    }
    Ok(())
}

/// A response's fields as they are decoded.
#[derive(Debug, Default)]
struct Fields {
    status: Option<u16>,
    pseudo_other: bool,
    headers: HeaderMap,
    error: Option<&'static str>,
}

impl Fields {
    fn add(&mut self, name: &[u8], value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(why) = self.try_add(name, value) {
            self.error = Some(why);
        }
    }

    fn try_add(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        if name.first() == Some(&b':') {
            if !self.headers.is_empty() {
                return Err("a pseudo-header after a regular header");
            }
            if name != b":status" || self.status.is_some() {
                self.pseudo_other = true;
                return Ok(());
            }
            let status = std::str::from_utf8(value)
                .ok()
                .filter(|v| v.len() == 3)
                .and_then(|v| v.parse::<u16>().ok())
                .ok_or("a malformed :status")?;
            self.status = Some(status);
            return Ok(());
        }
        if name.iter().any(|c| c.is_ascii_uppercase()) {
            return Err("an uppercase header name");
        }
        let name = HeaderName::from_bytes(name).map_err(|_| "a malformed header name")?;
        let value = HeaderValue::from_bytes(value).map_err(|_| "a malformed header value")?;
        self.headers.append(name, value);
        Ok(())
    }

    fn into_head(self) -> Result<(u16, HeaderMap), &'static str> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.pseudo_other {
            return Err("a pseudo-header other than one :status");
        }
        Ok((self.status.ok_or("no :status")?, self.headers))
    }

    fn into_trailers(self) -> Result<HeaderMap, &'static str> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.pseudo_other || self.status.is_some() {
            return Err("a pseudo-header in trailers");
        }
        Ok(self.headers)
    }
}

/// RFC 9113's name of an error code.
pub(super) fn reason_name(code: u32) -> &'static str {
    match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => "an unknown error code",
    }
}
