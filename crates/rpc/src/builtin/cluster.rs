//! `/cluster`: every cluster channel of the process (bRPC shows the same
//! per channel on `/connections` and `/vars`): its naming service, load
//! balancer and recovery state, and each server's state, circuit breaker
//! error rates, calls in flight and calls.

use fibrpc_iobuf::IOBuf;
use http::{Request, Response};

use super::{Format, Page};
use crate::channel::cluster::{clusters, ClusterServer, ServerState};
use crate::server::ServerContext;

pub(super) fn serve(_: &ServerContext, req: &Request<IOBuf>, _: &str) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "cluster");
    let all = clusters();
    page.line(&format!("{} cluster channels", all.len()));
    for c in &all {
        page.heading(&c.naming);
        let recover = match c.recover_policy {
            None => "none".to_string(),
            Some(p) => format!(
                "min_working_instances={} hold_seconds={}{}",
                p.min_working_instances,
                p.hold.as_secs(),
                if c.recovering { " (recovering)" } else { "" }
            ),
        };
        page.pairs(&[
            ("load balancer", c.lb.to_string()),
            (
                "circuit breaker",
                if c.circuit_breaker { "on" } else { "off" }.to_string(),
            ),
            ("recover policy", recover),
        ]);
        let rows: Vec<Vec<String>> = c.servers.iter().map(row).collect();
        page.table(
            &[
                "server",
                "tag",
                "state",
                "short_window_errors",
                "long_window_errors",
                "trips",
                "inflight",
                "calls",
                "errors",
            ],
            &rows,
            None,
        );
    }
    page.finish()
}

fn row(s: &ClusterServer) -> Vec<String> {
    let state = match s.state {
        ServerState::Healthy => "healthy".to_string(),
        ServerState::Isolated => "isolated (connection failed)".to_string(),
        ServerState::Tripped { remaining } => {
            format!("tripped (breaker; {} ms left)", remaining.as_millis())
        }
    };
    let (short, long, trips) = match &s.breaker {
        None => ("-".to_string(), "-".to_string(), "-".to_string()),
        Some(b) => (
            format!(
                "{:.1}% of {}%",
                b.short_error_percent, b.short_threshold_percent
            ),
            format!(
                "{:.1}% of {}%",
                b.long_error_percent, b.long_threshold_percent
            ),
            b.trips.to_string(),
        ),
    };
    vec![
        s.node.addr.to_string(),
        s.node.tag.clone(),
        state,
        short,
        long,
        trips,
        s.inflight.to_string(),
        s.calls.to_string(),
        s.errors.to_string(),
    ]
}
