//! Process-wide options that can be read, and for reloadable ones set, at
//! run time (bRPC's gflags as shown by `/flags`).
//!
//! fibrpc registers its own; applications may [`register`] theirs, and the
//! `/flags` page lists them all. The program sets them with [`set`]; the
//! console (`/flags/NAME?setvalue=V`) only on a server started with
//! [`ServerOptions::console_flags_writable`](crate::ServerOptions::console_flags_writable),
//! and then from any client that reaches it: a setter must accept only
//! safe values and say which ones it takes.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! static BATCH: AtomicU64 = AtomicU64::new(16);
//! fibrpc::flags::register(fibrpc::flags::Flag {
//!     name: "my_batch_size",
//!     description: "requests per batch",
//!     default: "16",
//!     get: || BATCH.load(Ordering::Relaxed).to_string(),
//!     set: Some(|v| {
//!         let n: u64 = v.parse().map_err(|e| format!("{e}"))?;
//!         BATCH.store(n, Ordering::Relaxed);
//!         Ok(())
//!     }),
//! })
//! .unwrap();
//! fibrpc::flags::set("my_batch_size", "32").unwrap();
//! assert_eq!(fibrpc::flags::get("my_batch_size").unwrap(), "32");
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::RpcError;

/// Sets a flag from text, or says why the text is refused.
pub type SetFlag = fn(&str) -> Result<(), String>;

/// One option.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// Unique name (`[a-z0-9_]`).
    pub name: &'static str,
    /// What it controls.
    pub description: &'static str,
    /// The default value, as text.
    pub default: &'static str,
    /// Reads the current value.
    pub get: fn() -> String,
    /// Sets the value from text; `None`: not reloadable. It gets whatever
    /// a console request carries, so it must validate (never panic) and,
    /// refusing, name the allowed values: the console answers 400 with the
    /// message.
    pub set: Option<SetFlag>,
}

static LOG_CONNECTION_ERRORS: AtomicBool = AtomicBool::new(true);

/// Whether connections closed for bad input are logged (flag
/// `log_connection_errors`).
pub(crate) fn log_connection_errors() -> bool {
    LOG_CONNECTION_ERRORS.load(Ordering::Relaxed)
}

fn registry() -> &'static Mutex<BTreeMap<&'static str, Flag>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<&'static str, Flag>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let builtin = [
            Flag {
                name: "fiber_concurrency",
                description: "worker threads of the default fiber runtime; can only grow",
                default: "number of cores",
                get: || fibrpc_fiber::Runtime::global().workers().to_string(),
                set: Some(set_fiber_concurrency),
            },
            Flag {
                name: "log_connection_errors",
                description: "log connections closed for malformed input",
                default: "true",
                get: || LOG_CONNECTION_ERRORS.load(Ordering::Relaxed).to_string(),
                set: Some(|v| {
                    let on: bool = v
                        .parse()
                        .map_err(|_| "allowed: true or false".to_string())?;
                    LOG_CONNECTION_ERRORS.store(on, Ordering::Relaxed);
                    Ok(())
                }),
            },
        ];
        Mutex::new(
            builtin
                .into_iter()
                .chain(crate::rpcz::flags())
                .chain(crate::profile::flags())
                .map(|f| (f.name, f))
                .collect(),
        )
    })
}

/// `fiber_concurrency`: the default runtime grows to the number of
/// workers asked for, between its current count (workers are never
/// removed) and [`fibrpc_fiber::MAX_WORKERS`] (past which the runtime has
/// no slot for a worker).
fn set_fiber_concurrency(v: &str) -> Result<(), String> {
    let rt = fibrpc_fiber::Runtime::global();
    let (have, max) = (rt.workers(), fibrpc_fiber::MAX_WORKERS);
    let allowed = || format!("allowed: {have}..={max} (workers can be added, not removed)");
    let want: usize = v
        .trim()
        .parse()
        .map_err(|_| format!("not a number; {}", allowed()))?;
    if !(have..=max).contains(&want) {
        return Err(format!("{want} is out of range; {}", allowed()));
    }
    // Checked again under the runtime's lock: another request may have
    // grown it meanwhile.
    rt.grow_workers_to(want).map_err(|e| e.to_string())
}

/// Adds a flag. Fails if the name is taken or not `[a-z0-9_]+`.
pub fn register(flag: Flag) -> Result<(), RpcError> {
    let valid = !flag.name.is_empty()
        && flag
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(RpcError::new(
            libc::EINVAL,
            format!("bad flag name {:?}", flag.name),
        ));
    }
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    if r.contains_key(flag.name) {
        return Err(RpcError::new(
            libc::EEXIST,
            format!("flag {} registered twice", flag.name),
        ));
    }
    r.insert(flag.name, flag);
    Ok(())
}

/// Every flag, by name.
pub fn list() -> Vec<Flag> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .copied()
        .collect()
}

/// Flag `name`, copied out of the registry (its getter and setter then
/// run outside the lock: a setter may be slow, starting workers).
pub(crate) fn find(name: &str) -> Option<Flag> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .copied()
}

/// The current value of flag `name`.
pub fn get(name: &str) -> Option<String> {
    find(name).map(|f| (f.get)())
}

/// Sets a reloadable flag (from the program: the console's permission,
/// [`ServerOptions::console_flags_writable`](crate::ServerOptions::console_flags_writable),
/// does not apply).
pub fn set(name: &str, value: &str) -> Result<(), String> {
    let f = find(name).ok_or_else(|| format!("no flag named {name}"))?;
    let set = f.set.ok_or_else(|| format!("{name} is not reloadable"))?;
    set(value)
}
