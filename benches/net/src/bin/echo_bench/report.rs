//! The two result lines: one for people, one (`RESULT {json}`) for
//! `summarize.py`.

use crate::opts::Opts;
use crate::tally::Tally;
use std::fmt::Write;

/// What was measured about the server process (`--server-pid`).
pub struct ServerUsage {
    /// CPU seconds used during the measured window.
    pub cpu_s: Option<f64>,
    /// RSS before the generator connected.
    pub rss_before_kib: Option<u64>,
    /// RSS at the end of the window, connections still open.
    pub rss_kib: Option<u64>,
    /// Highest RSS sampled during the window (`--idle` only).
    pub rss_peak_kib: Option<u64>,
}

/// Everything the result lines say.
pub struct Report {
    label: String,
    idle: bool,
    connections: usize,
    connected: usize,
    connect_secs: f64,
    size: usize,
    threads: usize,
    window_secs: f64,
    pub tally: Tally,
    pub connect_failures: usize,
    /// The last error any thread saw, to say why something failed.
    pub error: Option<String>,
    /// Generator CPU seconds during the window.
    pub gen_cpu_s: Option<f64>,
    /// CPU seconds the whole machine was busy during the window.
    pub machine_busy_s: Option<f64>,
    pub server: Option<ServerUsage>,
}

impl Report {
    pub fn new(opts: &Opts, connected: usize, connect_secs: f64) -> Self {
        Self {
            label: opts.label.clone(),
            idle: opts.idle,
            connections: opts.connections,
            connected,
            connect_secs,
            size: opts.size,
            threads: opts.threads,
            window_secs: opts.duration.as_secs_f64(),
            tally: Tally::new(),
            connect_failures: 0,
            error: None,
            gen_cpu_s: None,
            machine_busy_s: None,
            server: None,
        }
    }

    pub fn print(&self) {
        if let Some(error) = &self.error {
            eprintln!("[{}] last error: {error}", self.label);
        }
        println!("{}", self.human_line());
        println!("RESULT {}", self.json());
    }

    fn requests_per_sec(&self) -> f64 {
        self.tally.requests() as f64 / self.window_secs
    }

    /// CPU seconds per 100k requests completed in the window.
    fn per_100k(&self, cpu_s: Option<f64>) -> Option<f64> {
        let requests = self.tally.requests();
        cpu_s
            .filter(|_| requests > 0)
            .map(|s| s * 1e5 / requests as f64)
    }

    /// Cores' worth of CPU that neither the server nor the generator used
    /// during the window: anything well above zero means a neighbour
    /// disturbed the run (these machines are shared).
    fn other_load_cores(&self) -> Option<f64> {
        let server = self.server.as_ref().map_or(Some(0.0), |s| s.cpu_s)?;
        let other = self.machine_busy_s? - self.gen_cpu_s? - server;
        Some(other.max(0.0) / self.window_secs)
    }

    fn human_line(&self) -> String {
        let t = &self.tally;
        let mut line = format!("[{}] ", self.label);
        let conns = if self.connected == self.connections {
            self.connected.to_string()
        } else {
            format!("{}/{}", self.connected, self.connections)
        };
        if self.idle {
            let _ = write!(line, "idle C={conns} held {:.0} s", self.window_secs);
        } else {
            let _ = write!(
                line,
                "C={conns} S={} T={}: {:.0} req/s, p50 {} p99 {} p99.9 {}",
                self.size,
                self.threads,
                self.requests_per_sec(),
                fmt_us(t.quantile_us(0.5)),
                fmt_us(t.quantile_us(0.99)),
                fmt_us(t.quantile_us(0.999)),
            );
        }
        if let Some(server) = &self.server {
            line.push_str(" | server");
            if !self.idle {
                if let Some(cpu) = self.per_100k(server.cpu_s) {
                    let _ = write!(line, " {cpu:.3} CPU-s/100k,");
                }
            } else if let Some(cpu) = server.cpu_s {
                let _ = write!(line, " {cpu:.2} CPU-s,");
            }
            let _ = write!(line, " RSS {}", fmt_kib(server.rss_kib));
            if self.idle {
                let _ = write!(
                    line,
                    " (before {}, peak {}{})",
                    fmt_kib(server.rss_before_kib),
                    fmt_kib(server.rss_peak_kib),
                    self.per_connection(server)
                        .map(|b| format!(", {:.1} KiB/conn", b / 1024.0))
                        .unwrap_or_default(),
                );
            }
        }
        if let Some(cpu) = self.per_100k(self.gen_cpu_s).filter(|_| !self.idle) {
            let _ = write!(line, " | generator {cpu:.3} CPU-s/100k");
        }
        if let Some(other) = self.other_load_cores() {
            let _ = write!(line, " | other load {other:.2} cores");
        }
        let _ = write!(
            line,
            " | errors: connect {}, resets {}, short echoes {}",
            self.connect_failures, t.resets, t.short_echoes
        );
        line
    }

    /// Server memory per held connection in bytes: peak RSS over the RSS
    /// before connecting, spread over the connections.
    fn per_connection(&self, server: &ServerUsage) -> Option<f64> {
        let grown = server.rss_peak_kib?.checked_sub(server.rss_before_kib?)?;
        (self.connected > 0).then(|| grown as f64 * 1024.0 / self.connected as f64)
    }

    fn json(&self) -> String {
        let t = &self.tally;
        let mut fields: Vec<(&str, String)> = vec![
            ("label", json_str(&self.label)),
            ("mode", json_str(if self.idle { "idle" } else { "load" })),
            ("conns", self.connections.to_string()),
            ("connected", self.connected.to_string()),
            ("connect_s", json_num(Some(self.connect_secs))),
            ("size", self.size.to_string()),
            ("threads", self.threads.to_string()),
            ("duration_s", json_num(Some(self.window_secs))),
            ("requests", t.requests().to_string()),
            ("rps", json_num(Some(self.requests_per_sec()))),
            ("p50_us", json_num(Some(t.quantile_us(0.5)))),
            ("p99_us", json_num(Some(t.quantile_us(0.99)))),
            ("p999_us", json_num(Some(t.quantile_us(0.999)))),
            ("max_us", json_num(Some(t.latency_ns.max() as f64 / 1e3))),
            ("connect_errors", self.connect_failures.to_string()),
            ("resets", t.resets.to_string()),
            ("short_echoes", t.short_echoes.to_string()),
            ("gen_cpu_s", json_num(self.gen_cpu_s)),
            ("gen_cpu_per_100k", json_num(self.per_100k(self.gen_cpu_s))),
            ("other_load_cores", json_num(self.other_load_cores())),
        ];
        if let Some(server) = &self.server {
            fields.extend([
                ("server_cpu_s", json_num(server.cpu_s)),
                ("server_cpu_per_100k", json_num(self.per_100k(server.cpu_s))),
                ("server_rss_kib", json_opt(server.rss_kib)),
                ("server_rss_before_kib", json_opt(server.rss_before_kib)),
                ("server_rss_peak_kib", json_opt(server.rss_peak_kib)),
                (
                    "server_bytes_per_conn",
                    json_num(self.per_connection(server)),
                ),
            ]);
        }
        if let Some(error) = &self.error {
            fields.push(("error", json_str(error)));
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    }
}

fn fmt_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn fmt_kib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn json_num(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "null".into(),
    }
}

fn json_opt(x: Option<u64>) -> String {
    x.map_or_else(|| "null".into(), |x| x.to_string())
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
