//! Prometheus text exposition format 0.0.4 for every numeric exposed
//! variable.
//!
//! Registry names are already `[a-z0-9_]`; one starting with a digit gets
//! a leading `_` to be a valid metric name. `Adder`s are counters, other
//! numbers gauges, text is skipped, and each `LatencyRecorder` adds a
//! summary (see its `_latency` sub-variable). A variable whose metric names
//! would repeat ones already written is skipped, so the output never has
//! duplicate families.

use std::collections::HashSet;
use std::fmt::Write;

/// Writes `# TYPE` and one sample per numeric exposed variable, sorted by
/// name, to `out` (Prometheus text format 0.0.4).
pub fn dump_prometheus(out: &mut String) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut one = String::new();
    crate::registry::for_each_live(|name, var| {
        one.clear();
        var.dump_prometheus(&metric_name(name), &mut one);
        let names: Vec<&str> = one
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .collect();
        if names.iter().any(|n| seen.contains(*n)) {
            return;
        }
        seen.extend(names.into_iter().map(str::to_owned));
        out.push_str(&one);
    });
}

/// A valid metric name for a registry name.
fn metric_name(name: &str) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

/// A sample value: integers without a fraction, Prometheus' spellings of
/// the infinities and NaN.
fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `# TYPE name kind` and `name value`.
pub(crate) fn write_sample(out: &mut String, name: &str, kind: &str, v: f64) {
    let _ = write!(out, "# TYPE {name} {kind}\n{name} ");
    write_value(out, v);
    out.push('\n');
}

/// A summary: one sample per `(quantile, value)`, then `_sum`, `_count`.
pub(crate) fn write_summary(
    out: &mut String,
    name: &str,
    quantiles: &[(f64, f64)],
    sum: f64,
    count: f64,
) {
    let _ = writeln!(out, "# TYPE {name} summary");
    for &(q, v) in quantiles {
        let _ = write!(out, "{name}{{quantile=\"{q}\"}} ");
        write_value(out, v);
        out.push('\n');
    }
    let _ = write!(out, "{name}_sum ");
    write_value(out, sum);
    let _ = write!(out, "\n{name}_count ");
    write_value(out, count);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adder, LatencyRecorder, Maxer, PassiveStatus, Status};
    use std::collections::HashMap;

    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    fn valid_value(v: &str) -> bool {
        matches!(v, "NaN" | "+Inf" | "-Inf") || v.parse::<f64>().is_ok_and(f64::is_finite)
    }

    /// Parses `{k="v",...}`; labels are valid names, values quoted with
    /// `\\`, `\"` and `\n` escapes.
    fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
        let mut labels = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").ok_or(format!("bad label in {s}"))?;
            if !valid_name(k) || k.contains(':') {
                return Err(format!("bad label name {k}"));
            }
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err(format!("bad escape in {s}")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated label in {s}")),
                }
            };
            labels.push((k.to_owned(), value));
            rest = &after[end + 1..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        Ok(labels)
    }

    /// A strict reader of text format 0.0.4: `# TYPE` before a family's
    /// samples and at most once, families contiguous, valid names, labels
    /// and values, summary samples named `F`, `F_sum`, `F_count` with a
    /// `quantile` label on `F`, no duplicate samples. Returns the samples.
    fn parse(text: &str) -> Result<HashMap<String, f64>, String> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = HashMap::new();
        let mut current: Option<String> = None;
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').ok_or(format!("bad TYPE: {line}"))?;
                if !valid_name(name) {
                    return Err(format!("bad family name {name}"));
                }
                if !["counter", "gauge", "summary", "histogram", "untyped"].contains(&kind) {
                    return Err(format!("bad type {kind}"));
                }
                if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(format!("second TYPE for {name}"));
                }
                current = Some(name.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').ok_or(format!("bad sample: {line}"))?;
            if !valid_value(value) {
                return Err(format!("bad value: {line}"));
            }
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (
                    n,
                    parse_labels(l.strip_suffix('}').ok_or(format!("bad labels: {line}"))?)?,
                ),
                None => (series, Vec::new()),
            };
            if !valid_name(name) {
                return Err(format!("bad metric name {name}"));
            }
            let family = current
                .as_deref()
                .ok_or(format!("sample before any TYPE: {line}"))?;
            let ok = match types[family].as_str() {
                "summary" => {
                    (name == family && labels.iter().any(|(k, _)| k == "quantile"))
                        || name == format!("{family}_sum")
                        || name == format!("{family}_count")
                }
                _ => name == family,
            };
            if !ok {
                return Err(format!("sample {name} outside its family ({family})"));
            }
            if samples
                .insert(series.to_owned(), value.parse::<f64>().unwrap_or(f64::NAN))
                .is_some()
            {
                return Err(format!("duplicate sample {series}"));
            }
        }
        Ok(samples)
    }

    #[test]
    fn parser_rejects_bad_output() {
        assert!(parse("x 1\n").is_err(), "no TYPE");
        assert!(parse("# TYPE x gauge\nx 1\nx 2\n").is_err(), "duplicate");
        assert!(
            parse("# TYPE x gauge\n# TYPE x gauge\n").is_err(),
            "TYPE twice"
        );
        assert!(parse("# TYPE 1x gauge\n").is_err(), "bad name");
        assert!(parse("# TYPE x gauge\nx one\n").is_err(), "bad value");
        assert!(parse("# TYPE x summary\nx 1\n").is_err(), "no quantile");
        assert!(parse("# TYPE x gauge\ny 1\n").is_err(), "wrong family");
        assert!(parse("# TYPE x summary\nx{quantile=\"0.5\"} 1\nx_sum 2\nx_count +Inf\n").is_ok());
    }

    #[test]
    fn dump_is_valid_exposition_format() {
        let a = Adder::new_exposed("prom_test_requests").unwrap();
        a.add(3);
        let m = Maxer::new();
        m.expose("9prom_test_digit").unwrap();
        m.update(7);
        let s = Status::new(String::from("text is skipped"));
        s.expose("prom_test_text").unwrap();
        let f = PassiveStatus::new(|| 2.5);
        f.expose("prom_test_float").unwrap();
        let r = LatencyRecorder::with_window(1);
        r.expose("prom_test_rpc").unwrap();
        r.record(100);
        r.record(300);
        r.tick();
        // Collides with the recorder's summary: must be skipped, not
        // duplicated.
        let clash = Adder::new_exposed("prom_test_rpc_latency_summary_count").unwrap();

        let mut out = String::new();
        dump_prometheus(&mut out);
        let samples = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains("# TYPE prom_test_requests counter\n"));
        assert_eq!(samples["prom_test_requests"], 3.0);
        assert_eq!(samples["_9prom_test_digit"], 7.0);
        assert_eq!(samples["prom_test_float"], 2.5);
        assert!(!out.contains("prom_test_text"));
        assert_eq!(samples["prom_test_rpc_count"], 2.0);
        assert_eq!(samples["prom_test_rpc_latency"], 200.0);
        assert_eq!(
            samples["prom_test_rpc_latency_summary{quantile=\"0.5\"}"],
            100.0
        );
        assert!(
            (samples["prom_test_rpc_latency_summary{quantile=\"0.99\"}"] - 300.0).abs()
                <= 300.0 / 64.0
        );
        assert_eq!(samples["prom_test_rpc_latency_summary_sum"], 400.0);
        assert!(
            !out.contains("prom_test_rpc_latency_99 "),
            "percentiles only in the summary"
        );
        assert!(!out.contains("# TYPE prom_test_rpc_latency_summary_count counter"));
        drop(clash);
    }

    #[test]
    fn values() {
        let mut out = String::new();
        for v in [1.0, 0.25, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -3.0] {
            write_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "1 0.25 NaN +Inf -Inf -3 ");
    }
}
