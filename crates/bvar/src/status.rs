//! [`Status`] (a value the user sets) and [`PassiveStatus`] (a closure read
//! on demand), bRPC's `bvar::Status` and `bvar::PassiveStatus`.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::handle::expose_methods;
use crate::registry::Exposure;
use crate::value::{Value, Variable};

/// A value set by the user, shown as it is.
pub struct Status<T> {
    inner: Arc<StatusInner<T>>,
}

struct StatusInner<T> {
    value: Mutex<T>,
    exposure: Exposure,
}

impl<T> Clone for Status<T> {
    fn clone(&self) -> Self {
        Status {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone + Into<Value> + Send + 'static> Status<T> {
    /// A status holding `value`.
    pub fn new(value: T) -> Self {
        Status {
            inner: Arc::new(StatusInner {
                value: Mutex::new(value),
                exposure: Exposure::default(),
            }),
        }
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        *self.inner.lock() = value;
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        self.inner.lock().clone()
    }

    expose_methods!();
}

impl<T> StatusInner<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T: Clone + Into<Value> + Send> Variable for StatusInner<T> {
    fn value(&self) -> Value {
        self.lock().clone().into()
    }
}

impl<T: fmt::Debug> fmt::Debug for Status<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Status").field(&*self.inner.lock()).finish()
    }
}

type ReadFn = dyn Fn() -> Value + Send + Sync;

/// A value computed by a closure each time it is read (the registry,
/// series sampling, Prometheus scrapes).
#[derive(Clone)]
pub struct PassiveStatus {
    inner: Arc<PassiveInner>,
}

struct PassiveInner {
    read: Box<ReadFn>,
    exposure: Exposure,
}

impl PassiveStatus {
    /// A status that reads as `f()`.
    pub fn new<F, T>(f: F) -> Self
    where
        F: Fn() -> T + Send + Sync + 'static,
        T: Into<Value>,
    {
        let read: Box<ReadFn> = Box::new(move || f().into());
        PassiveStatus {
            inner: Arc::new(PassiveInner {
                read,
                exposure: Exposure::default(),
            }),
        }
    }

    /// Calls the closure.
    pub fn get_value(&self) -> Value {
        (self.inner.read)()
    }

    expose_methods!();
}

impl Variable for PassiveInner {
    fn value(&self) -> Value {
        (self.read)()
    }
}

impl fmt::Debug for PassiveStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PassiveStatus")
            .field(&self.get_value())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    #[test]
    fn status_set_and_describe() {
        let s = Status::new(String::from("starting"));
        s.expose("status_test_state").unwrap();
        s.set("serving".into());
        assert_eq!(s.get(), "serving");
        assert_eq!(
            crate::registry::describe("status_test_state").as_deref(),
            Some("serving")
        );
        let n = Status::new(3i64);
        n.set(4);
        assert_eq!(n.get(), 4);
    }

    #[test]
    fn passive_reads_on_demand() {
        static N: AtomicI64 = AtomicI64::new(1);
        let p = PassiveStatus::new(|| N.load(Ordering::Relaxed));
        assert_eq!(p.get_value(), Value::Int(1));
        N.store(5, Ordering::Relaxed);
        assert_eq!(p.get_value(), Value::Int(5));
        let t = PassiveStatus::new(|| "text");
        assert_eq!(t.get_value(), Value::Text("text".into()));
    }
}
