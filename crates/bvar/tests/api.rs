//! The surface the fibrpc crate uses, from outside the crate, with the real
//! sampler thread (unit tests tick by hand and never start it).

use std::time::{Duration, Instant};

use fibrpc_bvar::{
    registry, Adder, IntRecorder, LatencyRecorder, Maxer, Miner, PassiveStatus, PerSecond, Status,
    Value, Variable, Window,
};

/// Polls `f` for up to 10 s (the sampler ticks once a second).
fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn consumer_surface_with_the_sampler_thread() {
    let requests = Adder::new_exposed("api_test_requests").unwrap();
    let errors = Adder::new();
    errors.expose("api_test_errors").unwrap();
    assert!(matches!(
        errors.expose("api_test_requests"),
        Err(fibrpc_bvar::ExposeError::Duplicate(_))
    ));
    let rate = PerSecond::new(&requests, 60);
    rate.expose("api_test_requests_second").unwrap();
    let window = Window::new(&requests, 60);

    let rec = LatencyRecorder::new();
    rec.expose("api_test_echo").unwrap();
    let (max, min, avg) = (Maxer::new(), Miner::new(), IntRecorder::new());
    let status = Status::new(String::from("up"));
    status.set("serving".into());
    status.expose("api_test_status").unwrap();
    let passive = PassiveStatus::new(|| Value::Int(7));
    passive.expose("api_test_passive").unwrap();

    for i in 0..100 {
        requests.add(1);
        rec.record(100 + i);
        max.update(i);
        min.update(i);
        avg.record(i);
    }
    assert_eq!((requests.get_value(), rec.count()), (100, 100));
    assert_eq!(
        (max.get_value(), min.get_value(), avg.average()),
        (99, 0, 49.5)
    );

    // The sampler thread fills windows and series on its own.
    eventually("the latency window", || rec.qps() > 0);
    eventually("the adder window", || window.get_value() == 100);
    assert!(rate.get_value() > 0);
    assert!((100..=200).contains(&rec.latency()));
    assert_eq!(rec.max_latency(), 199);
    let p99 = rec.latency_percentile(0.99);
    assert!((196..=202).contains(&p99), "p99 {p99}");
    eventually("a series point", || {
        registry::series_json("api_test_requests")
            .unwrap()
            .contains("[0,")
    });

    let names = registry::list();
    assert!(names.contains(&"api_test_echo_latency_9999".to_owned()));
    assert_eq!(
        registry::describe("api_test_status").as_deref(),
        Some("serving")
    );
    let (mut seen, mut order) = (Vec::new(), Vec::new());
    registry::dump("api_test_*", |name, desc| {
        seen.push(format!("{name}: {desc}"));
        order.push(name.to_owned());
    });
    assert!(order.windows(2).all(|w| w[0] < w[1]), "sorted: {order:?}");
    assert!(seen.contains(&"api_test_passive: 7".to_owned()));
    let mut prom = String::new();
    registry::dump_prometheus(&mut prom);
    assert!(prom.contains("# TYPE api_test_requests_total counter\napi_test_requests_total 100\n"));
    assert!(prom.contains("api_test_echo_latency{quantile=\"0.99\"}"));

    // Custom variables through the trait.
    struct Fixed;
    impl Variable for Fixed {
        fn value(&self) -> Value {
            Value::Float(0.5)
        }
    }
    let fixed: std::sync::Arc<dyn Variable> = std::sync::Arc::new(Fixed);
    registry::expose("api_test_fixed", std::sync::Arc::downgrade(&fixed)).unwrap();
    assert_eq!(registry::describe("api_test_fixed").as_deref(), Some("0.5"));

    drop((requests, rate, window, rec));
    assert!(registry::list()
        .iter()
        .all(|n| !n.starts_with("api_test_echo") && n != "api_test_requests"));
    fibrpc_bvar::expose_process_vars().unwrap();
    assert!(registry::describe("process_fd_count").is_some());
}
