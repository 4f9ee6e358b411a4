//! History of one numeric variable, bRPC's `/vars?series`: the last 60
//! seconds, 60 minutes, 24 hours and 30 days. Each coarser point is the
//! average of the 60 (or 24) finer points before it.

use std::collections::VecDeque;
use std::fmt::Write;

/// One resolution: a ring plus the running sum of the current period.
struct Ring {
    points: VecDeque<f64>,
    cap: usize,
    /// Sum and count of the points added since the last roll-up.
    pending: (f64, usize),
}

impl Ring {
    const fn new(cap: usize) -> Self {
        Ring {
            points: VecDeque::new(),
            cap,
            pending: (0.0, 0),
        }
    }

    /// Adds a point; returns the average of the last `period` points when
    /// a period completes.
    fn push(&mut self, v: f64, period: usize) -> Option<f64> {
        if self.points.len() == self.cap {
            self.points.pop_front();
        }
        self.points.push_back(v);
        self.pending.0 += v;
        self.pending.1 += 1;
        if self.pending.1 < period {
            return None;
        }
        let avg = self.pending.0 / self.pending.1 as f64;
        self.pending = (0.0, 0);
        Some(avg)
    }
}

/// Per-second, per-minute, per-hour and per-day history.
pub(crate) struct Series {
    seconds: Ring,
    minutes: Ring,
    hours: Ring,
    days: Ring,
}

impl Series {
    pub(crate) const fn new() -> Self {
        Series {
            seconds: Ring::new(60),
            minutes: Ring::new(60),
            hours: Ring::new(24),
            days: Ring::new(30),
        }
    }

    /// Records this second's value.
    pub(crate) fn push(&mut self, v: f64) {
        let v = if v.is_finite() { v } else { 0.0 };
        let Some(m) = self.seconds.push(v, 60) else {
            return;
        };
        let Some(h) = self.minutes.push(m, 60) else {
            return;
        };
        let Some(d) = self.hours.push(h, 24) else {
            return;
        };
        self.days.push(d, usize::MAX);
    }

    /// `{"label":"NAME","data":[[0,v],[1,v],...]}`: the points oldest
    /// first — days, then hours, then minutes, then seconds (bRPC's
    /// layout, which its flot chart draws as is). `x` is the point's index;
    /// the newest point (this second) is last. Values are plain JSON
    /// numbers.
    pub(crate) fn to_json(&self, label: &str) -> String {
        let mut out = String::from("{\"label\":\"");
        for c in label.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push_str("\",\"data\":[");
        let all = [&self.days, &self.hours, &self.minutes, &self.seconds];
        for (i, v) in all.iter().flat_map(|r| r.points.iter()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "[{i},{v}]");
        }
        out.push_str("]}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_up_averages() {
        let mut s = Series::new();
        for i in 0..120 {
            s.push(i as f64);
        }
        assert_eq!(s.seconds.points.len(), 60);
        assert_eq!(s.seconds.points[0], 60.0);
        assert_eq!(s.minutes.points, [29.5, 89.5]);
        assert!(s.hours.points.is_empty());
        for _ in 0..(3600 - 120) {
            s.push(1.0);
        }
        assert_eq!(s.minutes.points.len(), 60);
        assert_eq!(s.hours.points.len(), 1);
    }

    #[test]
    fn json_layout() {
        let mut s = Series::new();
        s.push(1.0);
        s.push(2.5);
        assert_eq!(
            s.to_json("a\"b"),
            r#"{"label":"a\"b","data":[[0,1],[1,2.5]]}"#
        );
        assert_eq!(Series::new().to_json("x"), r#"{"label":"x","data":[]}"#);
    }
}
