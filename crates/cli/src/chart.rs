//! An SVG picture of one Insights series: per window length the detector compares (1, 5,
//! 15 and 30 minutes), the calls in the window ending at each minute, the band's top (the
//! largest such window seen around that time on the days before), the limit above which
//! an Insight opens, the minutes still learning, and the Insight windows. A series crossing
//! its limit in any panel is what opened an Insight (just after an Insight ends, a window
//! still holding its minutes opens none).

use std::fmt::Write;

use cairn_insights::trace::Point;
use cairn_insights::SCALES;

/// What to draw.
pub struct Chart<'a> {
    pub title: &'a str,
    /// Consecutive minutes, in order; at least one.
    pub points: &'a [Point],
    /// Insights on the series: first minute and the minute after their activity (`None`:
    /// still open).
    pub insights: &'a [(i64, Option<i64>)],
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 92.0;
const PANEL: f64 = 120.0;
const GAP: f64 = 30.0;
const BOTTOM: f64 = 36.0;
/// At most this many points per line: beyond it each point is the largest of its minutes.
const COLUMNS: usize = 900;

const STYLE: &str = "text{font:12px sans-serif;fill:#333}.title{font-size:15px;font-weight:bold}\
.frame{fill:none;stroke:#999}.grid{stroke:#e4e4e4}.usual{fill:#cfe3f6;stroke:none}\
.limit{fill:none;stroke:#e07b00;stroke-dasharray:5 3}.calls{fill:none;stroke:#1f4e8c;stroke-width:1.3}\
.insight{fill:#d62728;fill-opacity:0.16}.learning{fill:#999;fill-opacity:0.12}";

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> String {
    let per_point = chart.points.len().div_ceil(COLUMNS).max(1);
    let points = coarsen(chart.points, per_point);
    let span = Span {
        first: chart.points[0].minute,
        last: chart.points[chart.points.len() - 1].minute,
    };
    let (first, last) = (span.first, span.last);
    let height = TOP + SCALES.len() as f64 * (PANEL + GAP) - GAP + BOTTOM;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"><style>{STYLE}</style><rect width="100%" height="100%" fill="white"/>"#
    );
    let mut subtitle = format!("{} to {}", stamp(first), stamp(last + 1));
    if per_point > 1 {
        let _ = write!(
            subtitle,
            "; each point is the largest of {per_point} minutes"
        );
    }
    let _ = write!(
        out,
        r#"<text class="title" x="{LEFT}" y="22">{}</text><text x="{LEFT}" y="40">{}</text>"#,
        escape(chart.title),
        escape(&subtitle)
    );
    legend(&mut out, 58.0);
    for scale in 0..SCALES.len() {
        let top = TOP + scale as f64 * (PANEL + GAP);
        let panel = Panel { top, scale, span };
        panel.draw(&mut out, &points, chart.insights);
    }
    axis(&mut out, span, height - BOTTOM);
    out.push_str("</svg>\n");
    out
}

/// The minutes drawn, first to last, across the width.
#[derive(Clone, Copy)]
struct Span {
    first: i64,
    last: i64,
}

impl Span {
    fn x(&self, minute: i64) -> f64 {
        let minutes = (self.last - self.first + 1) as f64;
        LEFT + (minute - self.first) as f64 / minutes * (WIDTH - LEFT - RIGHT)
    }
}

/// One panel: one window length (an index into `SCALES`).
struct Panel {
    top: f64,
    scale: usize,
    span: Span,
}

impl Panel {
    fn draw(&self, out: &mut String, points: &[Point], insights: &[(i64, Option<i64>)]) {
        let (k, window) = (self.scale, SCALES[self.scale]);
        let Span { first, last } = self.span;
        let x = |minute: i64| self.span.x(minute);
        let highest = points
            .iter()
            .map(|p| {
                let limit = p.limit.map_or(0.0, |l| l[k]);
                (p.sums[k] as f64).max(p.usual[k]).max(limit)
            })
            .fold(1.0, f64::max);
        let top_value = nice_ceiling(highest);
        let bottom = self.top + PANEL;
        let y = |v: f64| bottom - v.min(top_value) / top_value * PANEL;
        let right = x(last + 1);
        let label = if window == 1 {
            "calls per minute".to_owned()
        } else {
            format!("calls in the last {window} minutes")
        };
        let _ = write!(
            out,
            r#"<g class="panel" data-window="{window}"><text x="{LEFT}" y="{:.1}">{label}</text>"#,
            self.top - 6.0
        );
        for v in [0.0, top_value / 2.0, top_value] {
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" x2="{right:.1}" y1="{0:.1}" y2="{0:.1}"/><text x="{1:.1}" y="{2:.1}" text-anchor="end">{3}</text>"#,
                y(v),
                LEFT - 6.0,
                y(v) + 4.0,
                number(v)
            );
        }
        // The band: from zero up to the usual top.
        let mut band = String::new();
        for p in points {
            let _ = write!(band, "{:.1},{:.1} ", x(p.minute), y(p.usual[k]));
        }
        let _ = write!(
            band,
            "{:.1},{bottom:.1} {:.1},{bottom:.1}",
            x(points[points.len() - 1].minute),
            x(first)
        );
        let _ = write!(out, r#"<polygon class="usual" points="{band}"/>"#);
        for (from, to) in runs(points, |p| p.limit.is_none()) {
            let _ = write!(
                out,
                r#"<rect class="learning" x="{:.1}" y="{:.1}" width="{:.1}" height="{PANEL}"/>"#,
                x(from),
                self.top,
                x(to) - x(from)
            );
        }
        for (from, to) in runs(points, |p| p.limit.is_some()) {
            let line = points
                .iter()
                .filter(|p| (from..to).contains(&p.minute))
                .filter_map(|p| {
                    p.limit
                        .map(|l| format!("{:.1},{:.1}", x(p.minute), y(l[k])))
                })
                .collect::<Vec<_>>()
                .join(" ");
            let _ = write!(out, r#"<polyline class="limit" points="{line}"/>"#);
        }
        for &(start, end) in insights {
            let (from, to) = (start.max(first), end.unwrap_or(last + 1).min(last + 1));
            if from >= to {
                continue;
            }
            let _ = write!(
                out,
                r#"<rect class="insight" data-start="{}" data-end="{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{PANEL}"/>"#,
                stamp(start),
                end.map_or_else(|| "open".to_owned(), stamp),
                x(from),
                self.top,
                (x(to) - x(from)).max(1.0)
            );
        }
        let calls = points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.minute), y(p.sums[k] as f64)))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            out,
            r#"<polyline class="calls" points="{calls}"/><rect class="frame" x="{LEFT}" y="{:.1}" width="{:.1}" height="{PANEL}"/></g>"#,
            self.top,
            right - LEFT
        );
    }
}

/// The key to the colours, in one row at `y`.
fn legend(out: &mut String, y: f64) {
    let entries = [
        ("calls", "calls in the window"),
        ("usual", "usual top (earlier days)"),
        ("limit", "limit: above it an Insight opens"),
        ("insight", "Insight"),
        ("learning", "learning"),
    ];
    let mut left = LEFT;
    for (class, text) in entries {
        let swatch = match class {
            "calls" | "limit" => format!(
                r#"<line class="{class}" x1="{left}" x2="{}" y1="{}" y2="{}"/>"#,
                left + 18.0,
                y - 4.0,
                y - 4.0
            ),
            _ => format!(
                r#"<rect class="{class}" x="{left}" y="{}" width="18" height="10"/>"#,
                y - 9.0
            ),
        };
        out.push_str(&swatch);
        let _ = write!(out, r#"<text x="{}" y="{y}">{text}</text>"#, left + 24.0);
        left += 30.0 + 6.5 * text.len() as f64;
    }
}

/// Time ticks along the bottom, and their grid lines through every panel.
fn axis(out: &mut String, span: Span, bottom: f64) {
    let Span { first, last } = span;
    let step = tick_minutes(last - first + 1);
    let mut tick = first.div_euclid(step) * step;
    if tick < first {
        tick += step;
    }
    let mut day_shown = None;
    while tick <= last + 1 {
        let text = stamp(tick);
        let (day, clock) = (&text[5..10], &text[11..16]);
        let label = if day_shown == Some(day.to_owned()) {
            clock.to_owned()
        } else {
            day_shown = Some(day.to_owned());
            format!("{day} {clock}")
        };
        let _ = write!(
            out,
            r#"<line class="grid" x1="{0:.1}" x2="{0:.1}" y1="{TOP}" y2="{bottom}"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle">{label}</text>"#,
            span.x(tick),
            bottom + 18.0
        );
        tick += step;
    }
}

/// Minutes between time ticks: the shortest round step giving at most eight.
fn tick_minutes(span: i64) -> i64 {
    const STEPS: [i64; 13] = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 10080];
    STEPS
        .into_iter()
        .find(|step| span / step <= 8)
        .unwrap_or((span + 7) / 8)
}

/// Points of `per_point` minutes each: the largest count, sums, band and limit of each.
fn coarsen(points: &[Point], per_point: usize) -> Vec<Point> {
    if per_point <= 1 {
        return points.to_vec();
    }
    points
        .chunks(per_point)
        .map(|chunk| {
            let mut merged = chunk[0].clone();
            for p in &chunk[1..] {
                merged.count = merged.count.max(p.count);
                merged.open |= p.open;
                for k in 0..SCALES.len() {
                    merged.sums[k] = merged.sums[k].max(p.sums[k]);
                    merged.usual[k] = merged.usual[k].max(p.usual[k]);
                }
                merged.limit = match (merged.limit, p.limit) {
                    (Some(a), Some(b)) => Some(std::array::from_fn(|k| a[k].max(b[k]))),
                    (a, b) => a.or(b),
                };
            }
            merged
        })
        .collect()
}

/// The stretches where an Insight was open, as a chart's `insights` (for a trace whose
/// Insights events are not at hand; a stretch runs on past the Insight's activity until
/// its End was decided).
pub fn open_windows(points: &[Point]) -> Vec<(i64, Option<i64>)> {
    runs(points, |p| p.open)
        .into_iter()
        .map(|(from, to)| (from, Some(to)))
        .collect()
}

/// The runs of consecutive points where `wanted` holds, as (first minute, minute after).
fn runs(points: &[Point], wanted: impl Fn(&Point) -> bool) -> Vec<(i64, i64)> {
    let mut runs: Vec<(i64, i64)> = Vec::new();
    let mut current: Option<i64> = None;
    for (i, p) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(p.minute + 1, |n| n.minute);
        match (wanted(p), current) {
            (true, None) => current = Some(p.minute),
            (false, Some(from)) => {
                runs.push((from, p.minute));
                current = None;
            }
            _ => {}
        }
        if i + 1 == points.len() {
            if let Some(from) = current {
                runs.push((from, next));
            }
        }
    }
    runs
}

/// The smallest of 1, 2 and 5 times a power of ten at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&v| v >= value)
        .unwrap_or(10.0 * power)
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn stamp(minute: i64) -> String {
    cairn_core::timefmt::format_event_time(minute * 60)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(minute: i64, count: u64, learning: bool) -> Point {
        Point {
            minute,
            count: count as u32,
            sums: [count; 4],
            usual: [3.0; 4],
            limit: (!learning).then_some([12.0; 4]),
            open: false,
        }
    }

    #[test]
    fn round_tops_and_tick_steps() {
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(50.0), 50.0);
        assert_eq!(nice_ceiling(51.0), 100.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(tick_minutes(60), 10);
        assert_eq!(tick_minutes(1440), 180);
        assert_eq!(tick_minutes(14 * 1440), 10080);
        assert_eq!(tick_minutes(5), 1);
    }

    #[test]
    fn coarse_points_keep_each_stretchs_largest_values() {
        let mut points: Vec<Point> = (0..3000).map(|m| point(m, 2, m < 100)).collect();
        points[1234].sums[2] = 99;
        let coarse = coarsen(&points, 4);
        assert_eq!(coarse.len(), 750);
        assert_eq!(coarse[308].sums[2], 99);
        assert_eq!(coarse[308].minute, 1232);
        assert!(coarse[24].limit.is_none() && coarse[25].limit.is_some());
    }

    #[test]
    fn runs_cover_the_minutes_where_a_test_holds() {
        let points: Vec<Point> = (10..20)
            .map(|m| point(m, 1, !(13..18).contains(&m)))
            .collect();
        assert_eq!(
            runs(&points, |p| p.limit.is_none()),
            vec![(10, 13), (18, 20)]
        );
        assert_eq!(runs(&points, |p| p.limit.is_some()), vec![(13, 18)]);
    }

    #[test]
    fn the_picture_has_a_panel_per_window_with_the_insight_in_each() {
        let points: Vec<Point> = (1000..1120)
            .map(|m| point(m, if (1060..1065).contains(&m) { 40 } else { 2 }, m < 1010))
            .collect();
        let insights = [(1060, Some(1065)), (1110, None)];
        let chart = Chart {
            title: "ec2.amazonaws.com:RunInstances <write calls> & more",
            points: &points,
            insights: &insights,
        };
        let svg = svg(&chart);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches(r#"<g class="panel""#).count(), 4);
        assert_eq!(svg.matches(r#"<polyline class="calls""#).count(), 4);
        assert_eq!(svg.matches(r#"<polyline class="limit""#).count(), 4);
        // One in each panel and one in the legend.
        assert_eq!(svg.matches(r#"<rect class="learning" x="#).count(), 5);
        let start = r#"data-start="1970-01-01T17:40:00Z" data-end="1970-01-01T17:45:00Z""#;
        assert_eq!(svg.matches(start).count(), 4);
        assert_eq!(svg.matches(r#"data-end="open""#).count(), 4);
        assert!(svg.contains("&lt;write calls&gt; &amp; more"));
        assert!(!svg.contains("<write"));
        // 40 calls against a top of 50: the line reaches four fifths of the panel.
        let panel_bottom = TOP + PANEL;
        let peak = format!(",{:.1}", panel_bottom - 40.0 / 50.0 * PANEL);
        assert!(svg.contains(&peak), "{peak} in {svg}");
    }
}
