//! `/ids`: the calls of this process waiting for answers (bRPC's `/ids`,
//! which shows its call ids, `bthread_id`s). A fibrpc call waits under a
//! correlation id in the pending table of the connection its attempt
//! went out on (`channel::client_input`), so this page walks the
//! process's client connections and lists each one's table: correlation
//! id, connection, where the request is (queued, being written, sent),
//! how long the attempt has waited and how long it may still wait.
//! A call with a backup request waits on two connections, so it has two
//! rows. `?max=N` shows at most N rows (default 1000).

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::{query_param, Format, Page};
use crate::server::ServerContext;
use crate::socket::Socket;

/// Rows shown unless `?max=` says otherwise.
const DEFAULT_ROWS: usize = 1000;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let max = match query_param(req, "max").map(str::parse::<usize>) {
        None => DEFAULT_ROWS,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return crate::http::text(StatusCode::BAD_REQUEST, "max=N takes a number\n");
        }
    };
    let mut page = Page::new(Format::of(req), "ids");
    let mut rows = Vec::new();
    let (mut total, mut connections) = (0, 0);
    for s in Socket::all() {
        let Some(calls) = s.waiting_calls() else {
            continue;
        };
        connections += 1;
        total += calls.len();
        for row in super::socket::waiting_rows(&calls) {
            if rows.len() >= max {
                break;
            }
            let mut r = vec![
                s.id().as_u64().to_string(),
                s.remote_side().to_string(),
                s.protocol_name().to_string(),
            ];
            r.extend(row);
            rows.push(r);
        }
    }
    page.line(&format!(
        "{total} calls waiting on {connections} client connections{}",
        if rows.len() < total {
            format!(" (the first {} shown; ?max=N for more)", rows.len())
        } else {
            String::new()
        }
    ));
    let mut columns = vec!["socket_id", "remote", "protocol"];
    columns.extend(super::socket::WAITING_COLUMNS);
    page.table(
        &columns,
        &rows,
        Some(&|r: &[String]| format!("/connections/{}", r[0])),
    );
    page.finish()
}
