//! Auto traits of the sync types (the negative cases are `compile_fail`
//! doctests in `sync/mod.rs`).

use fibrpc_fiber::sync::{mpsc, Condvar, CountdownEvent, Mutex, MutexGuard, RwLock, Semaphore};
use fibrpc_fiber::sync::{RwLockReadGuard, RwLockWriteGuard};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn sync<T: Sync>() {}

#[test]
fn auto_traits() {
    send_sync::<Mutex<std::cell::Cell<u8>>>();
    send_sync::<RwLock<Vec<u8>>>();
    send_sync::<Condvar>();
    send_sync::<Semaphore>();
    send_sync::<CountdownEvent>();
    sync::<MutexGuard<'static, u8>>();
    sync::<RwLockReadGuard<'static, u8>>();
    sync::<RwLockWriteGuard<'static, u8>>();
    send_sync::<mpsc::Sender<std::cell::Cell<u8>>>();
    send_sync::<mpsc::SyncSender<std::cell::Cell<u8>>>();
    send::<mpsc::Receiver<std::cell::Cell<u8>>>();
}
