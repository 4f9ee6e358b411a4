//! `/connections/ID`: one connection of the process (bRPC's
//! `/sockets/ID`): addresses, protocol, state, traffic, what is queued,
//! what is in process, TLS, who the peer authenticated as, and the calls
//! waiting for answers on it. `ID` is the `socket_id` of `/connections`
//! and `/ids`; an id that names no live connection (closed, or never
//! was) is a 404.

use std::time::{Duration, SystemTime};

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{Format, Page};
use crate::server::ServerContext;
use crate::socket::{Socket, SocketId, WaitingCall};

pub(super) fn serve(shared: &ServerContext, req: &Request<IOBuf>, id: &str) -> Response<IOBuf> {
    let Ok(raw) = id.parse::<u64>() else {
        return crate::http::text(
            StatusCode::BAD_REQUEST,
            "a connection id is a number (the socket_id column of /connections)\n",
        );
    };
    let Some(s) = SocketId::from_u64(raw).address() else {
        return crate::http::text(
            StatusCode::NOT_FOUND,
            format!("no connection {raw}: it closed, or never was\n"),
        );
    };
    let mut page = Page::new(Format::of(req), format!("connection {raw}"));
    page.pairs(&pairs(shared, &s));
    page.text_line(&format!(
        "traced calls of this connection: /rpcz?peer={}",
        s.remote_side()
    ));
    page.html(&format!(
        "<p><a href=\"/rpcz?peer={}\">its traced calls</a> · \
         <a href=\"/connections\">all connections</a> · \
         <a href=\"/ids\">all waiting calls</a></p>\n",
        super::escape(&s.remote_side().to_string())
    ));
    let details = s.protocol_details();
    if !details.is_empty() {
        page.heading("protocol state");
        page.pairs(&details);
    }
    page.heading("calls waiting for answers");
    match s.waiting_calls() {
        None => page.line("none: a server's connection makes no calls"),
        Some(calls) => {
            page.line(&format!("{} calls", calls.len()));
            page.table(&WAITING_COLUMNS, &waiting_rows(&calls), None);
        }
    }
    page.finish()
}

/// The columns of [`waiting_rows`].
pub(super) const WAITING_COLUMNS: [&str; 4] =
    ["correlation_id", "state", "age_ms", "deadline_in_ms"];

/// One row per waiting call.
pub(super) fn waiting_rows(calls: &[WaitingCall]) -> Vec<Vec<String>> {
    calls
        .iter()
        .map(|c| {
            vec![
                c.correlation_id.to_string(),
                c.state.to_string(),
                c.age.as_millis().to_string(),
                c.deadline_in
                    .map_or_else(|| "-".to_string(), |d| d.as_millis().to_string()),
            ]
        })
        .collect()
}

fn pairs(shared: &ServerContext, s: &Socket) -> Vec<(&'static str, String)> {
    let st = s.stats();
    let r = s.rates();
    let side = if shared.connection_ids().contains(&s.id()) {
        "accepted by this server"
    } else if s.waiting_calls().is_some() {
        "made by a channel of this process"
    } else {
        "accepted by another server of this process"
    };
    let mut v = vec![
        ("socket_id", s.id().as_u64().to_string()),
        ("side", side.to_string()),
        ("fd", s.fd().to_string()),
        ("remote", s.remote_side().to_string()),
        ("local", s.local_side().to_string()),
        ("protocol", s.protocol_name().to_string()),
        ("state", state(s)),
        ("created", when(st.created)),
        ("last active", format!("{} ago", ms(s.idle_for()))),
        ("in_bytes", st.in_bytes.to_string()),
        ("in_messages", st.in_messages.to_string()),
        ("out_bytes", st.out_bytes.to_string()),
        ("out_messages", st.out_messages.to_string()),
        ("out_writes", st.out_writes.to_string()),
        (
            "rates (last second)",
            format!(
                "in {} B/s, {} msg/s; out {} B/s, {} msg/s",
                r.in_bytes, r.in_messages, r.out_bytes, r.out_messages
            ),
        ),
        (
            "unwritten_bytes",
            format!(
                "{} (writes fail past {})",
                s.unwritten_bytes(),
                s.max_unwritten_bytes()
            ),
        ),
        (
            "messages in process",
            format!(
                "{} (the reader waits at {})",
                s.messages_in_process(),
                s.max_requests()
            ),
        ),
        (
            "streams",
            crate::protocol::streaming::streams_on(s).to_string(),
        ),
        ("tls", tls(s)),
    ];
    let auth = match s.auth_context() {
        Some(a) => format!(
            "user {:?}, group {:?}, roles {:?}{}",
            a.user,
            a.group,
            a.roles,
            if a.is_service { ", a service" } else { "" }
        ),
        None => "-".to_string(),
    };
    v.push(("authenticated as", auth));
    v
}

fn state(s: &Socket) -> String {
    if s.failed() {
        let why = s.error().map(|e| e.text).unwrap_or_default();
        return format!("failed: {why}");
    }
    let mut st = String::from("connected");
    if s.is_logoff() {
        st.push_str(", logoff (takes no new call)");
    }
    if s.input_closed() {
        st.push_str(", input closed (closes after its last answer)");
    }
    st
}

fn tls(s: &Socket) -> String {
    if !s.is_tls() {
        return "no".to_string();
    }
    let mut parts = Vec::new();
    match s.tls_parameters() {
        Some((version, suite)) => parts.push(format!("{version}, {suite}")),
        None => parts.push("handshaking".to_string()),
    }
    if let Some(alpn) = s.alpn() {
        parts.push(format!("ALPN {}", String::from_utf8_lossy(alpn)));
    }
    if let Some(subject) = s.peer_certificate_subject() {
        parts.push(format!("peer certificate {subject}"));
    }
    parts.join("; ")
}

/// A wall-clock time and how long ago it was.
fn when(t: SystemTime) -> String {
    let ago = SystemTime::now().duration_since(t).unwrap_or_default();
    format!("{} ({} ago)", httpdate::fmt_http_date(t), ms(ago))
}

/// A duration for people: `850 ms`, `12.3 s`.
fn ms(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}
