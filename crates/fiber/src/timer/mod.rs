//! TEMPORARY stand-in for the timer thread (replaced by the real module).
#![allow(missing_docs)]
use std::collections::{BTreeMap, HashSet};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(u64);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelResult {
    Cancelled,
    Running,
    NotFound,
}
type Job = Box<dyn FnOnce() + Send>;
struct St {
    q: BTreeMap<(Instant, u64), Job>,
    next: u64,
    running: HashSet<u64>,
}
struct T {
    st: Mutex<St>,
    cv: Condvar,
}
fn t() -> &'static T {
    static T_: OnceLock<&'static T> = OnceLock::new();
    T_.get_or_init(|| {
        let t: &'static T = Box::leak(Box::new(T {
            st: Mutex::new(St {
                q: BTreeMap::new(),
                next: 1,
                running: HashSet::new(),
            }),
            cv: Condvar::new(),
        }));
        std::thread::spawn(move || {
            let mut g = t.st.lock().unwrap();
            loop {
                let now = Instant::now();
                if let Some((&(d, id), _)) = g.q.iter().next() {
                    if d <= now {
                        let f = g.q.remove(&(d, id)).unwrap();
                        g.running.insert(id);
                        drop(g);
                        f();
                        g = t.st.lock().unwrap();
                        g.running.remove(&id);
                        continue;
                    }
                    g = t.cv.wait_timeout(g, d - now).unwrap().0;
                } else {
                    g = t.cv.wait(g).unwrap();
                }
            }
        });
        t
    })
}
pub fn add(deadline: Instant, f: impl FnOnce() + Send + 'static) -> TimerId {
    let t = t();
    let mut g = t.st.lock().unwrap();
    let id = g.next;
    g.next += 1;
    g.q.insert((deadline, id), Box::new(f));
    t.cv.notify_one();
    TimerId(id)
}
pub fn add_after(d: Duration, f: impl FnOnce() + Send + 'static) -> TimerId {
    add(Instant::now() + d, f)
}
pub fn cancel(id: TimerId) -> CancelResult {
    let t = t();
    let mut g = t.st.lock().unwrap();
    let k = g.q.keys().find(|k| k.1 == id.0).copied();
    match k {
        Some(k) => {
            g.q.remove(&k);
            CancelResult::Cancelled
        }
        None if g.running.contains(&id.0) => CancelResult::Running,
        None => CancelResult::NotFound,
    }
}
