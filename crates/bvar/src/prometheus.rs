//! Prometheus text exposition format 0.0.4 for every numeric exposed
//! variable, clean under `promtool check metrics`.
//!
//! Registry names are already `[a-z0-9_]`; one starting with a digit gets
//! a leading `_` to be a valid metric name. Every family has `# HELP` and
//! `# TYPE`. `Adder`s are counters, named with Prometheus' `_total`
//! suffix; other numbers are gauges (one ending in `_count`, `_sum` or
//! `_bucket`, suffixes Prometheus keeps for summaries and histograms, has
//! `_count` written `_num` and the others `_value` added); text is skipped.
//! Each `LatencyRecorder` writes its percentiles as one summary under its
//! `_latency` name (as bRPC's dumper does). A variable whose metric names
//! would repeat ones already written is skipped, so the output never has
//! duplicate families.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Writes every numeric exposed variable, sorted by name, to `out`
/// (Prometheus text format 0.0.4).
///
/// A labeled registry name (`family{k="v"}`, see
/// [`labeled_name`](crate::registry::labeled_name)) is dumped under its
/// family with its labels added to every sample (before a summary's
/// `quantile`). The registry is sorted, so a family's combinations are
/// adjacent: the first writes `# HELP` and `# TYPE`, the others only their
/// samples, and the family stays contiguous as the format requires.
pub fn dump_prometheus(out: &mut String) {
    // Families with a header written, and which family wrote each sample
    // name: a variable that would repeat a family or a sample name of
    // another family is skipped.
    let mut families: HashSet<String> = HashSet::new();
    let mut samples: HashMap<String, String> = HashMap::new();
    // Families the run of combinations of `run_base` has headed.
    let mut run: HashSet<String> = HashSet::new();
    let mut run_base = String::new();
    let mut one = String::new();
    crate::registry::for_each_live(|name, var| {
        let (base, labels) = match name.split_once('{') {
            Some((b, l)) => (b, Some(l.strip_suffix('}').unwrap_or(l))),
            None => (name, None),
        };
        one.clear();
        var.dump_prometheus(&metric_name(base), &mut one);
        let continuing = labels.is_some() && base == run_base;
        if !continuing {
            run.clear();
        }
        run_base = if labels.is_some() {
            base.to_owned()
        } else {
            String::new()
        };
        let mut text = String::new();
        let mut headed = Vec::new();
        let mut written = Vec::new();
        let mut family = String::new();
        for line in one.lines() {
            if let Some(rest) = line
                .strip_prefix("# HELP ")
                .or(line.strip_prefix("# TYPE "))
            {
                family = rest.split(' ').next().unwrap_or("").to_owned();
                if continuing && run.contains(&family) {
                    continue;
                }
                if families.contains(&family) {
                    return;
                }
                if line.starts_with("# TYPE ") {
                    headed.push(family.clone());
                }
            } else if !line.starts_with('#') {
                let sample = line.split(['{', ' ']).next().unwrap_or("");
                if samples.get(sample).is_some_and(|f| *f != family) {
                    return;
                }
                written.push((sample.to_owned(), family.clone()));
                if let Some(labels) = labels.filter(|l| !l.is_empty()) {
                    add_labels(&mut text, line, labels);
                    continue;
                }
            }
            text.push_str(line);
            text.push('\n');
        }
        families.extend(headed.iter().cloned());
        run.extend(headed);
        samples.extend(written);
        out.push_str(&text);
    });
}

/// Appends sample `line` with `labels` (`k="v",...`) added first.
fn add_labels(out: &mut String, line: &str, labels: &str) {
    let (series, value) = line.rsplit_once(' ').unwrap_or((line, ""));
    match series.split_once('{') {
        Some((name, rest)) => {
            let _ = write!(out, "{name}{{{labels},{rest} {value}");
        }
        None => {
            let _ = write!(out, "{series}{{{labels}}} {value}");
        }
    }
    out.push('\n');
}

/// A valid metric name for a registry name.
fn metric_name(name: &str) -> String {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

/// The family name a sample of `kind` is written under (see the module
/// docs).
fn family_name(name: &str, kind: &str) -> String {
    match kind {
        "counter" if name.ends_with("_total") => name.to_owned(),
        "counter" => format!("{name}_total"),
        "gauge" | "untyped" => match name.strip_suffix("_count") {
            Some(stem) => format!("{stem}_num"),
            None if name.ends_with("_sum") || name.ends_with("_bucket") => {
                format!("{name}_value")
            }
            None => name.to_owned(),
        },
        _ => name.to_owned(),
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

/// `# HELP` and `# TYPE` of family `name`; `help` has `\` and newlines
/// escaped as the format asks.
fn write_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
}

/// One sample of `kind` (`counter`, `gauge`) for the variable whose metric
/// name is `name`, under the family name Prometheus expects for that kind.
pub(crate) fn write_sample(out: &mut String, name: &str, kind: &str, help: &str, v: f64) {
    let family = family_name(name, kind);
    write_header(out, &family, kind, help);
    let _ = write!(out, "{family} ");
    write_value(out, v);
    out.push('\n');
}

/// A summary: one sample per `(quantile, value)`, then `_sum`, `_count`.
pub(crate) fn write_summary(
    out: &mut String,
    name: &str,
    help: &str,
    quantiles: &[(f64, f64)],
    sum: f64,
    count: f64,
) {
    write_header(out, name, "summary", help);
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

    /// A strict reader of text format 0.0.4: `# HELP` with text, then
    /// `# TYPE` before a family's
    /// samples and at most once, families contiguous, valid names, labels
    /// and values, summary samples named `F`, `F_sum`, `F_count` with a
    /// `quantile` label on `F`, no duplicate samples. Returns the samples.
    fn parse(text: &str) -> Result<HashMap<String, f64>, String> {
        let mut types: HashMap<String, String> = HashMap::new();
        let mut helped = std::collections::HashSet::new();
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
                if !helped.contains(name) {
                    return Err(format!("no HELP before TYPE {name}"));
                }
                if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(format!("second TYPE for {name}"));
                }
                current = Some(name.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, text) = rest.split_once(' ').ok_or(format!("bad HELP: {line}"))?;
                if text.is_empty() || !valid_name(name) {
                    return Err(format!("bad HELP: {line}"));
                }
                helped.insert(name.to_owned());
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
        const H: &str = "# HELP x help\n";
        let p = |body: &str| parse(&format!("{H}{body}"));
        assert!(p("x 1\n").is_err(), "no TYPE");
        assert!(parse("# TYPE x gauge\nx 1\n").is_err(), "no HELP");
        assert!(
            parse("# HELP x \n# TYPE x gauge\nx 1\n").is_err(),
            "empty HELP"
        );
        assert!(p("# TYPE x gauge\nx 1\nx 2\n").is_err(), "duplicate");
        assert!(p("# TYPE x gauge\n# TYPE x gauge\n").is_err(), "TYPE twice");
        assert!(parse("# HELP 1x h\n# TYPE 1x gauge\n").is_err(), "bad name");
        assert!(p("# TYPE x gauge\nx one\n").is_err(), "bad value");
        assert!(p("# TYPE x summary\nx 1\n").is_err(), "no quantile");
        assert!(p("# TYPE x gauge\ny 1\n").is_err(), "wrong family");
        assert!(p("# TYPE x summary\nx{quantile=\"0.5\"} 1\nx_sum 2\nx_count +Inf\n").is_ok());
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
        let workers = PassiveStatus::new(|| 2);
        workers.expose("prom_test_worker_count").unwrap();
        // "prom_test_clash" is written as counter `prom_test_clash_total`:
        // the gauge of that name must be skipped, not duplicated.
        let clash = Adder::new_exposed("prom_test_clash").unwrap();
        let clash_gauge = PassiveStatus::new(|| 5);
        clash_gauge.expose("prom_test_clash_total").unwrap();

        let mut out = String::new();
        dump_prometheus(&mut out);
        let samples = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(out.contains(
            "# HELP prom_test_requests_total running total (bvar Adder)\n\
             # TYPE prom_test_requests_total counter\n"
        ));
        assert_eq!(samples["prom_test_requests_total"], 3.0);
        assert_eq!(samples["_9prom_test_digit"], 7.0);
        assert_eq!(samples["prom_test_float"], 2.5);
        assert!(!out.contains("prom_test_text"));
        assert_eq!(samples["prom_test_worker_num"], 2.0);
        assert_eq!(samples["prom_test_rpc_count_total"], 2.0);
        assert!(out.contains("# TYPE prom_test_rpc_latency summary\n"));
        assert_eq!(samples["prom_test_rpc_latency{quantile=\"0.5\"}"], 100.0);
        assert!(
            (samples["prom_test_rpc_latency{quantile=\"0.99\"}"] - 300.0).abs() <= 300.0 / 64.0
        );
        assert_eq!(samples["prom_test_rpc_latency_sum"], 400.0);
        assert_eq!(samples["prom_test_rpc_latency_count"], 2.0);
        assert!(
            !out.contains("prom_test_rpc_latency_99"),
            "percentiles only in the summary"
        );
        assert_eq!(samples["prom_test_clash_total"], 0.0, "the Adder's");
        assert_eq!(out.matches("# TYPE prom_test_clash_total").count(), 1);
        drop((clash, clash_gauge));
    }

    #[test]
    fn labeled_families_have_one_header_and_escaped_labels() {
        let calls: crate::MVariable<Adder> =
            crate::MVariable::new("prom_lab_calls", &["service", "method"]);
        calls.get_stats(&["S", "Echo"]).unwrap().add(2);
        calls.get_stats(&["S", "a\"b\\c\nd"]).unwrap().add(1);
        let lat: crate::MVariable<LatencyRecorder> =
            crate::MVariable::new("prom_lab_rpc", &["method"]);
        for m in ["A", "B"] {
            let r = lat.get_stats(&[m]).unwrap();
            r.record(100);
            r.tick();
        }
        let plain = Adder::new_exposed("prom_lab_calls_x").unwrap();
        let mut out = String::new();
        dump_prometheus(&mut out);
        let samples = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(
            out.matches("# TYPE prom_lab_calls_total counter").count(),
            1
        );
        assert_eq!(out.matches("# HELP prom_lab_calls_total ").count(), 1);
        assert_eq!(
            samples[r#"prom_lab_calls_total{service="S",method="Echo"}"#],
            2.0
        );
        assert_eq!(
            samples[r#"prom_lab_calls_total{service="S",method="a\"b\\c\nd"}"#],
            1.0
        );
        assert_eq!(
            out.matches("# TYPE prom_lab_rpc_latency summary").count(),
            1
        );
        assert_eq!(
            samples[r#"prom_lab_rpc_latency{method="B",quantile="0.5"}"#],
            100.0
        );
        assert_eq!(samples[r#"prom_lab_rpc_latency_count{method="A"}"#], 1.0);
        assert_eq!(samples[r#"prom_lab_rpc_count_total{method="B"}"#], 1.0);
        assert_eq!(samples["prom_lab_calls_x_total"], 0.0);
        drop((calls, lat, plain));
    }

    #[test]
    fn family_names_follow_prometheus_conventions() {
        assert_eq!(family_name("rpc_count", "counter"), "rpc_count_total");
        assert_eq!(family_name("bytes_total", "counter"), "bytes_total");
        assert_eq!(family_name("process_fd_count", "gauge"), "process_fd_num");
        assert_eq!(family_name("a_sum", "gauge"), "a_sum_value");
        assert_eq!(family_name("a_bucket", "gauge"), "a_bucket_value");
        assert_eq!(family_name("rss", "gauge"), "rss");
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
