//! Process variables read from `/proc` (bRPC's `process_*` bvars).

use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::registry::ExposeError;
use crate::status::PassiveStatus;

/// Linux's `USER_HZ`: the unit of times in `/proc/*/stat`. Fixed at 100 on
/// every architecture fibrpc targets (it is part of the kernel's ABI).
const TICKS_PER_SEC: f64 = 100.0;

/// Fields of `/proc/self/stat` after the command name, numbered as in
/// proc(5) (the first one after `)` is field 3).
fn stat_field(stat: &str, field: usize) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after
        .split_whitespace()
        .nth(field.checked_sub(3)?)?
        .parse()
        .ok()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// CPU seconds (user + system) used so far.
fn cpu_seconds() -> f64 {
    let stat = read("/proc/self/stat");
    let ticks = stat_field(&stat, 14).unwrap_or(0.0) + stat_field(&stat, 15).unwrap_or(0.0);
    ticks / TICKS_PER_SEC
}

/// Resident memory in bytes.
fn resident_bytes() -> i64 {
    let status = read("/proc/self/status");
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok());
    kib.unwrap_or(0) * 1024
}

fn fd_count() -> i64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(0)
}

/// Seconds since the process started.
fn uptime_seconds() -> f64 {
    let up: f64 = read("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let start = stat_field(&read("/proc/self/stat"), 22).unwrap_or(0.0) / TICKS_PER_SEC;
    (up - start).max(0.0)
}

/// Cores used since the previous read (at least 0.5 s apart; a read
/// sooner returns the previous figure).
fn cpu_usage(last: &Mutex<(Instant, f64, f64)>) -> f64 {
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    let (now, cpu) = (Instant::now(), cpu_seconds());
    let elapsed = now.duration_since(last.0).as_secs_f64();
    if elapsed >= 0.5 {
        last.2 = (cpu - last.1) / elapsed;
        *last = (now, cpu, last.2);
    }
    last.2
}

/// Exposes `process_cpu_usage` (cores), `process_memory_resident`
/// (bytes), `process_fd_count` and `process_uptime` (seconds), read from
/// `/proc` when shown. Calling it again does nothing; an error means one of
/// the names was already taken (the others stay exposed).
pub fn expose_process_vars() -> Result<(), ExposeError> {
    static VARS: OnceLock<(Vec<PassiveStatus>, Result<(), ExposeError>)> = OnceLock::new();
    let (_, result) = VARS.get_or_init(|| {
        let last = Mutex::new((Instant::now(), cpu_seconds(), 0.0));
        let vars = [
            (
                "process_cpu_usage",
                PassiveStatus::new(move || cpu_usage(&last)),
            ),
            (
                "process_memory_resident",
                PassiveStatus::new(resident_bytes),
            ),
            ("process_fd_count", PassiveStatus::new(fd_count)),
            ("process_uptime", PassiveStatus::new(uptime_seconds)),
        ];
        let mut result = Ok(());
        for (name, var) in &vars {
            if let Err(e) = var.expose(name) {
                result = result.and(Err(e));
            }
        }
        (vars.into_iter().map(|(_, v)| v).collect(), result)
    });
    result.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc() {
        expose_process_vars().unwrap();
        expose_process_vars().unwrap();
        let get = |n| {
            crate::registry::describe(n)
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        assert!(get("process_memory_resident") > 1e5);
        assert!(get("process_fd_count") >= 3.0);
        assert!(get("process_uptime") >= 0.0);
        assert!(get("process_cpu_usage") >= 0.0);
        assert_eq!(stat_field("1 (a) b) S 7 8", 4), Some(7.0));
    }
}
