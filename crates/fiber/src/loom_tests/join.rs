//! The join handshake: the result is stored, then the version is bumped and
//! joiners woken; a joiner that sees the bump finds the result.

use crate::butex::Butex;
use crate::task::packet::{Packet, ResultSlot, Runnable};
use loom::sync::Arc;
use loom::thread;
use std::sync::atomic::Ordering;

#[test]
fn joiner_sees_result_after_version_bump() {
    super::model(|| {
        let version = Arc::new(Butex::new(1));
        let packet = std::sync::Arc::new(Packet::new(|| 42u32));
        let entry: std::sync::Arc<dyn Runnable> = packet.clone();
        let slot: std::sync::Arc<dyn ResultSlot<u32>> = packet;
        let v = version.clone();
        let fiber = thread::spawn(move || {
            entry.run();
            v.value().store(2, Ordering::Release);
            v.wake_all();
        });
        while version.value().load(Ordering::Acquire) == 1 {
            let _ = version.wait(1, None);
        }
        assert_eq!(slot.take().unwrap().unwrap(), 42);
        fiber.join().unwrap();
    });
}
