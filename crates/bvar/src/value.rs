//! What a variable reads as ([`Value`]) and what the registry holds
//! ([`Variable`]).

use std::fmt;

/// A variable's current value. Numbers are what history series and the
/// Prometheus export use; text is shown as is.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Anything else, shown verbatim.
    Text(String),
}

impl Value {
    /// The value as a number, `None` for text.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Float(v) => Some(*v),
            Value::Text(_) => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write_float(f, *v),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// Six significant digits, trailing zeros dropped (`0.00968803`,
/// `6.24`), as people read them on `/vars`; exact `f64`s go to
/// Prometheus and the series.
fn write_float(f: &mut fmt::Formatter<'_>, v: f64) -> fmt::Result {
    if !v.is_finite() || v == 0.0 || v.abs() >= 1e15 {
        return write!(f, "{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (5 - magnitude).clamp(0, 15) as usize;
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    f.write_str(s)
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::Int(v.into())
            }
        }
    )*};
}
from_int!(i64, i32, i16, i8, u32, u16, u8, bool);

impl From<u64> for Value {
    /// Saturates at `i64::MAX`.
    fn from(v: u64) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    /// Saturates at `i64::MAX`.
    fn from(v: usize) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Float(v.into())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

/// Something the registry can show: every variable type of this crate
/// implements it, and so can user types exposed with
/// [`registry::expose`](crate::registry::expose).
pub trait Variable: Send + Sync {
    /// The current value.
    fn value(&self) -> Value;

    /// Appends the human-readable description (`/vars` shows this).
    /// Defaults to the value's `Display`.
    fn describe(&self, out: &mut String) {
        use fmt::Write;
        let _ = write!(out, "{}", self.value());
    }

    /// Appends this variable in Prometheus text format 0.0.4 (`# HELP`,
    /// `# TYPE` and samples) under the already valid metric `name`.
    /// Defaults to a gauge for numbers and nothing for text.
    fn dump_prometheus(&self, name: &str, out: &mut String) {
        if let Some(v) = self.value().as_f64() {
            crate::prometheus::write_sample(out, name, "gauge", "current value (bvar)", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Value;

    #[test]
    fn floats_read_as_people_write_them() {
        let f = |v: f64| Value::Float(v).to_string();
        assert_eq!(f(6.240000000001601), "6.24");
        assert_eq!(f(0.009688025129714131), "0.00968803");
        assert_eq!(f(1234567.891), "1234568");
        assert_eq!(f(2.0), "2");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-1.5), "-1.5");
        assert_eq!(f(f64::NAN), "NaN");
    }
}
