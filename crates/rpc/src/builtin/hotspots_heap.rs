//! `/hotspots/heap`: the live heap by allocation stack, as sampled by
//! [`SampledAllocator`](crate::profile::SampledAllocator) (bRPC's heap profile, which reads tcmalloc's
//! samples).
//!
//! - curl (text): the estimate, then the top stacks (`?top=N`, default
//!   20, at most 1000), each with its live bytes and blocks and its
//!   frames innermost first;
//! - a browser: the same table and the flame graph (the width of a frame
//!   is the live bytes allocated under it);
//! - `?format=svg`: the flame graph alone; `?format=collapsed`: the
//!   collapsed stacks (`outer;...;inner BYTES`), for other flame graph
//!   tools.
//!
//! A snapshot, not a timed profile: the answer comes at once. It still
//! counts as the one profile running (resolving symbols takes time).
//! Without the allocator installed the page is a 501 that says how to
//! install it.

use fibrpc_iobuf::IOBuf;
use http::{Request, Response, StatusCode};

use super::hotspots::{empty_svg, Running};
use super::{query_param, Format, Page};
use crate::http::{response, text};
use crate::profile::{heap_profile, HeapProfile};

/// Stacks listed when `top` is not given.
const DEFAULT_TOP: usize = 20;
/// The most stacks `top` lists.
const MAX_TOP: usize = 1000;
/// Frames of a stack the table shows, innermost first.
const TABLE_FRAMES: usize = 12;

pub(super) fn serve(req: &Request<IOBuf>) -> Response<IOBuf> {
    let wanted = query_param(req, "format");
    if !crate::profile::installed() {
        return not_installed(req);
    }
    let Some(_running) = Running::acquire() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "a profile is already running; try again when it ends\n",
        );
    };
    let Some(profile) = heap_profile() else {
        return not_installed(req);
    };
    match wanted {
        Some("svg") => svg(&profile),
        Some("collapsed") => text(StatusCode::OK, profile.collapsed()),
        _ => page(req, &profile),
    }
}

fn not_installed(req: &Request<IOBuf>) -> Response<IOBuf> {
    let mut page = Page::new(Format::of(req), "hotspots: heap");
    page.line(
        "The heap profile needs the program's global allocator to sample \
         allocations with their stacks, and this program's does not.",
    );
    page.line(
        "To turn it on, wrap the allocator in fibrpc::profile::SampledAllocator \
         (in the binary's main.rs) and rebuild:",
    );
    page.line(
        "    #[global_allocator] static ALLOC: fibrpc::profile::SampledAllocator = \
         fibrpc::profile::SampledAllocator::system();",
    );
    page.line(
        "(SampledAllocator::new(A) wraps another allocator, jemalloc's say.) It samples \
         one allocation per heap_profile_sample_bytes bytes allocated (flag, default \
         512 KiB): an allocation costs a thread-local subtraction, a free a hash and one \
         load, a sample a few microseconds.",
    );
    let mut r = page.finish();
    *r.status_mut() = StatusCode::NOT_IMPLEMENTED;
    r
}

fn svg(profile: &HeapProfile) -> Response<IOBuf> {
    let collapsed = profile.collapsed();
    if collapsed.is_empty() {
        return response(
            StatusCode::OK,
            "image/svg+xml",
            empty_svg("heap: no live samples yet"),
        );
    }
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = format!(
        "live heap: {} estimated from {} samples",
        human_bytes(profile.live_bytes),
        profile.samples
    );
    opts.count_name = "bytes".to_string();
    let mut out = Vec::new();
    match inferno::flamegraph::from_lines(&mut opts, collapsed.lines(), &mut out) {
        Ok(()) => response(StatusCode::OK, "image/svg+xml", out),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the heap flame graph failed: {e}\n"),
        ),
    }
}

fn page(req: &Request<IOBuf>, profile: &HeapProfile) -> Response<IOBuf> {
    let format = Format::of(req);
    let top = query_param(req, "top")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_TOP)
        .clamp(1, MAX_TOP);
    let mut page = Page::new(format, "hotspots: heap");
    page.pairs(&[
        ("live (estimated)", human_bytes(profile.live_bytes)),
        ("live samples", profile.samples.to_string()),
        (
            "sampling",
            format!(
                "one per {} allocated (flag heap_profile_sample_bytes)",
                human_bytes(profile.sample_bytes)
            ),
        ),
        ("stacks", profile.stacks.len().to_string()),
    ]);
    if format == Format::Html {
        page.html(
            "<p><a href=\"/hotspots/heap?format=svg\">the SVG alone</a> · \
             <a href=\"/hotspots/heap?format=collapsed\">collapsed stacks</a></p>\n\
             <object class=\"flamegraph\" type=\"image/svg+xml\" \
             data=\"/hotspots/heap?format=svg\" \
             style=\"width:100%;min-height:400px\"></object>\n",
        );
    }
    page.heading(&format!("top {top} stacks by live bytes"));
    let total = profile.live_bytes.max(1) as f64;
    match format {
        Format::Text => {
            for (i, s) in profile.stacks.iter().take(top).enumerate() {
                page.line(&format!(
                    "#{} {} ({:.1}%) in {} blocks ({} samples)",
                    i + 1,
                    human_bytes(s.bytes),
                    s.bytes as f64 * 100.0 / total,
                    s.objects,
                    s.samples
                ));
                for f in s.frames.iter().rev() {
                    page.line(&format!("    {f}"));
                }
            }
        }
        Format::Html => {
            let rows: Vec<Vec<String>> = profile
                .stacks
                .iter()
                .take(top)
                .map(|s| {
                    let frames: Vec<&str> = s
                        .frames
                        .iter()
                        .rev()
                        .take(TABLE_FRAMES)
                        .map(String::as_str)
                        .collect();
                    vec![
                        human_bytes(s.bytes),
                        format!("{:.1}%", s.bytes as f64 * 100.0 / total),
                        s.objects.to_string(),
                        s.samples.to_string(),
                        frames.join(" ← "),
                    ]
                })
                .collect();
            page.table(
                &[
                    "live",
                    "share",
                    "blocks",
                    "samples",
                    "stack (innermost first)",
                ],
                &rows,
                None,
            );
        }
    }
    page.finish()
}

/// `n` bytes in B, KiB, MiB or GiB.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_as_humans_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(512 << 10), "512.0 KiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
