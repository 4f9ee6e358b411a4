//! `/connections`: the server's open connections, their traffic, and
//! how many streams each carries; then the process's other connections
//! (channels' and other servers'). Each row links to
//! `/connections/ID`, one connection's page (bRPC's `/sockets/ID`,
//! `socket.rs`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{Format, Page};
use crate::server::ServerContext;
use crate::socket::Socket;

/// The columns of both tables; the last one differs (see [`row`]).
const COLUMNS: [&str; 16] = [
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
    "age",
    "",
];

/// Where the id sits in a row, for its link.
const ID_COLUMN: usize = 13;

pub(super) fn serve(shared: &ServerContext, req: &Request<IOBuf>, rest: &str) -> Response<IOBuf> {
    if !rest.is_empty() {
        return super::socket::serve(shared, req, rest);
    }
    let mut page = Page::new(Format::of(req), "connections");
    let mine: Vec<Arc<Socket>> = sorted(
        shared
            .connection_ids()
            .into_iter()
            .filter_map(|id| id.address())
            .collect(),
    );
    let now = SystemTime::now();
    let link = |r: &[String]| format!("/connections/{}", r[ID_COLUMN]);
    let rows: Vec<Vec<String>> = mine
        .iter()
        .map(|s| row(s, now, s.messages_in_process().to_string()))
        .collect();
    page.line(&format!("{} connections", rows.len()));
    let mut columns = COLUMNS;
    columns[COLUMNS.len() - 1] = "in_process";
    page.table(&columns, &rows, Some(&link));

    let mine_ids: HashSet<_> = mine.iter().map(|s| s.id()).collect();
    let others: Vec<Arc<Socket>> = sorted(
        Socket::all()
            .into_iter()
            .filter(|s| !mine_ids.contains(&s.id()))
            .collect(),
    );
    page.heading("other connections of this process (channels, other servers)");
    let rows: Vec<Vec<String>> = others
        .iter()
        .map(|s| {
            let waiting = s
                .waiting_calls()
                .map_or_else(|| "-".to_string(), |c| c.len().to_string());
            row(s, now, waiting)
        })
        .collect();
    page.line(&format!("{} connections", rows.len()));
    columns[COLUMNS.len() - 1] = "waiting_calls";
    page.table(&columns, &rows, Some(&link));
    page.finish()
}

fn sorted(mut socks: Vec<Arc<Socket>>) -> Vec<Arc<Socket>> {
    socks.sort_by_key(|s| s.stats().created);
    socks
}

/// One connection's cells, `last` in the last column.
fn row(s: &Socket, now: SystemTime, last: String) -> Vec<String> {
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
        s.id().as_u64().to_string(),
        format!(
            "{}s",
            now.duration_since(st.created).unwrap_or_default().as_secs()
        ),
        last,
    ]
}

/// The protocol, and for a TLS connection the negotiated ALPN (bRPC's
/// `/connections` has an SSL column for the same reason).
pub(super) fn protocol_cell(s: &Socket) -> String {
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
