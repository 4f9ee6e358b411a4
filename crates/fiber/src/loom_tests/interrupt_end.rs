//! An interrupt by id racing the end of that fiber (`interrupt_task`
//! against `TaskMeta::end_version`): whichever comes first, the slot's
//! `interrupted` flag is clear once both are done, so the slot's next
//! fiber does not start out interrupted.

use crate::runtime::task_meta::{TaskMeta, TaskRef};
use loom::thread;
use std::sync::atomic::Ordering;

#[test]
fn loom_an_interrupt_racing_the_end_leaves_no_flag() {
    super::model(|| {
        // Leaked: interrupts take the `&'static` metas of the real slab.
        let task: TaskRef = Box::leak(Box::new(TaskMeta::new(1)));
        let version = task.version.value().load(Ordering::Relaxed);
        let t = thread::spawn(move || crate::butex::interrupt_task(task, version));
        task.end_version();
        let hit = t.join().unwrap();
        assert!(
            !task.interrupted.load(Ordering::Relaxed),
            "the ended slot keeps an interrupt (interrupt_task returned {hit})"
        );
    });
}
