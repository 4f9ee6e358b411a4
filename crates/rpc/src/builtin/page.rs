//! Pages in two formats: aligned plain text for curl (like bRPC) and HTML
//! for browsers (`Accept: text/html`), built from the same calls.

use std::fmt::Write as _;

use fibrpc_iobuf::IOBuf;
use http::header::ACCEPT;
use http::{Request, Response, StatusCode};

/// Which format a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Html,
}

impl Format {
    /// HTML when the client accepts it (browsers), text otherwise (curl);
    /// `?format=text` / `?format=html` override.
    pub(crate) fn of(req: &Request<IOBuf>) -> Format {
        match query_param(req, "format") {
            Some("text") => return Format::Text,
            Some("html") => return Format::Html,
            _ => {}
        }
        let html = req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if html {
            Format::Html
        } else {
            Format::Text
        }
    }
}

/// The value of `name` in the query string (`?name=value&...`); an
/// empty string for a bare `?name`.
pub(crate) fn query_param<'a>(req: &'a Request<IOBuf>, name: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// Makes the link of a table row from its cells.
pub(crate) type RowLink<'a> = dyn Fn(&[String]) -> String + 'a;

/// A page being written.
pub(crate) struct Page {
    format: Format,
    title: String,
    body: String,
    scripts: Vec<&'static str>,
}

impl Page {
    pub(crate) fn new(format: Format, title: impl Into<String>) -> Page {
        Page {
            format,
            title: title.into(),
            body: String::new(),
            scripts: Vec::new(),
        }
    }

    /// A section heading.
    pub(crate) fn heading(&mut self, text: &str) {
        match self.format {
            Format::Text => {
                if !self.body.is_empty() {
                    self.body.push('\n');
                }
                let _ = writeln!(self.body, "[{text}]");
            }
            Format::Html => {
                let _ = writeln!(self.body, "<h2>{}</h2>", escape(text));
            }
        }
    }

    /// A line of text.
    pub(crate) fn line(&mut self, text: &str) {
        match self.format {
            Format::Text => {
                let _ = writeln!(self.body, "{text}");
            }
            Format::Html => {
                let _ = writeln!(self.body, "<p>{}</p>", escape(text));
            }
        }
    }

    /// `name : value` pairs.
    pub(crate) fn pairs(&mut self, pairs: &[(&str, String)]) {
        match self.format {
            Format::Text => {
                let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                for (k, v) in pairs {
                    let _ = writeln!(self.body, "{k:<w$} : {v}");
                }
            }
            Format::Html => {
                self.body.push_str("<table class=\"kv\">\n");
                for (k, v) in pairs {
                    let _ = writeln!(
                        self.body,
                        "<tr><th>{}</th><td>{}</td></tr>",
                        escape(k),
                        escape(v)
                    );
                }
                self.body.push_str("</table>\n");
            }
        }
    }

    /// A table; in HTML, cells of the first column link to `link(row)`
    /// when given.
    pub(crate) fn table(
        &mut self,
        headers: &[&str],
        rows: &[Vec<String>],
        link: Option<&RowLink<'_>>,
    ) {
        match self.format {
            Format::Text => {
                let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
                for r in rows {
                    for (i, c) in r.iter().enumerate() {
                        if i < widths.len() {
                            widths[i] = widths[i].max(c.len());
                        }
                    }
                }
                let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
                    let mut l = String::new();
                    for (i, c) in cells.enumerate() {
                        let w = widths.get(i).copied().unwrap_or(0);
                        let _ = write!(l, "{c:<w$}  ");
                    }
                    let _ = writeln!(out, "{}", l.trim_end());
                };
                line(&mut headers.iter().copied(), &mut self.body);
                for r in rows {
                    line(&mut r.iter().map(String::as_str), &mut self.body);
                }
            }
            Format::Html => {
                self.body.push_str("<table class=\"grid\">\n<tr>");
                for h in headers {
                    let _ = write!(self.body, "<th>{}</th>", escape(h));
                }
                self.body.push_str("</tr>\n");
                for r in rows {
                    self.body.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        match (i, link) {
                            (0, Some(link)) => {
                                let _ = write!(
                                    self.body,
                                    "<td><a href=\"{}\">{}</a></td>",
                                    escape(&link(r)),
                                    escape(c)
                                );
                            }
                            _ => {
                                let _ = write!(self.body, "<td>{}</td>", escape(c));
                            }
                        }
                    }
                    self.body.push_str("</tr>\n");
                }
                self.body.push_str("</table>\n");
            }
        }
    }

    /// Text only: a line (ignored in HTML, which says it with markup).
    pub(crate) fn text_line(&mut self, text: &str) {
        if self.format == Format::Text {
            let _ = writeln!(self.body, "{text}");
        }
    }

    /// HTML only: raw markup (ignored in text).
    pub(crate) fn html(&mut self, markup: &str) {
        if self.format == Format::Html {
            self.body.push_str(markup);
        }
    }

    /// HTML only: a script served from the binary, included once.
    pub(crate) fn script(&mut self, js: &'static str) {
        if !self.scripts.contains(&js) {
            self.scripts.push(js);
        }
    }

    /// The finished page.
    pub(crate) fn finish(self) -> Response<IOBuf> {
        match self.format {
            Format::Text => crate::http::text(StatusCode::OK, self.body),
            Format::Html => {
                let mut html = String::with_capacity(self.body.len() + 4096);
                let _ = write!(
                    html,
                    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
                     <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                     <title>{title} - fibrpc</title><style>{css}</style></head>\n<body>\n\
                     <nav>{nav}</nav>\n<main>\n<h1>{title}</h1>\n{body}</main>\n",
                    title = escape(&self.title),
                    css = super::assets::CSS,
                    nav = super::nav_html(),
                    body = self.body,
                );
                for js in &self.scripts {
                    let _ = writeln!(html, "<script>{js}</script>");
                }
                html.push_str("</body></html>\n");
                crate::http::response(StatusCode::OK, "text/html; charset=utf-8", html)
            }
        }
    }
}

/// Escapes text for HTML.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
