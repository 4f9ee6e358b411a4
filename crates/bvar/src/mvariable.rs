//! [`MVariable`]: a family of variables told apart by label values
//! (bRPC's `bvar::MultiDimension`, "mbvar").
//!
//! The family has a name and label names fixed at creation. Each
//! combination of label values gets its own variable, created on first
//! [`get_stats`](MVariable::get_stats) and exposed as
//! `name{label="value",...}` (`/vars` lists it like any variable, with its
//! own history; `/metrics` writes it as a labeled sample of `name`).
//! `get_stats` returns the variable's handle: keep it and update it
//! directly, and the hot path pays no lookup.
//!
//! Memory is bounded whatever values arrive: at most
//! `max_combinations` combinations ([`DEFAULT_MAX_COMBINATIONS`] unless set)
//! and label values of at most [`MAX_LABEL_VALUE_LEN`] bytes. Past either
//! limit `get_stats` returns `None`, the refusal is counted
//! ([`overflow_count`](MVariable::overflow_count)) and the first one is
//! logged.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use crate::{Adder, ExposeError, IntRecorder, LatencyRecorder, Maxer, Miner, PassiveStatus};

/// How many label combinations a family holds unless told otherwise.
pub const DEFAULT_MAX_COMBINATIONS: usize = 1024;

/// The longest label value accepted, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 256;

/// A variable type an [`MVariable`] can hold: a cheap `Clone` handle that
/// can be exposed as one label combination of a family.
pub trait Labeled: Clone + Send + Sync + 'static {
    /// Exposes the variable as the combination `labels` of `family`.
    fn expose_labeled(&self, family: &str, labels: &[(&str, &str)]) -> Result<(), ExposeError>;

    /// Hides every name the variable is exposed under.
    fn hide(&self);
}

macro_rules! labeled {
    ($($t:ty),*) => {$(
        impl Labeled for $t {
            fn expose_labeled(
                &self,
                family: &str,
                labels: &[(&str, &str)],
            ) -> Result<(), ExposeError> {
                <$t>::expose_labeled(self, family, labels)
            }

            fn hide(&self) {
                <$t>::hide(self)
            }
        }
    )*};
}
labeled!(
    Adder,
    Maxer,
    Miner,
    IntRecorder,
    LatencyRecorder,
    PassiveStatus
);

/// A family of variables of type `T`, one per combination of label values
/// (bRPC's `bvar::MultiDimension`). Cloning shares the family; dropping
/// the last clone hides every combination not held elsewhere.
///
/// ```
/// use fibrpc_bvar::{Adder, MVariable};
///
/// let requests: MVariable<Adder> = MVariable::new("doc_mvar_requests", &["service", "method"]);
/// let echo = requests.get_stats(&["EchoService", "Echo"]).unwrap();
/// echo.add(1); // no lookup: the handle is the variable
/// assert_eq!(requests.get_stats(&["EchoService", "Echo"]).unwrap().get_value(), 1);
/// assert!(fibrpc_bvar::registry::list()
///     .contains(&r#"doc_mvar_requests{service="EchoService",method="Echo"}"#.to_owned()));
/// ```
pub struct MVariable<T: Labeled> {
    inner: Arc<MInner<T>>,
}

impl<T: Labeled> Clone for MVariable<T> {
    fn clone(&self) -> Self {
        MVariable {
            inner: self.inner.clone(),
        }
    }
}

struct MInner<T: Labeled> {
    name: String,
    label_names: Vec<String>,
    max: usize,
    stats: RwLock<HashMap<Vec<String>, T>>,
    overflow: AtomicU64,
    warned: AtomicBool,
}

impl<T: Labeled> Drop for MInner<T> {
    fn drop(&mut self) {
        let stats = self.stats.get_mut().unwrap_or_else(|e| e.into_inner());
        for (_, stat) in stats.drain() {
            stat.hide();
        }
    }
}

impl<T: Labeled> MVariable<T> {
    /// A family `name` (normalized as
    /// [`registry::expose`](crate::registry::expose) does) with
    /// `label_names`, holding up to [`DEFAULT_MAX_COMBINATIONS`].
    pub fn new(name: &str, label_names: &[&str]) -> Self {
        Self::with_max_combinations(name, label_names, DEFAULT_MAX_COMBINATIONS)
    }

    /// A family holding up to `max` combinations.
    pub fn with_max_combinations(name: &str, label_names: &[&str], max: usize) -> Self {
        MVariable {
            inner: Arc::new(MInner {
                name: crate::name::normalize(name),
                label_names: label_names.iter().map(|s| s.to_string()).collect(),
                max,
                stats: RwLock::new(HashMap::new()),
                overflow: AtomicU64::new(0),
                warned: AtomicBool::new(false),
            }),
        }
    }

    /// The family's (normalized) name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The label names, in order.
    pub fn label_names(&self) -> &[String] {
        &self.inner.label_names
    }

    /// The variable of the combination `values` (one per label name, in
    /// order), created and exposed on first use; `None` if the number of
    /// values is wrong, a value is longer than [`MAX_LABEL_VALUE_LEN`] or
    /// the family is full (the last two are counted in
    /// [`overflow_count`](Self::overflow_count)).
    pub fn get_stats(&self, values: &[&str]) -> Option<T>
    where
        T: Default,
    {
        self.get_stats_with(values, T::default)
    }

    /// Like [`get_stats`](Self::get_stats), with `make` creating the
    /// variable when the combination is new (for types without a
    /// default, such as [`PassiveStatus`], or to adopt a variable the
    /// caller already holds).
    pub fn get_stats_with(&self, values: &[&str], make: impl FnOnce() -> T) -> Option<T> {
        if values.len() != self.inner.label_names.len() {
            return None;
        }
        let key = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
        let found = {
            let stats = self.inner.stats.read().unwrap_or_else(|e| e.into_inner());
            stats.get(&key(values)).cloned()
        };
        if found.is_some() {
            return found;
        }
        if values.iter().any(|v| v.len() > MAX_LABEL_VALUE_LEN) {
            self.refuse(values, "a label value is too long");
            return None;
        }
        let mut stats = self.inner.stats.write().unwrap_or_else(|e| e.into_inner());
        if let Some(stat) = stats.get(&key(values)) {
            return Some(stat.clone());
        }
        if stats.len() >= self.inner.max {
            drop(stats);
            self.refuse(values, "the family is full");
            return None;
        }
        let stat = make();
        let labels: Vec<(&str, &str)> = (self.inner.label_names.iter())
            .map(String::as_str)
            .zip(values.iter().copied())
            .collect();
        if let Err(e) = stat.expose_labeled(&self.inner.name, &labels) {
            // The handle still counts; only the listing is missing.
            tracing::warn!(family = %self.inner.name, error = %e, "cannot expose a label combination");
        }
        stats.insert(key(values), stat.clone());
        Some(stat)
    }

    fn refuse(&self, values: &[&str], why: &str) {
        self.inner.overflow.fetch_add(1, Relaxed);
        if !self.inner.warned.swap(true, Relaxed) {
            tracing::warn!(
                family = %self.inner.name,
                max_combinations = self.inner.max,
                values = ?values,
                "refusing a label combination ({why}); further refusals are only counted"
            );
        }
    }

    /// Removes and hides the combination `values`; handles still held
    /// keep counting but are no longer listed. Returns whether it existed.
    pub fn delete_stats(&self, values: &[&str]) -> bool {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let removed = (self.inner.stats.write().unwrap_or_else(|e| e.into_inner())).remove(&key);
        match removed {
            Some(stat) => {
                stat.hide();
                true
            }
            None => false,
        }
    }

    /// How many combinations the family holds.
    pub fn count_stats(&self) -> usize {
        self.inner
            .stats
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The combinations the family holds, sorted.
    pub fn list_stats(&self) -> Vec<Vec<String>> {
        let stats = self.inner.stats.read().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<Vec<String>> = stats.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// How many combinations were refused (family full or value too long).
    pub fn overflow_count(&self) -> u64 {
        self.inner.overflow.load(Relaxed)
    }
}

impl<T: Labeled> fmt::Debug for MVariable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MVariable")
            .field("name", &self.inner.name)
            .field("label_names", &self.inner.label_names)
            .field("combinations", &self.count_stats())
            .field("overflow", &self.overflow_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn combinations_are_bounded_and_counted() {
        let m: MVariable<Adder> = MVariable::with_max_combinations("mvar_test_bound", &["k"], 3);
        for i in 0..10 {
            let got = m.get_stats(&[&i.to_string()]);
            assert_eq!(got.is_some(), i < 3, "combination {i}");
        }
        assert_eq!(m.count_stats(), 3);
        assert_eq!(m.overflow_count(), 7);
        // Known combinations are still served when full.
        assert!(m.get_stats(&["1"]).is_some());
        assert!(m.get_stats(&["1", "2"]).is_none(), "wrong arity");
        let long = "x".repeat(MAX_LABEL_VALUE_LEN + 1);
        assert!(m.delete_stats(&["0"]));
        assert!(m.get_stats(&[&long]).is_none(), "value too long");
        assert_eq!(m.overflow_count(), 8);
        assert!(m.get_stats(&["new"]).is_some(), "room after a delete");
        let listed = registry::list()
            .into_iter()
            .filter(|n| n.starts_with("mvar_test_bound{"))
            .count();
        assert_eq!(listed, 3);
        assert!(
            registry::describe(r#"mvar_test_bound{k="0"}"#).is_none(),
            "deleted is hidden"
        );
    }

    #[test]
    fn handles_are_stable_and_concurrent_updates_sum() {
        let m: MVariable<Adder> = MVariable::new("mvar_test_sum", &["service", "method"]);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let method = if i % 2 == 0 { "A" } else { "B" };
                        m.get_stats(&["S", method]).unwrap().add(t + 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let a = m.get_stats(&["S", "A"]).unwrap();
        assert_eq!(a.get_value(), 500 * (1 + 2 + 3 + 4));
        a.add(1);
        assert_eq!(m.get_stats(&["S", "A"]).unwrap().get_value(), a.get_value());
        assert_eq!(
            registry::describe(r#"mvar_test_sum{service="S",method="B"}"#).as_deref(),
            Some("5000")
        );
        assert_eq!(m.list_stats(), [["S", "A"], ["S", "B"]]);
        drop((m, a));
        assert!(registry::describe(r#"mvar_test_sum{service="S",method="B"}"#).is_none());
    }

    #[test]
    fn every_variable_type_fits() {
        let max: MVariable<Maxer> = MVariable::new("mvar_test_max", &["k"]);
        max.get_stats(&["a"]).unwrap().update(9);
        let rec: MVariable<IntRecorder> = MVariable::new("mvar_test_rec", &["k"]);
        rec.get_stats(&["a"]).unwrap().record(4);
        let lat: MVariable<LatencyRecorder> = MVariable::new("mvar_test_lat", &["k"]);
        lat.get_stats(&["a"]).unwrap().record(7);
        let st: MVariable<PassiveStatus> = MVariable::new("mvar_test_st", &["k"]);
        st.get_stats_with(&["a"], || PassiveStatus::new(|| 3))
            .unwrap();
        assert_eq!(
            registry::describe(r#"mvar_test_max{k="a"}"#).as_deref(),
            Some("9")
        );
        assert!(registry::describe(r#"mvar_test_rec{k="a"}"#).is_some());
        assert_eq!(
            registry::describe(r#"mvar_test_lat_count{k="a"}"#).as_deref(),
            Some("1")
        );
        assert_eq!(
            registry::describe(r#"mvar_test_st{k="a"}"#).as_deref(),
            Some("3")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_more_than_the_bound(values in proptest::collection::vec("[a-z\"\\\\\n]{0,4}", 0..60), max in 1usize..20) {
            let m: MVariable<Adder> = MVariable::with_max_combinations("mvar_test_prop", &["v"], max);
            let mut distinct = std::collections::HashSet::new();
            for v in &values {
                if m.get_stats(&[v]).is_some() {
                    distinct.insert(v.clone());
                }
            }
            proptest::prop_assert!(m.count_stats() <= max);
            proptest::prop_assert_eq!(m.count_stats(), distinct.len());
        }
    }
}
