//! Reads the report `wrk --latency` prints: requests, duration, requests
//! per second, the 50% and 99% latencies, and the error counts.

/// The figures of one wrk report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Completed requests (`N requests in D, ...`).
    pub requests: u64,
    /// The run's length in seconds (the `D` of that line).
    pub duration_s: f64,
    /// `Requests/sec:`.
    pub rps: f64,
    /// 50% latency in microseconds (`Latency Distribution`).
    pub p50_us: f64,
    /// 99% latency in microseconds.
    pub p99_us: f64,
    /// Socket errors: connect + read + write + timeout.
    pub socket_errors: u64,
    /// `Non-2xx or 3xx responses:` (0 when wrk leaves the line out).
    pub non_2xx: u64,
}

/// Parses wrk's report; `None` if a figure the summary needs is missing
/// (wrk failed, or ran without `--latency`).
pub fn parse(out: &str) -> Option<Report> {
    let (mut requests, mut duration_s, mut rps) = (None, None, None);
    let (mut p50_us, mut p99_us) = (None, None);
    let (mut socket_errors, mut non_2xx) = (0, 0);
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", d, ..] => {
                requests = n.parse().ok();
                duration_s = seconds(d.trim_end_matches(','));
            }
            ["Requests/sec:", r] => rps = r.parse().ok(),
            ["50%", t] => p50_us = seconds(t).map(|s| s * 1e6),
            ["99%", t] => p99_us = seconds(t).map(|s| s * 1e6),
            ["Non-2xx", "or", "3xx", "responses:", n] => non_2xx = n.parse().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // connect N, read N, write N, timeout N
                socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    Some(Report {
        requests: requests?,
        duration_s: duration_s?,
        rps: rps?,
        p50_us: p50_us?,
        p99_us: p99_us?,
        socket_errors,
        non_2xx,
    })
}

/// A wrk time (`812.00us`, `1.05ms`, `10.00s`, `1.50m`, `2.00h`) in seconds.
fn seconds(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8101/hello
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   261.27us  179.15us   8.49ms   93.20%
    Req/Sec    95.58k     6.21k  108.46k    72.00%
  Latency Distribution
     50%  228.00us
     75%  280.00us
     90%  355.00us
     99%    1.05ms
  1901929 requests in 10.00s, 233.99MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec: 190186.54
Transfer/sec:     23.40MB
";

    #[test]
    fn parses_a_report() {
        let r = parse(REPORT).unwrap();
        assert_eq!(r.requests, 1_901_929);
        assert_eq!(r.duration_s, 10.0);
        assert_eq!(r.rps, 190_186.54);
        assert!((r.p50_us - 228.0).abs() < 1e-9);
        assert!((r.p99_us - 1050.0).abs() < 1e-9);
        assert_eq!(r.socket_errors, 3);
        assert_eq!(r.non_2xx, 5);
    }

    #[test]
    fn error_lines_are_optional_and_latency_is_not() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        let r = parse(&clean).unwrap();
        assert_eq!((r.socket_errors, r.non_2xx), (0, 0));
        let no_latency: String = REPORT
            .lines()
            .filter(|l| !l.contains("99%"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse(&no_latency), None);
        assert_eq!(parse("unable to connect to 127.0.0.1:1"), None);
    }

    #[test]
    fn reads_wrk_times() {
        assert_eq!(seconds("2.00s"), Some(2.0));
        assert_eq!(seconds("1.50m"), Some(90.0));
        assert_eq!(seconds("12.5ms"), Some(0.0125));
        assert_eq!(seconds("12"), None);
        assert_eq!(seconds("3.0k"), None);
    }
}
