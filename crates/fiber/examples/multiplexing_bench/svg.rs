//! A hand-written log-log line chart in SVG: just enough for one figure
//! (title, gridded log axes with a second y scale on the right, a legend,
//! one vertical marker line), so the benchmark needs no plotting crate.

use std::fmt::Write;

const W: f64 = 900.0;
const H: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = W - 90.0;
const TOP: f64 = 76.0;
const BOTTOM: f64 = H - 66.0;
const FONT: &str = "font-family=\"Helvetica, Arial, sans-serif\"";

#[derive(Clone, Copy)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
}

pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// An SVG `stroke-dasharray`, empty for a solid line.
    pub dash: &'static str,
    pub marker: Marker,
    /// (x, y) points, both > 0, in increasing x.
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub subtitle: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// The right axis shows the left one's values times `y2_per_y`.
    pub y2_label: &'a str,
    pub y2_per_y: f64,
    /// A dashed vertical line at this x, with a label.
    pub x_marker: Option<(f64, &'a str)>,
    pub series: &'a [Series],
}

/// Maps a value to a pixel on a log10 scale between two pixel positions.
struct LogScale {
    lo: f64,
    hi: f64,
    p0: f64,
    p1: f64,
}

impl LogScale {
    /// A scale over `values`, padded by a fraction of a decade each side so
    /// no point sits on the frame.
    fn fit(values: impl Iterator<Item = f64>, p0: f64, p1: f64) -> Self {
        let (min, max) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = (min.log10(), max.log10());
        let pad = if hi - lo < 0.5 { 0.5 } else { 0.15 };
        Self {
            lo: lo - pad,
            hi: hi + pad,
            p0,
            p1,
        }
    }

    /// Like `fit`, but the ends widened to 1-2-5 values, so the frame's
    /// edges are labelled and the smallest values can be read off.
    fn fit_snapped(values: impl Iterator<Item = f64>, p0: f64, p1: f64) -> Self {
        let mut s = Self::fit(values, p0, p1);
        s.lo = snap_down(s.lo);
        s.hi = snap_up(s.hi);
        s
    }

    fn px(&self, v: f64) -> f64 {
        self.p0 + (v.log10() - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)
    }

    /// Ticks at 1..9 × 10^k inside the range: (value, labelled, is a decade).
    /// Only decades are labelled once the range spans many of them.
    fn ticks(&self) -> Vec<(f64, bool, bool)> {
        let wide = self.hi - self.lo > 3.5;
        let mut out = Vec::new();
        for d in self.lo.floor() as i32..=self.hi.ceil() as i32 {
            for m in 1..=9 {
                let v = f64::from(m) * 10f64.powi(d);
                // The tolerance keeps a tick on a snapped edge.
                if (self.lo - 1e-9..=self.hi + 1e-9).contains(&v.log10()) {
                    let labelled = m == 1 || (!wide && (m == 2 || m == 5));
                    out.push((v, labelled, m == 1));
                }
            }
        }
        out
    }
}

/// The log10 of the largest 1-2-5 value at or below 10^`at`.
fn snap_down(at: f64) -> f64 {
    let decade = at.floor();
    let steps = [5.0f64, 2.0, 1.0].map(|m| decade + m.log10());
    steps.into_iter().find(|&s| s <= at).unwrap_or(decade)
}

/// The log10 of the smallest 1-2-5 value at or above 10^`at`.
fn snap_up(at: f64) -> f64 {
    let decade = at.floor();
    let steps = [1.0f64, 2.0, 5.0, 10.0].map(|m| decade + m.log10());
    steps.into_iter().find(|&s| s >= at).unwrap_or(decade + 1.0)
}

/// "500", "2k", "10k": short labels for the x axis.
fn short(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", (v / 1000.0).round())
    } else {
        plain(v)
    }
}

/// "5000", "20", "0.5": labels for the y axes.
fn plain(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let decimals = (-v.log10().floor()) as usize;
        format!("{v:.decimals$}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn text(out: &mut String, x: f64, y: f64, size: u32, anchor: &str, extra: &str, s: &str) {
    let _ = writeln!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" {FONT} {extra}>{}</text>"#,
        escape(s)
    );
}

fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), style: &str) {
    let _ = writeln!(
        out,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {style}/>"#
    );
}

fn marker(out: &mut String, m: Marker, x: f64, y: f64, color: &str) {
    let style = format!(r#"fill="{color}" stroke="white" stroke-width="1""#);
    let _ = match m {
        Marker::Circle => writeln!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" {style}/>"#),
        Marker::Square => writeln!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" {style}/>"#,
            x - 4.0,
            y - 4.0
        ),
        Marker::Triangle => writeln!(
            out,
            r#"<polygon points="{x:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" {style}/>"#,
            y - 5.5,
            x - 5.0,
            y + 3.5,
            x + 5.0,
            y + 3.5
        ),
        Marker::Diamond => writeln!(
            out,
            r#"<polygon points="{x:.1},{:.1} {:.1},{y:.1} {x:.1},{:.1} {:.1},{y:.1}" {style}/>"#,
            y - 5.5,
            x + 5.5,
            y + 5.5,
            x - 5.5
        ),
    };
}

/// Grid lines and tick labels of both axes (left, right and bottom).
fn grid(out: &mut String, xs: &LogScale, ys: &LogScale, y2_per_y: f64) {
    for (v, labelled, decade) in xs.ticks() {
        let x = xs.px(v);
        let colour = if decade { "#c8c8c8" } else { "#ececec" };
        line(out, (x, TOP), (x, BOTTOM), &format!(r#"stroke="{colour}""#));
        line(out, (x, BOTTOM), (x, BOTTOM + 5.0), r##"stroke="#333""##);
        if labelled {
            text(out, x, BOTTOM + 20.0, 12, "middle", "", &short(v));
        }
    }
    for (v, labelled, decade) in ys.ticks() {
        let y = ys.px(v);
        let colour = if decade { "#c8c8c8" } else { "#ececec" };
        line(out, (LEFT, y), (RIGHT, y), &format!(r#"stroke="{colour}""#));
        if labelled {
            text(out, LEFT - 8.0, y + 4.0, 12, "end", "", &plain(v));
            text(
                out,
                RIGHT + 8.0,
                y + 4.0,
                12,
                "start",
                "",
                &plain(v * y2_per_y),
            );
        }
    }
}

fn axis_labels(out: &mut String, c: &Chart) {
    let mid_y = (TOP + BOTTOM) / 2.0;
    text(
        out,
        (LEFT + RIGHT) / 2.0,
        H - 22.0,
        14,
        "middle",
        "",
        c.x_label,
    );
    let rot = format!(r#"transform="rotate(-90 26 {mid_y})""#);
    text(out, 26.0, mid_y, 14, "middle", &rot, c.y_label);
    let rot2 = format!(r#"transform="rotate(90 {} {mid_y})""#, W - 26.0);
    text(out, W - 26.0, mid_y, 14, "middle", &rot2, c.y2_label);
    text(
        out,
        W / 2.0,
        28.0,
        18,
        "middle",
        r#"font-weight="bold""#,
        c.title,
    );
    text(
        out,
        W / 2.0,
        50.0,
        12,
        "middle",
        r##"fill="#555""##,
        c.subtitle,
    );
}

fn x_marker(out: &mut String, xs: &LogScale, at: f64, label: &str) {
    if !(xs.lo..=xs.hi).contains(&at.log10()) {
        return; // Off the chart: nothing to mark.
    }
    let x = xs.px(at);
    let style = r##"stroke="#888" stroke-width="1.5" stroke-dasharray="6 4""##;
    line(out, (x, TOP), (x, BOTTOM), style);
    // Right of the line: the legend sits top left.
    text(
        out,
        x + 6.0,
        TOP + 16.0,
        11,
        "start",
        r##"fill="#666""##,
        label,
    );
}

fn series(out: &mut String, s: &Series, xs: &LogScale, ys: &LogScale) {
    let pts: Vec<String> = s
        .points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", xs.px(x), ys.px(y)))
        .collect();
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2.2" stroke-dasharray="{}"/>"#,
        pts.join(" "),
        s.color,
        s.dash
    );
    for &(x, y) in &s.points {
        marker(out, s.marker, xs.px(x), ys.px(y), s.color);
    }
}

/// The legend, top left inside the plot, where a rising curve leaves room.
fn legend(out: &mut String, all: &[Series]) {
    let (x0, y0, row) = (LEFT + 14.0, TOP + 14.0, 22.0);
    let height = row * all.len() as f64 + 10.0;
    let _ = writeln!(
        out,
        r##"<rect x="{x0}" y="{y0}" width="190" height="{height}" fill="white" fill-opacity="0.9" stroke="#bbb"/>"##
    );
    for (i, s) in all.iter().enumerate() {
        let y = y0 + 16.0 + row * i as f64;
        let style = format!(
            r#"stroke="{}" stroke-width="2.2" stroke-dasharray="{}""#,
            s.color, s.dash
        );
        line(out, (x0 + 10.0, y), (x0 + 42.0, y), &style);
        marker(out, s.marker, x0 + 26.0, y, s.color);
        text(out, x0 + 52.0, y + 4.5, 13, "start", "", &s.name);
    }
}

pub fn render(c: &Chart) -> String {
    let all = || c.series.iter().flat_map(|s| s.points.iter().copied());
    let xs = LogScale::fit(all().map(|p| p.0), LEFT, RIGHT);
    let ys = LogScale::fit_snapped(all().map(|p| p.1), BOTTOM, TOP);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">"#
    );
    let _ = writeln!(out, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    grid(&mut out, &xs, &ys, c.y2_per_y);
    if let Some((at, label)) = c.x_marker {
        x_marker(&mut out, &xs, at, label);
    }
    let frame = r##"fill="none" stroke="#333""##;
    let (w, h) = (RIGHT - LEFT, BOTTOM - TOP);
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" {frame}/>"#
    );
    // Last to first, so the short select curve is drawn over poll's.
    for s in c.series.iter().rev() {
        series(&mut out, s, &xs, &ys);
    }
    legend(&mut out, c.series);
    axis_labels(&mut out, c);
    out.push_str("</svg>\n");
    out
}
