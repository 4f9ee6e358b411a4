//! `/flags`: every [`crate::flags`] flag; `/flags/NAME?setvalue=V` sets a
//! reloadable one when the server allows it
//! ([`ServerOptions::console_flags_writable`](crate::ServerOptions::console_flags_writable))
//! and the request is not cross-site (see [`super::origin`]).

use std::panic::{catch_unwind, AssertUnwindSafe};

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{origin, query_param, Format, Page};
use crate::http::text;
use crate::server::{panic_message, ServerContext};

pub(super) fn serve(ctx: &ServerContext, req: &Request<IOBuf>, rest: &str) -> Response<IOBuf> {
    if let Some(value) = query_param(req, "setvalue") {
        return set(ctx, req, rest, &percent_decode(value));
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
        return text(StatusCode::NOT_FOUND, format!("no flag named {rest}\n"));
    }
    page.table(
        &["name", "value", "default", "reloadable", "description"],
        &rows,
        Some(&|r| format!("/flags/{}", r[0])),
    );
    page.line(if ctx.options().console_flags_writable {
        "Reloadable flags can be set here: /flags/NAME?setvalue=VALUE."
    } else {
        "Read-only: this server does not let the console set flags \
         (ServerOptions::console_flags_writable)."
    });
    page.finish()
}

/// `/flags/NAME?setvalue=V`: 403 unless the server allows it and the
/// request is not cross-site; 404 for an unknown flag; 400 with the
/// setter's reason (the allowed values) for a refused value.
fn set(ctx: &ServerContext, req: &Request<IOBuf>, name: &str, value: &str) -> Response<IOBuf> {
    if !ctx.options().console_flags_writable {
        return text(
            StatusCode::FORBIDDEN,
            "flags are read-only through this console \
             (ServerOptions::console_flags_writable is off); nothing was changed\n",
        );
    }
    if let Some(why) = origin::cross_site(req) {
        return text(
            StatusCode::FORBIDDEN,
            format!("refused a cross-site request to set a flag: {why}; nothing was changed\n"),
        );
    }
    if name.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "name the flag: /flags/NAME?setvalue=VALUE\n",
        );
    }
    let Some(flag) = crate::flags::find(name) else {
        return text(StatusCode::NOT_FOUND, format!("no flag named {name}\n"));
    };
    let Some(setter) = flag.set else {
        return text(StatusCode::FORBIDDEN, format!("{name} is not reloadable\n"));
    };
    // A setter registered by an application might panic on odd text: that
    // fails this request, not the connection's other requests.
    match catch_unwind(AssertUnwindSafe(|| setter(value))) {
        Ok(Ok(())) => text(StatusCode::OK, format!("Set flag {name} to {value}\n")),
        Ok(Err(e)) => text(
            StatusCode::BAD_REQUEST,
            format!("cannot set {name} to {value:?}: {e}\n"),
        ),
        Err(p) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the setter of {name} panicked: {}\n", panic_message(&*p)),
        ),
    }
}

/// A query value as a form sends it: `+` for spaces, `%XX` escapes.
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
