//! `/status`: the server and each method's counters (bRPC's `/status`).
//! In a browser, each method also gets live sparklines of its qps and
//! latency percentiles: the last minute of the server-side series the
//! bvar sampler keeps for `rpc_server_method_qps{...}`, ... , drawn by
//! the chart code `/vars` uses.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{escape, Format, Page};
use crate::server::ServerContext;

pub(super) fn serve(shared: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "status");
    let max = shared.options().max_concurrency;
    page.pairs(&[
        ("uptime", uptime(shared)),
        ("connections", shared.connection_ids().len().to_string()),
        ("in flight", shared.shared.inflight.sum().to_string()),
        (
            "max concurrency",
            if max == 0 {
                "unlimited".into()
            } else {
                max.to_string()
            },
        ),
        (
            "stopping",
            shared.shared.stopping.load(Ordering::Relaxed).to_string(),
        ),
    ]);
    let mut names: Vec<&&str> = shared.shared.services.keys().collect();
    names.sort_unstable();
    for name in names {
        let entry = &shared.shared.services[*name];
        page.heading(name);
        let rows: Vec<Vec<String>> = entry
            .service
            .method_names()
            .iter()
            .zip(&entry.status)
            .map(|(m, st)| {
                let s = st.snapshot();
                vec![
                    m.to_string(),
                    s.calls.to_string(),
                    s.qps.to_string(),
                    s.errors.to_string(),
                    s.concurrency.to_string(),
                    s.latency_us.to_string(),
                    s.latency_p50_us.to_string(),
                    s.latency_p99_us.to_string(),
                    s.latency_p999_us.to_string(),
                    s.latency_max_us.to_string(),
                ]
            })
            .collect();
        page.table(
            &[
                "method",
                "count",
                "qps",
                "errors",
                "concurrency",
                "latency_us",
                "p50_us",
                "p99_us",
                "p999_us",
                "max_us",
            ],
            &rows,
            None,
        );
        concurrency_limits(&mut page, entry.service.method_names(), &entry.status);
        sparklines(&mut page, entry.service.method_names(), &entry.status);
    }
    page.script(super::assets::CHART_JS);
    page.script(super::assets::STATUS_JS);
    page.finish()
}

/// Each method's concurrency limiter (bRPC's `max_concurrency` line of
/// `/status`): its kind, its limit now (an `auto` limiter's moves) and
/// the requests in the method, which the limit caps.
fn concurrency_limits(page: &mut Page, methods: &[&str], status: &[crate::server::MethodStatus]) {
    let rows: Vec<Vec<String>> = methods
        .iter()
        .zip(status)
        .map(|(m, st)| {
            let max = match st.max_concurrency() {
                0 => "unlimited".to_string(),
                n => n.to_string(),
            };
            vec![
                m.to_string(),
                st.limiter_kind().to_string(),
                max,
                st.concurrency().to_string(),
            ]
        })
        .collect();
    // Text: a blank line ends the counters' table.
    page.text_line("");
    page.table(
        &["method", "limiter", "max_concurrency", "in_flight"],
        &rows,
        None,
    );
}

/// The charted figures: (family, column title).
const CHARTED: [(&str, &str); 3] = [
    ("rpc_server_method_qps", "qps"),
    ("rpc_server_method_latency_50", "p50 µs"),
    ("rpc_server_method_latency_99", "p99 µs"),
];

/// HTML only: a row of `canvas.spark` per exposed method, each naming
/// its variable in `data-var` for `STATUS_JS`.
fn sparklines(page: &mut Page, methods: &[&str], status: &[crate::server::MethodStatus]) {
    let mut html = String::from("<table class=\"sparks\">\n<tr><th>method</th>");
    for (_, title) in CHARTED {
        html.push_str(&format!("<th>{title}, last minute</th>"));
    }
    html.push_str("</tr>\n");
    let mut any = false;
    for (m, st) in methods.iter().zip(status) {
        let Some(_) = st.var_name(CHARTED[0].0) else {
            continue;
        };
        any = true;
        html.push_str(&format!("<tr><td>{}</td>", escape(m)));
        for (family, _) in CHARTED {
            let var = st.var_name(family).unwrap_or_default();
            html.push_str(&format!(
                "<td><canvas class=\"spark\" data-var=\"{}\"></canvas> <span></span></td>",
                escape(&var)
            ));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
    if any {
        page.html(&html);
    }
}

/// How long the server has run, as `1d 2h 3m 4s`.
pub(super) fn uptime(shared: &ServerContext) -> String {
    let s = SystemTime::now()
        .duration_since(shared.shared.started)
        .unwrap_or_default()
        .as_secs();
    let (d, h, m, s) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h {m}m {s}s")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}
