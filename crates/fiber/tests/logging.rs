//! The runtime logs through `tracing`: a blocked worker is one `WARN`
//! event naming the worker and the fiber. A minimal `tracing::Subscriber`,
//! installed as the global default (the report comes from the monitor
//! thread), records every event.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fibrpc_fiber as fiber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event: its level, target and fields (`message` included).
#[derive(Clone, Debug)]
struct Captured {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

static EVENTS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());

/// Records every event in [`EVENTS`]; spans are ignored.
struct Capture {
    next_span: AtomicU64,
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        EVENTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Captured {
                level: *event.metadata().level(),
                target: event.metadata().target().to_string(),
                fields: fields.0,
            });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn reports_of(name: &str) -> Vec<Captured> {
    EVENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|e| e.field("fiber_name") == Some(name))
        .cloned()
        .collect()
}

#[test]
fn a_blocked_worker_is_a_warn_event() {
    tracing::subscriber::set_global_default(Capture {
        next_span: AtomicU64::new(1),
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
    assert_eq!(e.field("worker"), Some("0"), "{e:#?}");
    let ms: u64 = e.field("blocked_ms").unwrap().parse().unwrap();
    assert!(ms >= 50, "{e:#?}");
    assert!(
        e.field("spawned_at")
            .is_some_and(|at| at.contains("logging.rs")),
        "{e:#?}"
    );
    assert!(
        e.field("message")
            .is_some_and(|m| m.starts_with("worker blocked")),
        "{e:#?}"
    );
}
