//! `/connections`: the server's open connections, their traffic, and
//! how many streams each carries.

use std::time::SystemTime;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{Format, Page};
use crate::server::ServerContext;

pub(super) fn serve(shared: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "connections");
    let mut socks: Vec<_> = shared
        .connection_ids()
        .into_iter()
        .filter_map(|id| id.address())
        .collect();
    socks.sort_by_key(|s| s.stats().created);
    let now = SystemTime::now();
    let rows: Vec<Vec<String>> = socks
        .iter()
        .map(|s| {
            let st = s.stats();
            let r = s.rates();
            vec![
                s.remote_side().to_string(),
                protocol_cell(s),
                s.fd().to_string(),
                st.in_bytes.to_string(),
                r.in_bytes.to_string(),
                st.in_messages.to_string(),
                r.in_messages.to_string(),
                st.out_bytes.to_string(),
                r.out_bytes.to_string(),
                st.out_messages.to_string(),
                r.out_messages.to_string(),
                st.out_writes.to_string(),
                crate::protocol::streaming::streams_on(s).to_string(),
                format!("{:?}", s.id()),
                format!(
                    "{}s ago",
                    now.duration_since(st.created).unwrap_or_default().as_secs()
                ),
            ]
        })
        .collect();
    page.line(&format!("{} connections", rows.len()));
    page.table(
        &[
            "remote",
            "protocol",
            "fd",
            "in_bytes",
            "in_bytes/s",
            "in_msg",
            "in_msg/s",
            "out_bytes",
            "out_bytes/s",
            "out_msg",
            "out_msg/s",
            "out_writes",
            "streams",
            "socket_id",
            "created",
        ],
        &rows,
        None,
    );
    page.finish()
}

/// The protocol, and for a TLS connection the negotiated ALPN (bRPC's
/// `/connections` has an SSL column for the same reason).
fn protocol_cell(s: &crate::socket::Socket) -> String {
    if !s.is_tls() {
        return s.protocol_name().to_string();
    }
    match s.alpn() {
        Some(alpn) => format!(
            "{} (TLS, ALPN {})",
            s.protocol_name(),
            String::from_utf8_lossy(alpn)
        ),
        None => format!("{} (TLS)", s.protocol_name()),
    }
}
