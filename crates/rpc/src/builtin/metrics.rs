//! `/metrics`: every numeric bvar in the Prometheus text exposition format
//! (0.0.4), for a Prometheus server to scrape.

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use crate::server::ServerContext;

pub(super) fn serve(_: &ServerContext, _: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let mut out = String::new();
    fibrpc_bvar::registry::dump_prometheus(&mut out);
    crate::http::response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out,
    )
}
