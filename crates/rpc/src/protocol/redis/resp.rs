//! [`RespParser`]: cutting RESP2 replies (every type, arrays nested)
//! out of a client connection's input.
//!
//! The parser is resumable: each complete value is cut from the input as
//! soon as it is there (a bulk string by reference, zero-copy) and kept on
//! a stack of the arrays being filled, so a reply of a million elements
//! arriving over many reads is parsed once, not again from its start on
//! every read. A value is cut only whole: an incomplete bulk string costs
//! a look at its length line until its bytes are all there.

use fibrpc_iobuf::IOBuf;

use super::command::parse_i64;
use super::cursor::Cursor;
use super::RedisReply;

/// The longest `:N`, `$N` or `*N` line with its CRLF.
const MAX_COUNT_LINE: usize = 32;

/// Limits on the replies a client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespLimits {
    /// The most bytes of one top-level reply (a client uses its
    /// channel's `max_body_size`).
    pub max_reply_bytes: usize,
    /// The longest status or error line (64 KiB).
    pub max_line: usize,
    /// The deepest nesting of arrays (64): dropping a value recurses
    /// once per level, on a fiber's stack.
    pub max_depth: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        RespLimits {
            max_reply_bytes: 64 << 20,
            max_line: 64 << 10,
            max_depth: 64,
        }
    }
}

/// What [`RespParser::parse`] found.
#[derive(Debug, PartialEq)]
pub enum RespParse {
    /// A whole top-level reply.
    Reply(RedisReply),
    /// Incomplete: read more (what was complete is kept by the parser).
    NeedMore,
    /// Malformed or over a limit: the connection must close.
    Error(String),
}

/// An array being filled.
#[derive(Debug)]
struct Frame {
    want: usize,
    items: Vec<RedisReply>,
}

/// The resumable RESP2 parser of one connection. See the module docs.
#[derive(Debug, Default)]
pub struct RespParser {
    stack: Vec<Frame>,
    /// Bytes of the current top-level reply cut so far.
    used: usize,
    /// A status or error line with no `\n` in its first `scanned` bytes.
    scanned: usize,
}

impl RespParser {
    /// A parser at the start of a connection.
    pub fn new() -> RespParser {
        RespParser::default()
    }

    /// Whether a reply is partly parsed (some of its values were cut).
    pub fn in_reply(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Cuts values off the front of `input` until a top-level reply is
    /// complete or the input ends. After an [`Error`](RespParse::Error)
    /// the parser must not be used again.
    pub fn parse(&mut self, input: &mut IOBuf, limits: &RespLimits) -> RespParse {
        if self.stack.is_empty() && self.scanned == 0 {
            if let Some(reply) = cut_whole_front(input, limits) {
                return RespParse::Reply(reply);
            }
        }
        loop {
            let value = match self.value(input, limits) {
                Ok(Some(v)) => v,
                Ok(None) => return RespParse::NeedMore,
                Err(e) => return RespParse::Error(e),
            };
            let mut value = match value {
                Value::Open(want) => {
                    if self.stack.len() >= limits.max_depth {
                        return RespParse::Error(format!(
                            "replies nested deeper than {}",
                            limits.max_depth
                        ));
                    }
                    // Never reserve ahead of what the input backs.
                    let items = Vec::with_capacity(want.min(1024));
                    self.stack.push(Frame { want, items });
                    continue;
                }
                Value::Done(v) => v,
            };
            // Closes every array the value completes.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    self.used = 0;
                    return RespParse::Reply(value);
                };
                top.items.push(value);
                if top.items.len() < top.want {
                    break;
                }
                let done = self.stack.pop().map(|f| f.items).unwrap_or_default();
                value = RedisReply::Array(done);
            }
        }
    }

    /// Cuts one value (or an array's header) off the front of `input`.
    fn value(&mut self, input: &mut IOBuf, limits: &RespLimits) -> Result<Option<Value>, String> {
        let c = Cursor::at(input, 0);
        let Some(kind) = c.peek() else {
            return Ok(None);
        };
        match kind {
            b'+' | b'-' => {
                let from = self.scanned;
                let Some(i) = Cursor::at(input, from).find(b'\n', input.len() - from) else {
                    if input.len() > limits.max_line {
                        return Err(format!("a status line over {} bytes", limits.max_line));
                    }
                    self.scanned = input.len();
                    return Ok(None);
                };
                let nl = from + i;
                self.scanned = 0;
                if nl > limits.max_line {
                    return Err(format!("a status line over {} bytes", limits.max_line));
                }
                self.charge(nl + 1, limits)?;
                let mut line = vec![0u8; nl + 1];
                input.cut_into_slice(&mut line);
                if nl < 1 || line[nl - 1] != b'\r' {
                    return Err("a line not ended by CRLF".into());
                }
                line.truncate(nl - 1);
                if line.contains(&b'\r') {
                    return Err("a CR inside a status line".into());
                }
                let text = String::from_utf8_lossy(&line[1..]).into_owned();
                Ok(Some(Value::Done(if kind == b'+' {
                    RedisReply::Status(text)
                } else {
                    RedisReply::Error(text)
                })))
            }
            b':' | b'$' | b'*' => {
                let Some((n, line)) = count_line(&c)? else {
                    return Ok(None);
                };
                match kind {
                    b':' => {
                        self.charge(line, limits)?;
                        input.pop_front(line);
                        Ok(Some(Value::Done(RedisReply::Integer(n))))
                    }
                    b'$' if n == -1 => {
                        self.charge(line, limits)?;
                        input.pop_front(line);
                        Ok(Some(Value::Done(RedisReply::Nil)))
                    }
                    b'$' => {
                        if n < 0 {
                            return Err(format!("bulk length {n}"));
                        }
                        let total = (n as u64).saturating_add(line as u64 + 2);
                        if total > limits.max_reply_bytes.saturating_sub(self.used) as u64 {
                            return Err(format!(
                                "a reply over {} bytes (max_body_size)",
                                limits.max_reply_bytes
                            ));
                        }
                        let total = total as usize;
                        if input.len() < total {
                            return Ok(None);
                        }
                        let mut crlf = [0u8; 2];
                        input.copy_to(&mut crlf, total - 2);
                        if &crlf != b"\r\n" {
                            return Err("bulk data not followed by CRLF".into());
                        }
                        self.charge(total, limits)?;
                        input.pop_front(line);
                        let data = input.split_to(n as usize);
                        input.pop_front(2);
                        Ok(Some(Value::Done(RedisReply::Bulk(data))))
                    }
                    _ => {
                        self.charge(line, limits)?;
                        input.pop_front(line);
                        Ok(Some(match n {
                            -1 => Value::Done(RedisReply::Nil),
                            0 => Value::Done(RedisReply::Array(Vec::new())),
                            n if n < 0 => return Err(format!("array length {n}")),
                            n => Value::Open(n as usize),
                        }))
                    }
                }
            }
            other => Err(format!("unknown reply type byte 0x{other:02x}")),
        }
    }

    /// Counts `n` more bytes into the current reply.
    fn charge(&mut self, n: usize, limits: &RespLimits) -> Result<(), String> {
        self.used += n;
        if self.used > limits.max_reply_bytes {
            return Err(format!(
                "a reply over {} bytes (max_body_size)",
                limits.max_reply_bytes
            ));
        }
        Ok(())
    }
}

/// Cuts a top-level reply that is not an array and lies whole in the
/// first block of `input`: the common reply (`+OK`, `:1`, a short bulk
/// string) read straight from one slice, with one scan for its line end
/// and, for a status, one allocation. `None` (nothing consumed) for
/// anything else, which the resumable parser then takes: an array, a
/// reply across blocks or incomplete, or one that breaks a rule (the
/// resumable parser words the error).
fn cut_whole_front(input: &mut IOBuf, limits: &RespLimits) -> Option<RedisReply> {
    let front = input.backing_block(0)?;
    let (&kind, _) = front.split_first()?;
    let scan = match kind {
        b'+' | b'-' => limits.max_line.saturating_add(1),
        b':' | b'$' => MAX_COUNT_LINE,
        _ => return None,
    };
    let nl = front[..front.len().min(scan)]
        .iter()
        .position(|&b| b == b'\n')?;
    if nl < 2 || front[nl - 1] != b'\r' || nl > limits.max_line || nl >= limits.max_reply_bytes {
        return None;
    }
    let body = &front[1..nl - 1];
    let line = nl + 1;
    let reply = match kind {
        b'+' | b'-' => {
            if body.contains(&b'\r') {
                return None;
            }
            let text = String::from_utf8_lossy(body).into_owned();
            input.pop_front(line);
            if kind == b'+' {
                RedisReply::Status(text)
            } else {
                RedisReply::Error(text)
            }
        }
        b':' => {
            let n = parse_i64(body)?;
            input.pop_front(line);
            RedisReply::Integer(n)
        }
        _ => match parse_i64(body)? {
            -1 => {
                input.pop_front(line);
                RedisReply::Nil
            }
            n if n >= 0 => {
                let n = n as usize;
                let total = line.checked_add(n)?.checked_add(2)?;
                if total > front.len() || total > limits.max_reply_bytes {
                    return None;
                }
                if &front[total - 2..total] != b"\r\n" {
                    return None;
                }
                input.pop_front(line);
                let data = input.split_to(n);
                input.pop_front(2);
                RedisReply::Bulk(data)
            }
            _ => return None,
        },
    };
    Some(reply)
}

/// A value cut, or the header of an array of `n` elements.
enum Value {
    Done(RedisReply),
    Open(usize),
}

/// The number line at the cursor and its length, `None` if incomplete.
fn count_line(c: &Cursor<'_>) -> Result<Option<(i64, usize)>, String> {
    let Some(nl) = c.find(b'\n', MAX_COUNT_LINE) else {
        return if c.remaining() >= MAX_COUNT_LINE {
            Err("a length line over 32 bytes".into())
        } else {
            Ok(None)
        };
    };
    let mut buf = [0u8; MAX_COUNT_LINE];
    c.copy(&mut buf[..nl + 1]);
    if nl < 2 || buf[nl - 1] != b'\r' {
        return Err("a length line not ended by CRLF".into());
    }
    let n = parse_i64(&buf[1..nl - 1]).ok_or("a malformed number")?;
    Ok(Some((n, nl + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(wire: &[u8], step: usize) -> Result<Vec<RedisReply>, String> {
        let mut p = RespParser::new();
        let mut input = IOBuf::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(step) {
            input.append(chunk);
            loop {
                match p.parse(&mut input, &RespLimits::default()) {
                    RespParse::Reply(r) => out.push(r),
                    RespParse::NeedMore => break,
                    RespParse::Error(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    #[test]
    fn every_resp2_type_in_any_split_round_trips() {
        let replies = vec![
            RedisReply::ok(),
            RedisReply::error("ERR bad"),
            RedisReply::Integer(-12),
            RedisReply::bulk("hello"),
            RedisReply::bulk(""),
            RedisReply::Nil,
            RedisReply::Array(vec![]),
            RedisReply::Array(vec![
                RedisReply::Integer(1),
                RedisReply::Array(vec![RedisReply::bulk("x"), RedisReply::Nil]),
                RedisReply::Status("s".into()),
            ]),
        ];
        let mut wire = IOBuf::new();
        for r in &replies {
            r.encode(&mut wire);
        }
        wire.append(b"*-1\r\n");
        let wire = wire.to_vec();
        let mut want = replies.clone();
        want.push(RedisReply::Nil);
        for step in 1..=wire.len() {
            assert_eq!(parse_all(&wire, step).unwrap(), want, "step {step}");
        }
    }

    /// Replies that lie whole in one block take the one-slice path; the
    /// same bytes split over blocks take the resumable one: both cut the
    /// same replies and refuse the same input.
    #[test]
    fn whole_and_split_inputs_agree() {
        let good: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR no\r\n",
            b"+\r\n",
            b":0\r\n",
            b":-9223372036854775807\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$5\r\nab\r\nc\r\n",
            b"+caf\xc3\xa9\r\n",
        ];
        let bad: &[&[u8]] = &[
            b"+a\rb\r\n",
            b"+ab\n",
            b":\r\n",
            b":1x\r\n",
            b":99999999999999999999\r\n",
            b"$3\r\nabcd\r\n",
            b"$-2\r\n",
            b"$2\r\nab\n\n",
        ];
        for (wire, ok) in good
            .iter()
            .map(|w| (w, true))
            .chain(bad.iter().map(|w| (w, false)))
        {
            let whole = parse_all(wire, wire.len());
            assert_eq!(whole.is_ok(), ok, "{:?}", String::from_utf8_lossy(wire));
            for step in 1..wire.len() {
                // One reference per chunk: never whole in the first block.
                let mut p = RespParser::new();
                let mut input = IOBuf::new();
                let mut split = Ok(Vec::new());
                for chunk in wire.chunks(step) {
                    input.append_owned(IOBuf::from(chunk.to_vec()));
                }
                loop {
                    match p.parse(&mut input, &RespLimits::default()) {
                        RespParse::Reply(r) => split.as_mut().unwrap().push(r),
                        RespParse::NeedMore => break,
                        RespParse::Error(e) => {
                            split = Err(e);
                            break;
                        }
                    }
                }
                assert_eq!(
                    whole,
                    split,
                    "{:?} step {step}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
        // Limits hold on the one-slice path too.
        let limits = RespLimits {
            max_reply_bytes: 16,
            max_line: 8,
            ..Default::default()
        };
        for wire in [&b"$20\r\n01234567890123456789\r\n"[..], b"+0123456789\r\n"] {
            let mut input = IOBuf::from(wire.to_vec());
            let r = RespParser::new().parse(&mut input, &limits);
            assert!(matches!(r, RespParse::Error(_)), "{r:?}");
        }
    }

    #[test]
    fn malformed_and_oversized_replies_are_errors() {
        assert!(parse_all(b"?x\r\n", 1).is_err());
        assert!(parse_all(b"$3\r\nabcd\r\n", 3).is_err());
        assert!(parse_all(b"$-2\r\n", 1).is_err());
        assert!(parse_all(b":12x\r\n", 1).is_err());
        assert!(parse_all(&b"*1\r\n".repeat(100), 4).is_err());
        let mut p = RespParser::new();
        let limits = RespLimits {
            max_reply_bytes: 100,
            ..Default::default()
        };
        let mut input = IOBuf::from(&b"$1000\r\n"[..]);
        assert!(matches!(p.parse(&mut input, &limits), RespParse::Error(_)));
        let mut p = RespParser::new();
        let mut input = IOBuf::from(b"*1000\r\n".to_vec());
        input.append(&b":1\r\n".repeat(40));
        assert!(matches!(p.parse(&mut input, &limits), RespParse::Error(_)));
    }
}
