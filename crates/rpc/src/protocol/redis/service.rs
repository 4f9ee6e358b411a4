//! [`RedisService`]: the commands a server answers over redis, by name
//! (bRPC's `RedisService` and `RedisCommandHandler`).

use std::sync::Arc;

use bytes::Bytes;

use super::{RedisLimits, RedisReply};
use crate::RpcError;

/// Runs one redis command (bRPC's `RedisCommandHandler::Run`). Handlers
/// are synchronous and run in fibers: they may block (on a fiber mutex,
/// another RPC), which holds up the later commands of the same
/// connection only, as in redis.
///
/// Any `Fn(&[Bytes]) -> RedisReply` is a handler.
pub trait RedisCommandHandler: Send + Sync + 'static {
    /// Answers the command `args`: `args[0]` is the command's name as the
    /// client sent it, the rest its arguments. Small commands' arguments
    /// share one buffer of their own; arguments of 4 KiB or more refer to
    /// the connection's input blocks without a copy.
    fn run(&self, args: &[Bytes]) -> RedisReply;
}

impl<F> RedisCommandHandler for F
where
    F: Fn(&[Bytes]) -> RedisReply + Send + Sync + 'static,
{
    fn run(&self, args: &[Bytes]) -> RedisReply {
        self(args)
    }
}

/// The longest command name looked up (longer ones are unknown).
const MAX_NAME: usize = 64;

/// The commands a server answers over redis: a handler per command name
/// (case-insensitive), and the limits of what a client may send. Serve it
/// with [`Server::add_redis_service`](crate::Server::add_redis_service)
/// (bRPC's `ServerOptions::redis_service`): only then does the server's
/// port speak redis.
///
/// Unknown commands are answered as redis does (`-ERR unknown command
/// 'x', with args beginning with: ...`). `HELLO` is answered unless a
/// handler takes it: `HELLO` and `HELLO 2` with the server's description
/// in RESP2, `HELLO 3` with `-NOPROTO` (RESP3 is not spoken).
///
/// ```
/// use fibrpc::redis::{RedisReply, RedisService};
///
/// let mut service = RedisService::new();
/// service
///     .add_command_handler("ping", |_: &[bytes::Bytes]| RedisReply::status("PONG"))
///     .unwrap();
/// let mut server = fibrpc::Server::new(Default::default());
/// server.add_redis_service(service).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct RedisService {
    handlers: rustc_hash::FxHashMap<Box<[u8]>, Arc<dyn RedisCommandHandler>>,
    limits: RedisLimits,
}

impl std::fmt::Debug for RedisService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self
            .handlers
            .keys()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        names.sort();
        f.debug_struct("RedisService")
            .field("commands", &names)
            .field("limits", &self.limits)
            .finish()
    }
}

impl RedisService {
    /// A service with no commands and redis' default limits.
    pub fn new() -> RedisService {
        RedisService::default()
    }

    /// Sets what one command may hold (default: redis' own limits).
    pub fn set_limits(&mut self, limits: RedisLimits) -> &mut Self {
        self.limits = limits;
        self
    }

    /// What one command may hold.
    pub fn limits(&self) -> &RedisLimits {
        &self.limits
    }

    /// Answers command `name` (any case) with `handler` (bRPC's
    /// `AddCommandHandler`). Fails on an empty or over-long name or one
    /// that is taken.
    pub fn add_command_handler(
        &mut self,
        name: &str,
        handler: impl RedisCommandHandler,
    ) -> Result<(), RpcError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(RpcError::new(
                libc::EINVAL,
                format!("bad redis command name {name:?}"),
            ));
        }
        let key: Box<[u8]> = name.to_ascii_lowercase().into_bytes().into();
        if self.handlers.contains_key(&key) {
            return Err(RpcError::new(
                libc::EEXIST,
                format!("redis command {name} added twice"),
            ));
        }
        self.handlers.insert(key, Arc::new(handler));
        Ok(())
    }

    /// The handler of command `name` (any case).
    pub fn find_command_handler(&self, name: &[u8]) -> Option<&Arc<dyn RedisCommandHandler>> {
        if name.len() > MAX_NAME {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.handlers.get(&*lower)
    }

    /// [`run_after`](Self::run_after) for one command alone.
    #[cfg(test)]
    pub(crate) fn run(&self, args: &[Bytes], conn_id: u64) -> RedisReply {
        self.run_after(args, conn_id, &mut None)
    }

    /// Answers one command of a batch (the batch's commands in order): its
    /// handler's reply, a builtin's, or the unknown-command error.
    /// `conn_id` is the connection's number (`HELLO`'s `id`). `last` keeps
    /// the previous command's name and handler, so a pipeline of one
    /// command (`GET` after `GET`) looks its name up once. (The lookup, a
    /// lowercased copy and a hash, was 1.8 % of the server's CPU under
    /// `redis-benchmark -t get -P 16`.)
    pub(crate) fn run_after<'s, 'a>(
        &'s self,
        args: &'a [Bytes],
        conn_id: u64,
        last: &mut Option<(&'a [u8], &'s Arc<dyn RedisCommandHandler>)>,
    ) -> RedisReply {
        let Some(name) = args.first() else {
            return RedisReply::error("ERR empty command");
        };
        if let Some((n, h)) = last {
            if *n == &name[..] {
                return h.run(args);
            }
        }
        if let Some(h) = self.find_command_handler(name) {
            *last = Some((&name[..], h));
            return h.run(args);
        }
        if name.eq_ignore_ascii_case(b"hello") {
            return hello(args, conn_id);
        }
        unknown_command(args)
    }
}

/// Redis' `-ERR unknown command 'name', with args beginning with: 'a' `.
fn unknown_command(args: &[Bytes]) -> RedisReply {
    let shown = |b: &Bytes| {
        let s = String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned();
        s.replace(['\r', '\n'], " ")
    };
    let mut msg = format!(
        "ERR unknown command '{}', with args beginning with: ",
        shown(&args[0])
    );
    for a in &args[1..] {
        if msg.len() > 1024 {
            break;
        }
        msg.push('\'');
        msg.push_str(&shown(a));
        msg.push_str("' ");
    }
    RedisReply::Error(msg)
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]` as redis 6+ answers
/// it when the client stays on RESP2 (no password is configured: `AUTH`
/// is accepted as redis' `nopass` default user accepts it).
fn hello(args: &[Bytes], conn_id: u64) -> RedisReply {
    if let Some(ver) = args.get(1) {
        match super::command::parse_i64(ver) {
            Some(2) => {}
            Some(3) => return RedisReply::error("NOPROTO unsupported protocol version"),
            Some(v) if (0..=i64::from(i32::MAX)).contains(&v) => {
                return RedisReply::error("NOPROTO unsupported protocol version")
            }
            _ => {
                return RedisReply::error("ERR Protocol version is not an integer or out of range")
            }
        }
        let mut i = 2;
        while i < args.len() {
            let opt = &args[i];
            let more = args.len() - i - 1;
            if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
                i += 3;
            } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
                i += 2;
            } else {
                return RedisReply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(opt)
                ));
            }
        }
    }
    let s = |t: &str| RedisReply::bulk(t);
    RedisReply::Array(vec![
        s("server"),
        s("fibrpc"),
        s("version"),
        s(env!("CARGO_PKG_VERSION")),
        s("proto"),
        RedisReply::Integer(2),
        s("id"),
        RedisReply::Integer(conn_id as i64),
        s("mode"),
        s("standalone"),
        s("role"),
        s("master"),
        s("modules"),
        RedisReply::Array(Vec::new()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(ws: &[&str]) -> Vec<Bytes> {
        ws.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn commands_are_found_in_any_case_and_unknown_ones_answered_as_redis() {
        let mut s = RedisService::new();
        s.add_command_handler("Get", |a: &[Bytes]| RedisReply::bulk(a[1].to_vec()))
            .unwrap();
        assert!(s
            .add_command_handler("GET", |_: &[Bytes]| RedisReply::Nil)
            .is_err());
        assert_eq!(s.run(&args(&["gEt", "k"]), 1), RedisReply::bulk("k"));
        assert_eq!(
            s.run(&args(&["foo", "bar", "baz"]), 1),
            RedisReply::error("ERR unknown command 'foo', with args beginning with: 'bar' 'baz' ")
        );
    }

    #[test]
    fn hello_speaks_resp2_only() {
        let s = RedisService::new();
        assert_eq!(
            s.run(&args(&["HELLO", "3"]), 1),
            RedisReply::error("NOPROTO unsupported protocol version")
        );
        assert!(s.run(&args(&["hello", "x"]), 1).is_error());
        assert!(s.run(&args(&["hello", "2", "bogus"]), 1).is_error());
        for a in [
            &["HELLO"][..],
            &["HELLO", "2", "AUTH", "u", "p", "SETNAME", "n"],
        ] {
            let r = s.run(&args(a), 7);
            let items = r.as_array().unwrap();
            assert_eq!(items.len(), 14);
            assert_eq!(items[5], RedisReply::Integer(2));
            assert_eq!(items[7], RedisReply::Integer(7));
        }
    }
}
