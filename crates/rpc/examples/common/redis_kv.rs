//! A concurrent in-memory key-value store answering redis commands, for
//! the `redis_server` example (and the redis tests, which serve it too).
//!
//! Keys are spread over 64 shards by hash, each a map behind its own
//! mutex held for a lookup or an update only, so workers running
//! different keys rarely meet on one lock. Expired keys are dropped when
//! next touched (redis also samples them in the background; this store
//! does not).

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fibrpc::redis::{RedisReply, RedisService};
use fibrpc::IOBuf;
use rustc_hash::FxHasher;

const SHARDS: usize = 64;

/// Values shorter than this are copied into the reply (cheaper than a
/// reference to them).
const COPY_BELOW: usize = 512;

type Hasher = BuildHasherDefault<FxHasher>;

struct Entry {
    value: Bytes,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

/// The store. Cheap to clone (clones share the data).
#[derive(Clone)]
pub struct Kv {
    shards: Arc<Vec<Mutex<HashMap<Bytes, Entry, Hasher>>>>,
}

impl Default for Kv {
    fn default() -> Self {
        Kv {
            shards: Arc::new((0..SHARDS).map(|_| Mutex::default()).collect()),
        }
    }
}

fn wrong_args(cmd: &str) -> RedisReply {
    RedisReply::error(format!("ERR wrong number of arguments for '{cmd}' command"))
}

fn not_integer() -> RedisReply {
    RedisReply::error("ERR value is not an integer or out of range")
}

fn bulk(v: &Bytes) -> RedisReply {
    if v.len() < COPY_BELOW {
        RedisReply::Bulk(IOBuf::from(&v[..]))
    } else {
        RedisReply::Bulk(IOBuf::from(v.clone()))
    }
}

fn int_arg(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

impl Kv {
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, HashMap<Bytes, Entry, Hasher>> {
        let i = Hasher::default().hash_one(key) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live value of `key`.
    fn get(&self, key: &[u8]) -> Option<Bytes> {
        let mut shard = self.shard(key);
        match shard.get(key) {
            // The clock only for a key that can expire: reading it was 2 %
            // of the server's CPU under `redis-benchmark -t get`.
            Some(e) if e.expires.is_none() || e.live(Instant::now()) => Some(e.value.clone()),
            Some(_) => {
                shard.remove(key);
                None
            }
            None => None,
        }
    }

    /// A service answering PING, ECHO, GET, SET (EX, PX, NX, XX,
    /// KEEPTTL), DEL, EXISTS, INCR, DECR, INCRBY, MGET, EXPIRE, TTL,
    /// DBSIZE and CONFIG GET (of `save` and `appendonly`: no persistence).
    pub fn service(&self) -> RedisService {
        let mut s = RedisService::new();
        let add =
            |s: &mut RedisService, name: &str, f: fn(&Kv, &[Bytes]) -> RedisReply, kv: &Kv| {
                let kv = kv.clone();
                s.add_command_handler(name, move |a: &[Bytes]| f(&kv, a))
                    .expect("add a redis command");
            };
        add(
            &mut s,
            "ping",
            |_, a| match a.len() {
                1 => RedisReply::status("PONG"),
                2 => bulk(&a[1]),
                _ => wrong_args("ping"),
            },
            self,
        );
        add(
            &mut s,
            "echo",
            |_, a| match a.len() {
                2 => bulk(&a[1]),
                _ => wrong_args("echo"),
            },
            self,
        );
        add(
            &mut s,
            "get",
            |kv, a| match a.len() {
                2 => kv.get(&a[1]).map_or(RedisReply::Nil, |v| bulk(&v)),
                _ => wrong_args("get"),
            },
            self,
        );
        add(
            &mut s,
            "mget",
            |kv, a| {
                if a.len() < 2 {
                    return wrong_args("mget");
                }
                RedisReply::Array(
                    a[1..]
                        .iter()
                        .map(|k| kv.get(k).map_or(RedisReply::Nil, |v| bulk(&v)))
                        .collect(),
                )
            },
            self,
        );
        add(&mut s, "set", Kv::set, self);
        add(
            &mut s,
            "del",
            |kv, a| {
                if a.len() < 2 {
                    return wrong_args("del");
                }
                let now = Instant::now();
                let n = a[1..]
                    .iter()
                    .filter(|k| kv.shard(k).remove(&k[..]).is_some_and(|e| e.live(now)))
                    .count();
                RedisReply::Integer(n as i64)
            },
            self,
        );
        add(
            &mut s,
            "exists",
            |kv, a| {
                if a.len() < 2 {
                    return wrong_args("exists");
                }
                RedisReply::Integer(a[1..].iter().filter(|k| kv.get(k).is_some()).count() as i64)
            },
            self,
        );
        add(
            &mut s,
            "incr",
            |kv, a| match a.len() {
                2 => kv.incr_by(&a[1], 1),
                _ => wrong_args("incr"),
            },
            self,
        );
        add(
            &mut s,
            "decr",
            |kv, a| match a.len() {
                2 => kv.incr_by(&a[1], -1),
                _ => wrong_args("decr"),
            },
            self,
        );
        add(
            &mut s,
            "incrby",
            |kv, a| match (a.len(), a.get(2).and_then(|d| int_arg(d))) {
                (3, Some(d)) => kv.incr_by(&a[1], d),
                (3, None) => not_integer(),
                _ => wrong_args("incrby"),
            },
            self,
        );
        add(
            &mut s,
            "expire",
            |kv, a| match (a.len(), a.get(2).and_then(|d| int_arg(d))) {
                (3, Some(secs)) => kv.expire(&a[1], secs),
                (3, None) => not_integer(),
                _ => wrong_args("expire"),
            },
            self,
        );
        add(
            &mut s,
            "ttl",
            |kv, a| {
                if a.len() != 2 {
                    return wrong_args("ttl");
                }
                let mut shard = kv.shard(&a[1]);
                let now = Instant::now();
                let t = match shard.get(&a[1][..]) {
                    Some(e) if e.live(now) => e
                        .expires
                        .map_or(-1, |t| (t - now).as_secs_f64().round() as i64),
                    Some(_) => {
                        shard.remove(&a[1][..]);
                        -2
                    }
                    None => -2,
                };
                RedisReply::Integer(t)
            },
            self,
        );
        add(
            &mut s,
            "dbsize",
            |kv, _| {
                let n: usize = kv
                    .shards
                    .iter()
                    .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
                    .sum();
                RedisReply::Integer(n as i64)
            },
            self,
        );
        add(
            &mut s,
            "config",
            |_, a| match (a.get(1), a.get(2)) {
                (Some(sub), Some(name)) if sub.eq_ignore_ascii_case(b"get") => {
                    // What redis-benchmark asks at start: no persistence.
                    let value = if name.eq_ignore_ascii_case(b"save") {
                        ""
                    } else if name.eq_ignore_ascii_case(b"appendonly") {
                        "no"
                    } else {
                        return RedisReply::Array(Vec::new());
                    };
                    RedisReply::Array(vec![bulk(name), RedisReply::bulk(value)])
                }
                _ => RedisReply::error("ERR only CONFIG GET name is supported"),
            },
            self,
        );
        s
    }

    /// `SET key value [NX|XX] [EX s|PX ms|KEEPTTL]`.
    fn set(&self, a: &[Bytes]) -> RedisReply {
        if a.len() < 3 {
            return wrong_args("set");
        }
        let (mut nx, mut xx, mut keep_ttl, mut ttl) = (false, false, false, None);
        let mut i = 3;
        while i < a.len() {
            let opt = &a[i];
            let next = a.get(i + 1);
            if opt.eq_ignore_ascii_case(b"nx") && !xx {
                nx = true;
            } else if opt.eq_ignore_ascii_case(b"xx") && !nx {
                xx = true;
            } else if opt.eq_ignore_ascii_case(b"keepttl") && ttl.is_none() {
                keep_ttl = true;
            } else if (opt.eq_ignore_ascii_case(b"ex") || opt.eq_ignore_ascii_case(b"px"))
                && next.is_some()
                && ttl.is_none()
                && !keep_ttl
            {
                let Some(n) = next.and_then(|n| int_arg(n)) else {
                    return not_integer();
                };
                if n <= 0 {
                    return RedisReply::error("ERR invalid expire time in 'set' command");
                }
                let n = n as u64;
                ttl = Some(if opt.eq_ignore_ascii_case(b"ex") {
                    Duration::from_secs(n)
                } else {
                    Duration::from_millis(n)
                });
                i += 1;
            } else {
                return RedisReply::error("ERR syntax error");
            }
            i += 1;
        }
        let now = Instant::now();
        let mut shard = self.shard(&a[1]);
        let old = shard.get(&a[1][..]).filter(|e| e.live(now));
        if (nx && old.is_some()) || (xx && old.is_none()) {
            return RedisReply::Nil;
        }
        let expires = match ttl {
            Some(d) => now.checked_add(d),
            None if keep_ttl => old.and_then(|e| e.expires),
            None => None,
        };
        shard.insert(
            a[1].clone(),
            Entry {
                value: a[2].clone(),
                expires,
            },
        );
        RedisReply::ok()
    }

    fn incr_by(&self, key: &Bytes, by: i64) -> RedisReply {
        let now = Instant::now();
        let mut shard = self.shard(key);
        let (cur, expires) = match shard.get(&key[..]) {
            Some(e) if e.live(now) => match int_arg(&e.value) {
                Some(n) => (n, e.expires),
                None => return not_integer(),
            },
            _ => (0, None),
        };
        let Some(n) = cur.checked_add(by) else {
            return RedisReply::error("ERR increment or decrement would overflow");
        };
        let value = Bytes::from(n.to_string());
        shard.insert(key.clone(), Entry { value, expires });
        RedisReply::Integer(n)
    }

    fn expire(&self, key: &Bytes, secs: i64) -> RedisReply {
        let now = Instant::now();
        let mut shard = self.shard(key);
        match shard.get_mut(&key[..]) {
            Some(e) if e.live(now) => {
                if secs <= 0 {
                    shard.remove(&key[..]);
                } else {
                    e.expires = now.checked_add(Duration::from_secs(secs as u64));
                }
                RedisReply::Integer(1)
            }
            _ => RedisReply::Integer(0),
        }
    }
}
