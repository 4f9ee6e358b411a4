//! `/vars`: every exposed bvar (bRPC's `/vars`). `/vars/NAME` (or a
//! pattern with `*`) shows the matching ones; `/vars/NAME?series` is the
//! history as JSON for charts (a labeled name such as
//! `rpc_server_method_qps{port="8000",service="S",method="M"}` is a name
//! like any other, percent-encoded in the path). In a browser, a click on a numeric
//! variable opens a live chart of its history (`?open=NAME` opens it at
//! load).

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{escape, query_param, Format, Page};
use crate::server::ServerContext;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, rest: &str) -> Response<IOBuf> {
    // Labeled names (`f{k="v"}`) arrive percent-encoded.
    let rest = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
    let rest: &str = &rest;
    if query_param(req, "series").is_some() {
        return match fibrpc_bvar::registry::series_json(rest) {
            Some(json) => crate::http::response(StatusCode::OK, "application/json", json),
            None => crate::http::text(StatusCode::NOT_FOUND, format!("no numeric var {rest}\n")),
        };
    }
    let filter = query_param(req, "filter").unwrap_or(rest);
    let mut vars = Vec::new();
    // A labeled name holds commas, which a filter reads as a list of
    // patterns: an exact name is looked up as itself first.
    match fibrpc_bvar::registry::describe(filter) {
        Some(desc) => vars.push((filter.to_string(), desc)),
        None => fibrpc_bvar::registry::dump(filter, |name, desc| {
            vars.push((name.to_string(), desc.to_string()))
        }),
    }
    if vars.is_empty() && !filter.is_empty() {
        return crate::http::text(StatusCode::NOT_FOUND, format!("no var matches {filter}\n"));
    }
    let format = Format::of(req);
    if format == Format::Text {
        let mut out = String::new();
        for (n, d) in &vars {
            out.push_str(n);
            out.push_str(" : ");
            out.push_str(d);
            out.push('\n');
        }
        return crate::http::text(StatusCode::OK, out);
    }
    let mut page = Page::new(format, "vars");
    page.html(
        "<p class=\"hint\">Click a numeric variable for its history (last 60 s, \
         60 min, 24 h, 30 days; refreshed every second).</p>\n\
         <input type=\"search\" id=\"filter\" placeholder=\"filter, e.g. qps\">\n\
         <table class=\"grid vars\">\n<tr><th>name</th><th>value</th></tr>\n",
    );
    let open = percent_encoding::percent_decode_str(query_param(req, "open").unwrap_or(""))
        .decode_utf8_lossy()
        .into_owned();
    for (n, d) in &vars {
        let numeric = d.trim().parse::<f64>().is_ok();
        page.html(&format!(
            "<tr class=\"{cls}\" data-name=\"{n}\"{open}><td>{n}</td><td>{d}</td></tr>\n",
            cls = if numeric { "var" } else { "text" },
            n = escape(n),
            d = escape(d),
            open = if numeric && (open == *n || open.split(',').any(|o| o == n)) {
                " data-open=\"1\""
            } else {
                ""
            },
        ));
    }
    page.html("</table>\n");
    page.script(super::assets::CHART_JS);
    page.script(super::assets::VARS_JS);
    page.finish()
}
