//! Reads a process's CPU time and resident memory from `/proc`, so a press
//! tool can charge the server for the work done in its measured window:
//! [`CpuWindow`] takes `utime + stime` at the start and at the end, and
//! [`rss_kb`] reads `VmRSS`. Shared by `tonic_press` and (later)
//! `fibrpc_press`, so both sides are measured the same way.

use std::io;

/// User plus system CPU seconds process `pid` has used so far, all threads
/// included (`utime + stime`, fields 14 and 15 of `/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

/// `utime + stime` in clock ticks from the text of a `/proc/PID/stat`.
fn parse_cpu_ticks(stat: &str) -> io::Result<u64> {
    // The command name (field 2) is in parentheses and may hold spaces or
    // ')', so count fields from the last ')'. Field 3 (state) follows it.
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
    Ok(ticks()? + ticks()?)
}

/// Resident set size of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kb(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> io::Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| bad_data("no VmRSS in status"))
}

/// The server's CPU time over a measured window: [`CpuWindow::start`] when
/// measuring begins (after warm-up), [`CpuWindow::finish`] when it ends.
#[derive(Debug, Clone, Copy)]
pub struct CpuWindow {
    pid: u32,
    start_s: f64,
}

/// What a [`CpuWindow`] measured, plus the server's RSS at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerStats {
    /// CPU seconds (user + system) the server used in the window.
    pub cpu_s: f64,
    /// `cpu_s` per 100,000 completed calls: the cost of a call, in the
    /// unit the summary prints.
    pub cpu_per_100k_s: f64,
    /// `VmRSS` of the server at the end of the window, in KiB.
    pub rss_kb: u64,
}

impl CpuWindow {
    /// Reads process `pid`'s CPU time now.
    pub fn start(pid: u32) -> io::Result<Self> {
        Ok(Self {
            pid,
            start_s: cpu_seconds(pid)?,
        })
    }

    /// Reads the CPU time and RSS again and charges the difference to
    /// `calls` completed calls (a window with no calls gives 0 per call).
    pub fn finish(&self, calls: u64) -> io::Result<ServerStats> {
        let cpu_s = (cpu_seconds(self.pid)? - self.start_s).max(0.0);
        let cpu_per_100k_s = if calls == 0 {
            0.0
        } else {
            cpu_s * 100_000.0 / calls as f64
        };
        Ok(ServerStats {
            cpu_s,
            cpu_per_100k_s,
            rss_kb: rss_kb(self.pid)?,
        })
    }
}

impl ServerStats {
    /// The stats of several server processes charged for the same calls,
    /// as one: CPU and RSS added up.
    pub fn sum(all: &[ServerStats]) -> ServerStats {
        all.iter().fold(
            ServerStats {
                cpu_s: 0.0,
                cpu_per_100k_s: 0.0,
                rss_kb: 0,
            },
            |a, s| ServerStats {
                cpu_s: a.cpu_s + s.cpu_s,
                cpu_per_100k_s: a.cpu_per_100k_s + s.cpu_per_100k_s,
                rss_kb: a.rss_kb + s.rss_kb,
            },
        )
    }

    /// The fields to append to a `RESULT {...}` json object, with a leading
    /// comma: `,"server_cpu_s":F,"server_cpu_per_100k_s":F,"server_rss_kb":N`.
    pub fn json_fields(&self) -> String {
        format!(
            ",\"server_cpu_s\":{:.3},\"server_cpu_per_100k_s\":{:.4},\"server_rss_kb\":{}",
            self.cpu_s, self.cpu_per_100k_s, self.rss_kb
        )
    }
}

/// CPU seconds all CPUs together have spent busy since boot (the first
/// line of `/proc/stat`, every column but idle and iowait). Over a window,
/// minus the server's and the press tool's own CPU time, it shows how much
/// CPU something else took: the benchmark machines are shared.
pub fn machine_busy_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_busy_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

fn parse_busy_ticks(stat: &str) -> io::Result<u64> {
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
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok(ticks.iter().sum::<u64>() - idle)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_servers_add_up() {
        let a = ServerStats {
            cpu_s: 1.5,
            cpu_per_100k_s: 0.5,
            rss_kb: 100,
        };
        let b = ServerStats {
            cpu_s: 0.5,
            cpu_per_100k_s: 0.25,
            rss_kb: 20,
        };
        let s = ServerStats::sum(&[a, b]);
        assert_eq!((s.cpu_s, s.cpu_per_100k_s, s.rss_kb), (2.0, 0.75, 120));
        assert_eq!(ServerStats::sum(&[a]), a);
    }

    #[test]
    fn parses_stat_with_odd_command_name() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0 1 2 3";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 12);
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_vm_rss(status).unwrap(), 2048);
    }

    #[test]
    fn parses_machine_busy() {
        let stat = "cpu  10 1 5 100 7 2 3 0 0 0\ncpu0 1 1 1 1 1 1 1 1\n";
        assert_eq!(parse_busy_ticks(stat).unwrap(), 21);
        assert!(machine_busy_seconds().unwrap() > 0.0);
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        let window = CpuWindow::start(me).unwrap();
        let stats = window.finish(1000).unwrap();
        assert!(stats.cpu_s >= 0.0);
        assert!(stats.rss_kb > 0);
        assert!(stats.json_fields().starts_with(",\"server_cpu_s\":"));
    }
}
