//! The runtime logs through `tracing`: a blocked worker is one `WARN`
//! event naming the worker and the fiber. A subscriber installed as the
//! global default (the report comes from the monitor thread) records every
//! event.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use fibrpc_fiber as fiber;
use tracing::Level;

/// One recorded event: its level, target and fields (`message` included).
#[derive(Clone, Debug)]
struct Captured {
    level: Level,
    target: &'static str,
    fields: common::Fields,
}

static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

fn reports_of(name: &str) -> Vec<Captured> {
    EVENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|e| e.fields.get("fiber_name") == Some(name))
        .cloned()
        .collect()
}

#[test]
fn a_blocked_worker_is_a_warn_event() {
    common::on_event(|m, fields| {
        EVENTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Captured {
                level: *m.level(),
                target: m.target(),
                fields,
            });
    })
    .expect("the only global subscriber of this test binary");
    let rt = fiber::Runtime::builder()
        .workers(1)
        .blocked_worker_threshold(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    const NAME: &str = "blocks_with_std_sleep";
    // The fiber blocks its worker (std sleeps, never switching out) until
    // the report naming it is recorded, so the monitor's sampling period
    // on a loaded machine does not matter.
    let h = fiber::Builder::new()
        .name(NAME)
        .spawn_on(&rt, || {
            let t0 = Instant::now();
            while reports_of(NAME).is_empty() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .unwrap();
    h.join().unwrap();
    let reports = reports_of(NAME);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let e = &reports[0];
    assert_eq!(e.level, Level::WARN, "{e:#?}");
    assert_eq!(e.target, "fibrpc_fiber::runtime::blocked", "{e:#?}");
    assert_eq!(e.fields.get("worker"), Some("0"), "{e:#?}");
    let ms: u64 = e.fields.get("blocked_ms").unwrap().parse().unwrap();
    assert!(ms >= 50, "{e:#?}");
    assert!(
        e.fields
            .get("spawned_at")
            .is_some_and(|at| at.contains("logging.rs")),
        "{e:#?}"
    );
    assert!(
        e.fields
            .get("message")
            .is_some_and(|m| m.starts_with("worker blocked")),
        "{e:#?}"
    );
}
