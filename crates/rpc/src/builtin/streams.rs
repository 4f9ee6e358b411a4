//! `/streams`: the process's open streams (bRPC's streaming RPC), their
//! peers, windows and counters.

use std::time::SystemTime;

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{Format, Page};
use crate::protocol::streaming::open_streams;
use crate::server::ServerContext;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "streams");
    let now = SystemTime::now();
    let rows: Vec<Vec<String>> = open_streams()
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.remote_id.to_string(),
                s.remote_side.map_or("-".into(), |a| a.to_string()),
                if s.connected { "connected" } else { "opening" }.to_string(),
                s.max_buf_size.to_string(),
                s.stats.messages_out.to_string(),
                s.stats.produced.to_string(),
                s.stats.remote_consumed.to_string(),
                s.stats.messages_in.to_string(),
                s.stats.received.to_string(),
                s.stats.unconsumed.to_string(),
                format!(
                    "{}s ago",
                    now.duration_since(s.created).unwrap_or_default().as_secs()
                ),
            ]
        })
        .collect();
    page.line(&format!("{} streams", rows.len()));
    page.table(
        &[
            "id",
            "remote_id",
            "remote",
            "state",
            "max_buf_size",
            "out_msg",
            "out_bytes",
            "peer_consumed",
            "in_msg",
            "in_bytes",
            "unconsumed",
            "created",
        ],
        &rows,
        None,
    );
    page.finish()
}
