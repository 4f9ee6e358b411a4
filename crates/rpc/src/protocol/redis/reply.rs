//! [`RedisReply`]: one RESP2 value, what a command handler answers and
//! what a [`RedisChannel`](super::RedisChannel) call gets back, and its
//! encoding.

use fibrpc_iobuf::IOBuf;

/// Bulk strings shorter than this are copied into the output's block;
/// longer ones are appended by reference (zero-copy). A reference per
/// tiny value would only lengthen the `writev` list.
const COPY_BELOW: usize = 512;

/// One RESP2 value (bRPC's `RedisReply`).
#[derive(Clone, Debug, PartialEq)]
pub enum RedisReply {
    /// A simple string (`+OK`).
    Status(String),
    /// An error (`-ERR message`): the first word is the error's kind.
    Error(String),
    /// An integer (`:42`).
    Integer(i64),
    /// A bulk string (`$3\r\nabc`), zero-copy out of the input.
    Bulk(IOBuf),
    /// The null bulk string or the null array (`$-1`, `*-1`).
    Nil,
    /// An array (`*2\r\n...`).
    Array(Vec<RedisReply>),
}

impl RedisReply {
    /// `+OK`.
    pub fn ok() -> RedisReply {
        RedisReply::Status("OK".into())
    }

    /// A simple string reply.
    pub fn status(s: impl Into<String>) -> RedisReply {
        RedisReply::Status(s.into())
    }

    /// An error reply; `msg` starts with its kind (`ERR`, `WRONGTYPE`).
    pub fn error(msg: impl Into<String>) -> RedisReply {
        RedisReply::Error(msg.into())
    }

    /// A bulk string reply.
    pub fn bulk(data: impl Into<IOBuf>) -> RedisReply {
        RedisReply::Bulk(data.into())
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, RedisReply::Error(_))
    }

    /// Whether this is the null reply.
    pub fn is_nil(&self) -> bool {
        matches!(self, RedisReply::Nil)
    }

    /// The integer of an integer reply.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            RedisReply::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes of a bulk string reply.
    pub fn as_bulk(&self) -> Option<&IOBuf> {
        match self {
            RedisReply::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// The text of a status or error reply.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RedisReply::Status(s) | RedisReply::Error(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of an array reply.
    pub fn as_array(&self) -> Option<&[RedisReply]> {
        match self {
            RedisReply::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Appends the RESP2 encoding to `out`.
    pub fn encode(&self, out: &mut IOBuf) {
        match self {
            RedisReply::Status(s) => line(out, b'+', s),
            RedisReply::Error(s) => line(out, b'-', s),
            RedisReply::Integer(i) => {
                head(out, b':', *i);
            }
            RedisReply::Bulk(b) => encode_bulk(out, b),
            RedisReply::Nil => out.append(b"$-1\r\n"),
            RedisReply::Array(items) => {
                head(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(out);
                }
            }
        }
    }
}

/// Appends a bulk string to `out`: copied when short, by reference
/// otherwise.
pub(crate) fn encode_bulk(out: &mut IOBuf, b: &IOBuf) {
    head(out, b'$', b.len() as i64);
    if b.len() < COPY_BELOW {
        for s in b.slices() {
            out.append(s);
        }
    } else {
        out.append_buf(b);
    }
    out.append(b"\r\n");
}

/// `<kind><n>\r\n`.
pub(crate) fn head(out: &mut IOBuf, kind: u8, n: i64) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n).as_bytes();
    let mut tmp = [0u8; 24];
    tmp[0] = kind;
    tmp[1..1 + digits.len()].copy_from_slice(digits);
    tmp[1 + digits.len()..3 + digits.len()].copy_from_slice(b"\r\n");
    out.append(&tmp[..3 + digits.len()]);
}

/// A status or error line. CR and LF would end the line early and be
/// read as the next reply: they become spaces (as redis'
/// `addReplyError` does).
fn line(out: &mut IOBuf, kind: u8, s: &str) {
    out.push_byte(kind);
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.append(s.replace(['\r', '\n'], " ").as_bytes());
    } else {
        out.append(s.as_bytes());
    }
    out.append(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &RedisReply) -> Vec<u8> {
        let mut out = IOBuf::new();
        r.encode(&mut out);
        out.to_vec()
    }

    #[test]
    fn every_type_encodes_as_resp2() {
        assert_eq!(enc(&RedisReply::ok()), b"+OK\r\n");
        assert_eq!(enc(&RedisReply::error("ERR x\r\ny")), b"-ERR x  y\r\n");
        assert_eq!(enc(&RedisReply::Integer(-7)), b":-7\r\n");
        assert_eq!(enc(&RedisReply::bulk("ab")), b"$2\r\nab\r\n");
        assert_eq!(enc(&RedisReply::bulk("")), b"$0\r\n\r\n");
        assert_eq!(enc(&RedisReply::Nil), b"$-1\r\n");
        let big = vec![b'x'; 4096];
        let mut want = b"$4096\r\n".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n");
        assert_eq!(enc(&RedisReply::bulk(big)), want);
        assert_eq!(
            enc(&RedisReply::Array(vec![
                RedisReply::Integer(1),
                RedisReply::Array(vec![]),
                RedisReply::Nil
            ])),
            b"*3\r\n:1\r\n*0\r\n$-1\r\n"
        );
    }
}
