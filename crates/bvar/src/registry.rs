//! The named registry: `expose` / `hide`, listing, descriptions, history
//! series and the Prometheus dump.
//!
//! Names are normalized the way bRPC does (see [`expose`]). The registry
//! holds a `Weak` to each variable: it never keeps one alive, and the
//! crate's own variable types hide their names when dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use crate::name;
use crate::series::Series;
use crate::value::Variable;

pub use crate::prometheus::dump_prometheus;

/// Why a name could not be exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExposeError {
    /// A live variable already has this (normalized) name.
    Duplicate(String),
    /// The name is empty after normalization.
    EmptyName,
}

impl fmt::Display for ExposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExposeError::Duplicate(n) => write!(f, "a variable named `{n}` is already exposed"),
            ExposeError::EmptyName => f.write_str("variable name is empty"),
        }
    }
}

impl std::error::Error for ExposeError {}

struct Entry {
    /// Tells this exposure from a later one under the same name.
    id: u64,
    var: Weak<dyn Variable>,
    series: Mutex<Series>,
}

static VARS: RwLock<BTreeMap<String, Arc<Entry>>> = RwLock::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn read() -> std::sync::RwLockReadGuard<'static, BTreeMap<String, Arc<Entry>>> {
    VARS.read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> std::sync::RwLockWriteGuard<'static, BTreeMap<String, Arc<Entry>>> {
    VARS.write().unwrap_or_else(|e| e.into_inner())
}

/// Exposes `var` as `name`. The name is normalized as bRPC does:
/// `CamelCase` → `camel_case`, lowercase, and every run of characters other
/// than ASCII letters and digits → one `_`. Returns the normalized name.
///
/// The registry keeps only the `Weak`: once the variable is dropped the
/// name disappears from listings and can be exposed again. The crate's
/// own types (`Adder::expose`, ...) call this and hide themselves on drop.
pub fn expose(name: &str, var: Weak<dyn Variable>) -> Result<String, ExposeError> {
    expose_with_id(name, var).map(|(n, _)| n)
}

fn expose_with_id(name: &str, var: Weak<dyn Variable>) -> Result<(String, u64), ExposeError> {
    insert(name::normalize(name), var)
}

/// The registry name of one label combination of a labeled family:
/// `family{label="value",...}`, the family normalized as [`expose`] does,
/// label names normalized too (with a leading `_` if they would start
/// with a digit) and values escaped as the Prometheus text format asks
/// (`\\`, `\"`, `\n`). `/vars` lists it as it is, `/metrics` writes it as
/// a labeled sample of `family`.
pub fn labeled_name(family: &str, labels: &[(&str, &str)]) -> String {
    let mut out = name::normalize(family);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let k = name::normalize(k);
        if k.is_empty() || k.starts_with(|c: char| c.is_ascii_digit()) {
            out.push('_');
        }
        out.push_str(&k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
    out
}

/// Inserts `name` as it is (already normalized or labeled).
fn insert(name: String, var: Weak<dyn Variable>) -> Result<(String, u64), ExposeError> {
    if name.is_empty() || name.starts_with('{') {
        return Err(ExposeError::EmptyName);
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    {
        let mut vars = write();
        if vars.get(&name).is_some_and(|e| e.var.strong_count() > 0) {
            return Err(ExposeError::Duplicate(name));
        }
        vars.insert(
            name.clone(),
            Arc::new(Entry {
                id,
                var,
                series: Mutex::new(Series::new()),
            }),
        );
    }
    crate::sampler::ensure_started();
    Ok((name, id))
}

/// Hides `name` (normalized first). Returns whether it was exposed.
pub fn hide(name: &str) -> bool {
    write().remove(&name::normalize(name)).is_some()
}

fn hide_exposure(name: &str, id: u64) {
    let mut vars = write();
    if vars.get(name).is_some_and(|e| e.id == id) {
        vars.remove(name);
    }
}

/// Live entries matching `filter`, sorted by name, without the lock held.
fn live(filter: &str) -> Vec<(String, Arc<dyn Variable>, Arc<Entry>)> {
    read()
        .iter()
        .filter(|(n, _)| name::matches(filter, n))
        .filter_map(|(n, e)| Some((n.clone(), e.var.upgrade()?, e.clone())))
        .collect()
}

fn find(name: &str) -> Option<(Arc<dyn Variable>, Arc<Entry>)> {
    let vars = read();
    let e = vars
        .get(name)
        .or_else(|| vars.get(&name::normalize(name)))?;
    Some((e.var.upgrade()?, e.clone()))
}

/// Names of all exposed variables, sorted.
pub fn list() -> Vec<String> {
    live("").into_iter().map(|(n, _, _)| n).collect()
}

/// The description of the variable called `name`.
pub fn describe(name: &str) -> Option<String> {
    let (var, _) = find(name)?;
    let mut out = String::new();
    var.describe(&mut out);
    Some(out)
}

/// Calls `f(name, description)` for every exposed variable whose name
/// passes `filter`, sorted by name. `filter`: empty for all; otherwise
/// patterns separated by `,` or `;` with `*` and `?` wildcards (`*qps*`);
/// a pattern without wildcards is an exact name.
pub fn dump(filter: &str, mut f: impl FnMut(&str, &str)) {
    let mut desc = String::new();
    for (name, var, _) in live(filter) {
        desc.clear();
        var.describe(&mut desc);
        f(&name, &desc);
    }
}

/// Every exposed variable as `name : description` lines (bRPC's
/// `/vars` page) for names passing `filter` (see [`dump`]).
pub fn describe_all(filter: &str) -> String {
    let mut out = String::new();
    dump(filter, |n, d| {
        out.push_str(n);
        out.push_str(" : ");
        out.push_str(d);
        out.push('\n');
    });
    out
}

/// The history of a numeric variable as
/// `{"label":"NAME","data":[[0,v],[1,v],...]}`: up to 30 daily, 24 hourly,
/// 60 per-minute and 60 per-second points, oldest first, `x` the point's
/// index (the newest, last point is the latest second). Coarser points are
/// averages. `None` if no such variable; an empty `data` until the sampler
/// has ticked.
pub fn series_json(name: &str) -> Option<String> {
    let (_, entry) = find(name)?;
    let label = read()
        .iter()
        .find(|(_, e)| Arc::ptr_eq(e, &entry))
        .map(|(n, _)| n.clone())?;
    let json = entry
        .series
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .to_json(&label);
    Some(json)
}

/// Live variables for the Prometheus dump, sorted by name.
pub(crate) fn for_each_live(mut f: impl FnMut(&str, &dyn Variable)) {
    for (name, var, _) in live("") {
        f(&name, &*var);
    }
}

/// One sampler tick: appends every numeric variable's value to its
/// series and forgets entries whose variable is gone.
pub(crate) fn sample_series() {
    let entries: Vec<(String, Arc<Entry>)> =
        read().iter().map(|(n, e)| (n.clone(), e.clone())).collect();
    for (name, entry) in entries {
        match entry.var.upgrade() {
            Some(var) => {
                if let Some(v) = var.value().as_f64() {
                    entry
                        .series
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(v);
                }
            }
            None => hide_exposure(&name, entry.id),
        }
    }
}

/// The names one variable is exposed under; hides them all when dropped.
/// Each of the crate's variable types embeds one.
#[derive(Default)]
pub(crate) struct Exposure {
    names: Mutex<Vec<(String, u64)>>,
}

impl Exposure {
    /// Exposes `var` under `name` and remembers it for [`Exposure::hide`].
    pub(crate) fn expose(&self, name: &str, var: Weak<dyn Variable>) -> Result<(), ExposeError> {
        let (name, id) = expose_with_id(name, var)?;
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, id));
        Ok(())
    }

    /// Exposes `var` as the label combination `labels` of `family` (see
    /// [`labeled_name`]).
    pub(crate) fn expose_labeled(
        &self,
        family: &str,
        labels: &[(&str, &str)],
        var: Weak<dyn Variable>,
    ) -> Result<(), ExposeError> {
        let (name, id) = insert(labeled_name(family, labels), var)?;
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name, id));
        Ok(())
    }

    /// How many names this variable has been exposed under.
    pub(crate) fn len(&self) -> usize {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Hides every name this variable was exposed under.
    pub(crate) fn hide(&self) {
        self.hide_from(0);
    }

    /// Hides the names exposed after the first `first` (a rollback).
    pub(crate) fn hide_from(&self, first: usize) {
        let names = {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let first = first.min(names.len());
            names.split_off(first)
        };
        for (name, id) in names {
            hide_exposure(&name, id);
        }
    }
}

impl Drop for Exposure {
    fn drop(&mut self) {
        self.hide();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Adder, Status};

    #[test]
    fn duplicate_names_are_errors() {
        let a = Adder::new_exposed("RegTest.Dup").unwrap();
        let b = Adder::new();
        assert_eq!(
            b.expose("reg_test_dup"),
            Err(ExposeError::Duplicate("reg_test_dup".into()))
        );
        assert_eq!(b.expose("--"), Ok(()), "`--` normalizes to `_`");
        b.hide();
        assert_eq!(Adder::new().expose(""), Err(ExposeError::EmptyName));
        // A variable may have several names.
        a.expose("reg_test_dup_alias").unwrap();
        assert!(list().contains(&"reg_test_dup_alias".to_owned()));
        a.hide();
        assert!(describe("reg_test_dup").is_none() && describe("reg_test_dup_alias").is_none());
        b.expose("reg_test_dup").unwrap();
    }

    #[test]
    fn dropping_the_last_handle_hides() {
        let a = Adder::new();
        a.expose("reg_test_drop").unwrap();
        let clone = a.clone();
        drop(a);
        assert_eq!(describe("reg_test_drop").as_deref(), Some("0"));
        drop(clone);
        assert!(describe("reg_test_drop").is_none());
        assert!(!list().contains(&"reg_test_drop".to_owned()));
        Adder::new_exposed("reg_test_drop").unwrap();
    }

    #[test]
    fn user_variables_and_hide() {
        struct Answer;
        impl Variable for Answer {
            fn value(&self) -> crate::Value {
                crate::Value::Int(42)
            }
        }
        let var: Arc<dyn Variable> = Arc::new(Answer);
        assert_eq!(
            expose("Reg Test Answer", Arc::downgrade(&var)).unwrap(),
            "reg_test_answer"
        );
        assert_eq!(describe("reg_test_answer").as_deref(), Some("42"));
        assert!(hide("reg_test_answer"));
        assert!(!hide("reg_test_answer"));
        expose("reg_test_answer", Arc::downgrade(&var)).unwrap();
        drop(var);
        assert!(
            describe("reg_test_answer").is_none(),
            "dead weak is not listed"
        );
        sample_series();
        assert!(
            !read().contains_key("reg_test_answer"),
            "tick forgets dead entries"
        );
    }

    #[test]
    fn dump_filters_and_sorts() {
        let _b = Adder::new_exposed("reg_filter_b_qps").unwrap();
        let _a = Adder::new_exposed("reg_filter_a_qps").unwrap();
        let _c = Status::new("x").clone();
        _c.expose("reg_filter_c_count").unwrap();
        let mut seen = Vec::new();
        dump("reg_filter_*qps*", |n, d| seen.push(format!("{n}={d}")));
        assert_eq!(seen, ["reg_filter_a_qps=0", "reg_filter_b_qps=0"]);
        seen.clear();
        dump("reg_filter_c_count;nothing", |n, d| {
            seen.push(format!("{n}={d}"))
        });
        assert_eq!(seen, ["reg_filter_c_count=x"]);
        assert_eq!(describe_all("reg_filter_a*"), "reg_filter_a_qps : 0\n");
    }

    #[test]
    fn series_follow_ticks() {
        let a = Adder::new_exposed("reg_series").unwrap();
        assert_eq!(
            series_json("reg_series").unwrap(),
            r#"{"label":"reg_series","data":[]}"#
        );
        a.add(5);
        sample_series();
        a.add(5);
        sample_series();
        let json = series_json("reg_series").unwrap();
        // Other tests' ticks (the series are global) may add points before
        // ours (0 then) and after them (10 then): the values read 0…, 5,
        // 10, 10….
        let values: Vec<i64> = json
            .split("\"data\":[")
            .nth(1)
            .and_then(|d| d.strip_suffix("]}"))
            .unwrap_or_else(|| panic!("{json}"))
            .split("],[")
            .map(|p| {
                let v = p.trim_matches(|c| c == '[' || c == ']').rsplit(',').next();
                v.and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{json}"))
            })
            .collect();
        let five = values
            .iter()
            .position(|&v| v == 5)
            .unwrap_or_else(|| panic!("{json}"));
        assert!(values[..five].iter().all(|&v| v == 0), "{json}");
        assert!(values.len() > five + 1, "{json}");
        assert!(values[five + 1..].iter().all(|&v| v == 10), "{json}");
        assert!(series_json("reg_series_missing").is_none());
        let _t = Status::new("text").clone();
        _t.expose("reg_series_text").unwrap();
        sample_series();
        assert_eq!(
            series_json("reg_series_text").unwrap(),
            r#"{"label":"reg_series_text","data":[]}"#
        );
    }
}
