//! `wrk_window`: runs a `wrk --latency` command and charges the server for
//! the CPU time it used meanwhile.
//!
//! ```text
//! wrk_window --server-pid PID -- wrk -t2 -c50 -d10s --latency http://127.0.0.1:8101/hello
//! ```
//!
//! Reads the server's `utime + stime` (all its threads) and the machine's
//! busy CPU before the command starts and after it exits, and the server's
//! `VmRSS` at the end (`fibrpc_tools::proc_stats`); wrk's own CPU time comes
//! from `getrusage(RUSAGE_CHILDREN)`. Prints wrk's report as it is, then one
//! line (fields in this order):
//!
//! ```text
//! RESULT {"rps":F,"requests":N,"duration_s":F,"p50_us":F,"p99_us":F,"errors":N,
//!         "non_2xx":N,"client_cpu_s":F,"other_load_cores":F,"server_cpu_us_per_req":F,
//!         "server_cpu_s":F,"server_cpu_per_100k_s":F,"server_rss_kb":N}
//! ```
//!
//! `errors` is wrk's socket errors (connect, read, write, timeout);
//! `non_2xx` counts answers that were not 2xx/3xx. The window includes
//! wrk's start-up and connects (milliseconds against seconds of load).
//! `other_load_cores` is the machine's busy CPU over the window minus the
//! server's and wrk's, in cores: well above 0 means a neighbour took CPU
//! during the run. Exits 1 if the command fails or its report lacks a
//! figure.

use std::process::{Command, Stdio};
use std::time::Instant;

use fibrpc_bench_http::proc_stats::{machine_busy_seconds, CpuWindow};
use fibrpc_bench_http::wrk;

/// Runs wrk and charges the server its CPU time over wrk's window.
#[derive(clap::Parser)]
#[command(
    name = "wrk_window",
    override_usage = "wrk_window --server-pid PID -- wrk ARGS... (with --latency)"
)]
struct Flags {
    /// The server's process id.
    #[arg(long)]
    server_pid: u32,
    /// The wrk command line, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() {
    let flags = <Flags as clap::Parser>::parse();
    let pid = flags.server_pid;
    let (program, program_args) = flags
        .command
        .split_first()
        .expect("clap requires a command");

    let busy_before = machine_busy_seconds().unwrap_or_else(|e| die(&format!("/proc/stat: {e}")));
    let window = CpuWindow::start(pid).unwrap_or_else(|e| die(&format!("server {pid}: {e}")));
    let started = Instant::now();
    let output = Command::new(program)
        .args(program_args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| die(&format!("cannot run {program}: {e}")));
    let wall_s = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        die(&format!("{program} failed: {}", output.status));
    }
    let report =
        wrk::parse(&stdout).unwrap_or_else(|| die("no complete wrk report (is --latency there?)"));
    let server = window
        .finish(report.requests)
        .unwrap_or_else(|e| die(&format!("server {pid} after the run: {e}")));
    let busy_after = machine_busy_seconds().unwrap_or_else(|e| die(&format!("/proc/stat: {e}")));
    let client_cpu_s = children_cpu_seconds();
    let other = busy_after - busy_before - server.cpu_s - client_cpu_s;
    let other_load_cores = (other / wall_s).max(0.0);
    let cpu_us_per_req = if report.requests == 0 {
        0.0
    } else {
        server.cpu_s * 1e6 / report.requests as f64
    };
    println!(
        "RESULT {{\"rps\":{:.1},\"requests\":{},\"duration_s\":{:.2},\"p50_us\":{:.1},\
         \"p99_us\":{:.1},\"errors\":{},\"non_2xx\":{},\"client_cpu_s\":{:.3},\
         \"other_load_cores\":{:.2},\"server_cpu_us_per_req\":{:.3}{}}}",
        report.rps,
        report.requests,
        report.duration_s,
        report.p50_us,
        report.p99_us,
        report.socket_errors,
        report.non_2xx,
        client_cpu_s,
        other_load_cores,
        cpu_us_per_req,
        server.json_fields(),
    );
}

/// User plus system CPU seconds of the children waited for (here: wrk).
fn children_cpu_seconds() -> f64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage that outlives the call.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn die(msg: &str) -> ! {
    eprintln!("wrk_window: {msg}");
    std::process::exit(1);
}
