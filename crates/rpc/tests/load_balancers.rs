//! The load balancers through the public API: distribution, exclusion,
//! empty lists, latency awareness, consistent hashing, and picks during
//! list changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fibrpc::channel::lb::{
    load_balancer_by_name, murmur_hash32, LoadBalancer, ServerEntry, LOAD_BALANCER_NAMES,
};
use fibrpc::channel::{AttemptOutcome, SelectInput};

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16))
}

fn index(a: SocketAddr) -> usize {
    (a.port() - 20000) as usize
}

/// Servers `range`, each with weight `i + 1` in its tag (which only
/// `wrr` reads).
fn servers(range: std::ops::Range<usize>) -> Vec<ServerEntry> {
    range
        .map(|i| ServerEntry::new(addr(i), (i + 1).to_string()))
        .collect()
}

fn lb(name: &str) -> Box<dyn LoadBalancer> {
    load_balancer_by_name(name).unwrap()
}

fn code(key: usize) -> Option<u64> {
    Some(u64::from(murmur_hash32(&key.to_le_bytes())))
}

fn counts(lb: &dyn LoadBalancer, n: usize, picks: usize) -> Vec<usize> {
    let mut counts = vec![0; n];
    for _ in 0..picks {
        counts[index(lb.select(&SelectInput::new(&[], None)).unwrap())] += 1;
    }
    counts
}

#[test]
fn rr_is_even() {
    let lb = lb("rr");
    lb.reset(&servers(0..5));
    assert_eq!(counts(&*lb, 5, 10_000), vec![2_000; 5]);
}

#[test]
fn wrr_follows_weights_within_5_percent() {
    let lb = lb("wrr");
    assert_eq!(lb.reset(&servers(0..4)), 4); // weights 1, 2, 3, 4
    for (i, c) in counts(&*lb, 4, 10_000).into_iter().enumerate() {
        let expected = 1_000.0 * (i + 1) as f64;
        assert!((c as f64 - expected).abs() <= expected * 0.05, "{i}: {c}");
    }
}

#[test]
fn random_is_roughly_even() {
    let lb = lb("random");
    lb.reset(&servers(0..5));
    for c in counts(&*lb, 5, 10_000) {
        assert!((1_700..=2_300).contains(&c), "{c}");
    }
}

#[test]
fn every_balancer_honors_excluded() {
    for name in LOAD_BALANCER_NAMES {
        let lb = lb(name);
        lb.reset(&servers(0..4));
        let excluded = [addr(0), addr(2), addr(3)];
        for key in 0..200 {
            let a = lb.select(&SelectInput::new(&excluded, code(key))).unwrap();
            assert_eq!(a, addr(1), "{name}");
            lb.feedback(&AttemptOutcome::new(a, None, Duration::from_millis(1)));
        }
        // All excluded: a server is still chosen (the retry goes somewhere).
        let all = [addr(0), addr(1), addr(2), addr(3)];
        let a = lb.select(&SelectInput::new(&all, code(1))).unwrap();
        assert!(all.contains(&a), "{name}");
    }
}

#[test]
fn empty_list_is_enodata() {
    for name in LOAD_BALANCER_NAMES {
        let lb = lb(name);
        let e = lb.select(&SelectInput::new(&[], code(1))).unwrap_err();
        assert_eq!(e.code, libc::ENODATA, "{name}: {e}");
        assert!(e.text.contains(name), "{e}");
    }
}

#[test]
fn la_moves_traffic_off_a_slow_server() {
    let lb = lb("la");
    lb.reset(&servers(0..2));
    let mut slow_picks = 0;
    for round in 0..12_000 {
        let a = lb.select(&SelectInput::new(&[], None)).unwrap();
        let ms = if a == addr(1) { 200 } else { 1 };
        if round >= 2_000 && a == addr(1) {
            slow_picks += 1;
        }
        lb.feedback(&AttemptOutcome::new(a, None, Duration::from_millis(ms)));
    }
    assert!(slow_picks < 1_000, "slow server took {slow_picks} of 10000");
}

#[test]
fn consistent_hashing_moves_only_the_removed_servers_keys() {
    for name in ["c_murmurhash", "c_md5"] {
        let lb = lb(name);
        lb.reset(&servers(0..10));
        let pick = |key| lb.select(&SelectInput::new(&[], code(key))).unwrap();
        let before: Vec<_> = (0..10_000).map(pick).collect();
        // The same key, the same server, every time.
        assert!((0..10_000).all(|k| pick(k) == before[k]), "{name}");
        lb.reset(&servers(1..10));
        let after: Vec<_> = (0..10_000).map(pick).collect();
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!((500..=1_500).contains(&moved), "{name}: {moved}");
        assert!(before
            .iter()
            .zip(&after)
            .all(|(b, a)| b == a || *b == addr(0)));
    }
}

#[test]
fn picks_during_list_changes_come_from_some_list() {
    // Two lists alternate (and an empty one now and then); every pick is a
    // member of one of them or the empty list's ENODATA.
    let lists = [servers(0..8), servers(4..12), Vec::new()];
    for name in LOAD_BALANCER_NAMES {
        let lb = lb(name);
        lb.reset(&lists[0]);
        let stop = AtomicBool::new(false);
        let deadline = Instant::now() + Duration::from_secs(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                for round in 0..2_000 {
                    lb.reset(&lists[round % 3]);
                    if Instant::now() > deadline {
                        break;
                    }
                }
                lb.reset(&lists[0]);
                stop.store(true, Ordering::Release);
            });
            for t in 0..2 {
                let (lb, stop) = (&lb, &stop);
                s.spawn(move || {
                    let mut picks = 0usize;
                    while !stop.load(Ordering::Acquire) && picks < 1_000_000 {
                        let excluded = [addr(picks % 12)];
                        match lb.select(&SelectInput::new(&excluded, code(picks + t))) {
                            Ok(a) => {
                                assert!(index(a) < 12, "{name}: {a}");
                                lb.feedback(&AttemptOutcome::new(
                                    a,
                                    None,
                                    Duration::from_micros(50),
                                ));
                            }
                            Err(e) => assert_eq!(e.code, libc::ENODATA, "{name}: {e}"),
                        }
                        picks += 1;
                    }
                });
            }
        });
        // After the changes the balancer picks from the final list.
        for key in 0..100 {
            let a = lb.select(&SelectInput::new(&[], code(key))).unwrap();
            assert!(index(a) < 8, "{name}: {a}");
        }
    }
}
