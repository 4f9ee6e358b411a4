//! [`Window`] and [`PerSecond`]: a variable's value over the last N
//! seconds, from one sample per sampler tick (bRPC's `bvar::Window` and
//! `bvar::PerSecond`).
//!
//! A window keeps N + 1 samples: the first is the state at the window's
//! start, the others end one second each. Cumulative variables (`Adder`,
//! `IntRecorder`) subtract the first sample from the last; extrema
//! (`Maxer`, `Miner`) are reset each tick and combine the N per-second
//! samples. Values change once per tick, not on every update.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::handle::expose_methods;
use crate::registry::Exposure;
use crate::sampler::{self, Tick};
use crate::value::{Value, Variable};

/// The longest window: one hour of per-second samples.
pub const MAX_WINDOW_SECS: u64 = 3600;

/// A variable a [`Window`] can follow.
pub trait Windowable: Clone + Send + Sync + 'static {
    /// What one tick records.
    type Sample: Clone + Send + 'static;
    /// The window's value.
    type Output: Copy + Default + Into<Value> + Send + 'static;
    /// Takes this tick's sample (may reset the variable).
    fn take_sample(&self) -> Self::Sample;
    /// The window's value from its samples, oldest first; the first one
    /// marks the window's start.
    fn window_value(samples: &[Self::Sample]) -> Self::Output;
}

/// A [`Windowable`] whose window value is a count, so that dividing it by
/// the window's seconds is a rate (`Adder`).
pub trait Rate: Windowable<Output = i64> {}

/// The value of `V` over the last N seconds.
pub struct Window<V: Windowable> {
    inner: Arc<WindowInner<V>>,
}

struct WindowInner<V: Windowable> {
    var: V,
    secs: usize,
    samples: Mutex<VecDeque<V::Sample>>,
    exposure: Exposure,
}

impl<V: Windowable> Clone for Window<V> {
    fn clone(&self) -> Self {
        Window {
            inner: self.inner.clone(),
        }
    }
}

impl<V: Windowable> Window<V> {
    /// A window over the last `secs` seconds (1 to [`MAX_WINDOW_SECS`]) of
    /// `var`. Starts the sampler thread if it is not running.
    pub fn new(var: &V, secs: u64) -> Self {
        let secs = secs.clamp(1, MAX_WINDOW_SECS) as usize;
        let mut samples = VecDeque::with_capacity(secs + 1);
        samples.push_back(var.take_sample());
        let inner = Arc::new(WindowInner {
            var: var.clone(),
            secs,
            samples: Mutex::new(samples),
            exposure: Exposure::default(),
        });
        let weak = Arc::downgrade(&inner);
        let weak: std::sync::Weak<dyn Tick> = weak;
        sampler::register(weak);
        Window { inner }
    }

    /// The value over the window (as of the last tick).
    pub fn get_value(&self) -> V::Output {
        self.inner.value_and_seconds().0
    }

    /// The window's length in seconds.
    pub fn window_size(&self) -> u64 {
        self.inner.secs as u64
    }

    /// The variable the window follows.
    pub fn variable(&self) -> &V {
        &self.inner.var
    }

    #[cfg(test)]
    pub(crate) fn tick(&self) {
        self.inner.tick();
    }

    expose_methods!();
}

impl<V: Windowable> WindowInner<V> {
    /// The window's value and how many seconds (ticks) it covers so far.
    fn value_and_seconds(&self) -> (V::Output, usize) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let secs = samples.len() - 1;
        (V::window_value(samples.make_contiguous()), secs)
    }
}

impl<V: Windowable> Tick for WindowInner<V> {
    fn tick(&self) {
        let sample = self.var.take_sample();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() > self.secs {
            samples.pop_front();
        }
        samples.push_back(sample);
    }
}

impl<V: Windowable> Variable for WindowInner<V> {
    fn value(&self) -> Value {
        self.value_and_seconds().0.into()
    }
}

impl<V: Windowable> fmt::Debug for Window<V>
where
    V::Output: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Window")
            .field("secs", &self.inner.secs)
            .field("value", &self.get_value())
            .finish()
    }
}

/// A [`Window`]'s value divided by the seconds it covers: a rate per second
/// (bRPC's `PerSecond`), e.g. requests per second from an `Adder` of
/// requests. Until the window has filled, it divides by the seconds sampled
/// so far. Seconds are sampler ticks.
pub struct PerSecond<V: Rate> {
    inner: Arc<PerSecondInner<V>>,
}

struct PerSecondInner<V: Rate> {
    window: Window<V>,
    exposure: Exposure,
}

impl<V: Rate> Clone for PerSecond<V> {
    fn clone(&self) -> Self {
        PerSecond {
            inner: self.inner.clone(),
        }
    }
}

impl<V: Rate> PerSecond<V> {
    /// The rate of `var` over the last `secs` seconds.
    pub fn new(var: &V, secs: u64) -> Self {
        PerSecond {
            inner: Arc::new(PerSecondInner {
                window: Window::new(var, secs),
                exposure: Exposure::default(),
            }),
        }
    }

    /// The average growth per second over the window, rounded; 0 before
    /// the first tick.
    pub fn get_value(&self) -> i64 {
        self.inner.get()
    }

    /// The underlying window.
    pub fn window(&self) -> &Window<V> {
        &self.inner.window
    }

    expose_methods!();
}

impl<V: Rate> PerSecondInner<V> {
    fn get(&self) -> i64 {
        match self.window.inner.value_and_seconds() {
            (_, 0) => 0,
            (v, secs) => (v as f64 / secs as f64).round() as i64,
        }
    }
}

impl<V: Rate> Variable for PerSecondInner<V> {
    fn value(&self) -> Value {
        Value::Int(self.get())
    }
}

impl<V: Rate> fmt::Debug for PerSecond<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PerSecond").field(&self.get_value()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adder, IntRecorder, Maxer, Miner};

    #[test]
    fn adder_window_and_rate() {
        let a = Adder::new();
        a.add(100); // before the window: not counted
        let w = Window::new(&a, 3);
        let qps = PerSecond::new(&a, 3);
        assert_eq!((w.get_value(), qps.get_value()), (0, 0));
        for per_sec in [10, 20, 30, 40] {
            a.add(per_sec);
            w.tick();
            qps.window().tick();
        }
        // The last 3 seconds: 20 + 30 + 40.
        assert_eq!(w.get_value(), 90);
        assert_eq!(qps.get_value(), 30);
        assert_eq!(w.window_size(), 3);
    }

    #[test]
    fn per_second_before_window_fills() {
        let a = Adder::new();
        let qps = PerSecond::new(&a, 10);
        a.add(7);
        qps.window().tick();
        a.add(9);
        qps.window().tick();
        assert_eq!(qps.get_value(), 8);
    }

    #[test]
    fn extremum_windows_forget_old_seconds() {
        let m = Maxer::new();
        let n = Miner::new();
        let (wm, wn) = (Window::new(&m, 2), Window::new(&n, 2));
        for v in [50, 7, 9, 3] {
            m.update(v);
            n.update(-v);
            wm.tick();
            wn.tick();
        }
        assert_eq!(wm.get_value(), 9);
        assert_eq!(wn.get_value(), -9);
        wm.tick();
        wm.tick();
        assert_eq!(wm.get_value(), 0, "no samples in the window");
    }

    #[test]
    fn recorder_window_average() {
        let r = IntRecorder::new();
        r.record(1000);
        let w = Window::new(&r, 1);
        r.record(2);
        r.record(4);
        w.tick();
        assert_eq!(w.get_value(), 3.0);
    }

    #[test]
    fn dropped_window_leaves_the_sampler() {
        let a = Adder::new();
        let w = Window::new(&a, 5);
        w.expose("window_test_dropped").unwrap();
        assert!(crate::registry::describe("window_test_dropped").is_some());
        drop(w);
        assert!(crate::registry::describe("window_test_dropped").is_none());
        crate::sample_now(); // must not touch the dropped window
    }
}
