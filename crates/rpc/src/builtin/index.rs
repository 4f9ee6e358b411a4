//! `/`: what this server is and links to every page.

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{Format, Page, PAGES};
use crate::server::ServerContext;

pub(super) fn serve(shared: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "fibrpc server");
    let mut services: Vec<&str> = shared.shared.services.keys().copied().collect();
    services.sort_unstable();
    page.pairs(&[
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        ("services", services.join(", ")),
        ("uptime", super::status::uptime(shared)),
    ]);
    page.heading("pages");
    let rows: Vec<Vec<String>> = PAGES
        .iter()
        .map(|p| vec![p.path.to_string(), p.about.to_string()])
        .collect();
    page.table(&["path", "what"], &rows, Some(&|r| r[0].clone()));
    page.finish()
}
