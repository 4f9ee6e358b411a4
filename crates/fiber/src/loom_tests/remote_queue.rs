//! The remote queue delivers every task exactly once, and refuses when full.

use crate::runtime::remote_queue::RemoteQueue;
use loom::sync::Arc;
use loom::thread;

#[test]
fn concurrent_push_pop() {
    super::model(|| {
        let q = Arc::new(RemoteQueue::new(2));
        let producers: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|t| {
                let q = q.clone();
                thread::spawn(move || q.push(t).is_ok())
            })
            .collect();
        let mut seen = Vec::new();
        for _ in 0..2 {
            if let Some(t) = q.pop() {
                seen.push(t);
            }
        }
        for p in producers {
            assert!(p.join().unwrap());
        }
        while let Some(t) = q.pop() {
            seen.push(t);
        }
        seen.sort();
        assert_eq!(seen, [1, 2]);
        // Bounded: a full queue hands the task back.
        assert!(q.push(3).is_ok());
        assert!(q.push(4).is_ok());
        assert_eq!(q.push(5), Err(5));
    });
}
