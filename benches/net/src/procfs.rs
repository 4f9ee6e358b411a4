//! Reads a process's CPU time and resident memory from `/proc`, so the
//! generator can charge the server (and itself) for the work done in the
//! measured window. `pid` may be `"self"`.

use std::io;

/// User plus system CPU seconds the process has used so far, all threads
/// included (`utime + stime` of `/proc/PID/stat`).
pub fn cpu_seconds(pid: &str) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // ')', so count fields from the last ')'. After it come field 3 (state)
    // onwards: utime is field 14, stime field 15.
    let after_comm = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| bad_data("no ')' in stat"))?;
    let mut fields = after_comm.split_whitespace().skip(14 - 3);
    let mut ticks = || -> io::Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad_data("short stat line"))
    };
    let total = ticks()? + ticks()?;
    Ok(total as f64 / clock_ticks_per_second())
}

/// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| bad_data("no VmRSS in status"))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value; it has no
    // preconditions and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0 // USER_HZ on every Linux we run on
    }
}

fn bad_data(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// CPU seconds all CPUs together have spent busy since boot (the first
/// line of `/proc/stat`, every column but idle and iowait). Compared with
/// the server's and the generator's own time over the window, it shows how
/// much CPU something else took: these machines are shared.
pub fn machine_busy_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .ok_or_else(|| bad_data("no cpu line in /proc/stat"))?;
    // user nice system idle iowait irq softirq steal (guest time is already
    // inside user and nice).
    let ticks: Vec<u64> = cpu
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().map_err(|_| bad_data("bad /proc/stat number")))
        .collect::<io::Result<_>>()?;
    let (idle, iowait) = (ticks.get(3).copied(), ticks.get(4).copied());
    let busy = ticks.iter().sum::<u64>() - idle.unwrap_or(0) - iowait.unwrap_or(0);
    Ok(busy as f64 / clock_ticks_per_second())
}
