//! `/flags`: every [`crate::flags`] flag; `/flags/NAME?setvalue=V` sets a
//! reloadable one.

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{query_param, Format, Page};
use crate::server::ServerContext;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, rest: &str) -> Response<IOBuf> {
    if let Some(value) = query_param(req, "setvalue") {
        let value = percent_decode(value);
        return match crate::flags::set(rest, &value) {
            Ok(()) => crate::http::text(StatusCode::OK, format!("Set flag {rest} to {value}\n")),
            Err(e) => crate::http::text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        };
    }
    let mut page = Page::new(Format::of(req), "flags");
    let rows: Vec<Vec<String>> = crate::flags::list()
        .into_iter()
        .filter(|f| rest.is_empty() || f.name == rest)
        .map(|f| {
            vec![
                f.name.to_string(),
                (f.get)(),
                f.default.to_string(),
                if f.set.is_some() { "yes" } else { "no" }.to_string(),
                f.description.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return crate::http::text(StatusCode::NOT_FOUND, format!("no flag named {rest}\n"));
    }
    page.table(
        &["name", "value", "default", "reloadable", "description"],
        &rows,
        Some(&|r| format!("/flags/{}", r[0])),
    );
    page.finish()
}

/// A query value as a form sends it: `+` for spaces, `%XX` escapes.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
