//! The LIFO slot of each worker (see `task_group`'s module docs) and its
//! watchdog.

use super::task_control::{GroupShared, TaskControl};
use super::task_meta::{TaskMeta, TaskRef};
use std::sync::atomic::Ordering;

/// How long a task may wait in the LIFO slot behind the same running fiber
/// before the watchdog hands it to another worker (about what waking an
/// idle worker costs here, so holding it back never loses more than that).
const LIFO_GRACE: std::time::Duration = std::time::Duration::from_micros(50);

impl GroupShared {
    /// Puts `task` in the LIFO slot; returns the previous occupant.
    pub(crate) fn lifo_put(&self, task: TaskRef) -> Option<TaskRef> {
        let prev = self
            .lifo
            .swap(task as *const TaskMeta as *mut TaskMeta, Ordering::AcqRel);
        // SAFETY: the slot only ever holds null or a `TaskRef` ('static).
        unsafe { prev.as_ref() }
    }

    /// Takes the LIFO task, if any (no locked instruction when empty).
    pub(crate) fn lifo_take(&self) -> Option<TaskRef> {
        if self.lifo_is_empty() {
            return None;
        }
        let p = self.lifo.swap(std::ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `lifo_put`.
        unsafe { p.as_ref() }
    }

    /// Takes the LIFO task only if it is `task`.
    pub(crate) fn lifo_take_if(&self, task: TaskRef) -> Option<TaskRef> {
        let p = task as *const TaskMeta as *mut TaskMeta;
        if self.lifo.load(Ordering::Relaxed) != p {
            return None;
        }
        self.lifo
            .compare_exchange(p, std::ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| task)
    }

    /// Whether the LIFO slot looks empty.
    pub(crate) fn lifo_is_empty(&self) -> bool {
        self.lifo.load(Ordering::Relaxed).is_null()
    }
}

/// Arms the LIFO watchdog of worker `g`: after `LIFO_GRACE`, if the task in
/// its LIFO slot is still waiting behind the same running fiber (the
/// worker's switch count has not moved), it is handed to the runtime's
/// shared queues and a worker is woken.
pub(crate) fn arm_watchdog(control: &'static TaskControl, g: &'static GroupShared) {
    let stamp = g.counters.switches_now();
    crate::timer::add_after(LIFO_GRACE, move || {
        g.lifo_watched.store(false, Ordering::Relaxed);
        if g.lifo_is_empty() {
            return;
        }
        if g.counters.switches_now() == stamp {
            // The owner is still inside the fiber that spawned it. The task
            // never ran, so any worker may take it.
            if let Some(t) = g.lifo_take() {
                control.push_remote(t);
            }
        } else if !g.lifo_watched.swap(true, Ordering::Relaxed) {
            // A newer task sits there behind a newer fiber: watch that one.
            arm_watchdog(control, g);
        }
    });
}
