//! The Gantt chart's geometry: where each step's bar, each wait on a
//! person, each regulatory deadline and each axis tick goes, from times
//! alone. No SVG here: the page template draws what this lays out, so the
//! layout can be tested with fixed times and the drawing stays markup.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::display::{duration_text, offset_label};

/// One step that ran, as the chart needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub step: String,
    /// `succeeded`, `failed`, `running`, ... (a CSS class on the page).
    pub outcome: String,
    pub start: DateTime<Utc>,
    /// Now, for a step still running or waiting.
    pub end: DateTime<Utc>,
    /// Stretches spent waiting on a person (an approval, a manual task),
    /// drawn apart from the machine's time.
    pub waits: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// A fan-out's item count, shown beside its name.
    pub items: Option<u32>,
    /// The accessible text: what it did, how long, how it ended.
    pub title: String,
}

/// A regulatory deadline on the same axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    pub label: String,
    pub at: DateTime<Utc>,
    pub overdue: bool,
    pub title: String,
}

/// Pixel sizes; the page draws at these, in an SVG `viewBox` of the same.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    /// Room for step names on the left.
    pub label_width: f64,
    pub plot_width: f64,
    pub row_height: f64,
    /// A group's heading row.
    pub heading_height: f64,
    /// The axis and the deadline labels at the top.
    pub top: f64,
    /// A bar this short is still drawn this wide, so an instant step shows.
    pub min_bar: f64,
}

impl Default for Geometry {
    fn default() -> Self {
        Geometry {
            label_width: 230.0,
            plot_width: 700.0,
            row_height: 16.0,
            heading_height: 20.0,
            top: 44.0,
            min_bar: 2.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Chart {
    pub width: String,
    pub height: String,
    pub plot_left: String,
    pub plot_right: String,
    pub axis_y: String,
    pub ticks: Vec<Tick>,
    pub groups: Vec<Group>,
    pub deadlines: Vec<DeadlineMark>,
    /// How much time the axis spans, for people ("0 to 2 min 10 s").
    pub span: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tick {
    pub x: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    pub phase: String,
    pub y: String,
    pub text_y: String,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub step: String,
    pub name: String,
    pub outcome: String,
    pub y: String,
    pub text_y: String,
    pub height: String,
    pub x: String,
    pub w: String,
    pub waits: Vec<Segment>,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    pub x: String,
    pub w: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeadlineMark {
    pub x: String,
    pub label: String,
    pub label_y: String,
    pub overdue: bool,
    /// Falls after the end of the axis: drawn at the right edge, pointing on.
    pub beyond: bool,
    pub title: String,
}

/// SVG coordinates with one decimal: enough for a screen, stable in tests.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// Tick spacing: the smallest of these that gives at most `MAX_TICKS`.
const STEPS_MS: &[i64] = &[
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
];
const MAX_TICKS: i64 = 8;
const LABEL_TOP: f64 = 12.0;
const LABEL_STEP: f64 = 11.0;

/// Lays out `groups` (a phase and its bars, in the order to draw them)
/// from `origin` (the declaration) to `end`, with the deadlines marked.
/// The axis is linear: a deadline days away from a drill that took
/// seconds is drawn at the right edge as "beyond", not squeezing every
/// bar into a pixel.
pub fn layout(
    origin: DateTime<Utc>,
    end: DateTime<Utc>,
    groups: &[(String, Vec<Bar>)],
    deadlines: &[Deadline],
    g: Geometry,
) -> Chart {
    let span_ms = (end - origin).num_milliseconds().max(1);
    let left = g.label_width;
    let right = g.label_width + g.plot_width;
    let x_of = |t: DateTime<Utc>| {
        let ms = (t - origin).num_milliseconds().clamp(0, span_ms);
        left + g.plot_width * ms as f64 / span_ms as f64
    };
    let step = STEPS_MS
        .iter()
        .copied()
        .find(|s| span_ms / s <= MAX_TICKS)
        .unwrap_or(*STEPS_MS.last().unwrap_or(&1));
    let ticks = (0..=span_ms / step)
        .map(|i| {
            let ms = i * step;
            Tick {
                x: px(left + g.plot_width * ms as f64 / span_ms as f64),
                label: offset_label(TimeDelta::milliseconds(ms)),
            }
        })
        .collect();
    // Each deadline's label has its own line above the axis, so labels
    // stacked at the right edge (all "later") stay legible.
    let top = g
        .top
        .max(LABEL_TOP + LABEL_STEP * deadlines.len() as f64 + 14.0);
    let mut y = top;
    let mut out_groups = Vec::new();
    for (phase, bars) in groups {
        let gy = y;
        y += g.heading_height;
        let rows = bars
            .iter()
            .map(|b| {
                let x = x_of(b.start);
                let w = (x_of(b.end) - x).max(g.min_bar);
                let waits = b
                    .waits
                    .iter()
                    .map(|(from, to)| {
                        let wx = x_of(*from);
                        Segment {
                            x: px(wx),
                            w: px((x_of(*to) - wx).max(g.min_bar)),
                        }
                    })
                    .collect();
                let row = Row {
                    step: b.step.clone(),
                    name: match b.items {
                        Some(n) => format!("{} ×{n}", b.step),
                        None => b.step.clone(),
                    },
                    outcome: b.outcome.clone(),
                    y: px(y + 2.0),
                    text_y: px(y + g.row_height - 4.0),
                    height: px(g.row_height - 4.0),
                    x: px(x),
                    w: px(w),
                    waits,
                    title: b.title.clone(),
                };
                y += g.row_height;
                row
            })
            .collect();
        out_groups.push(Group {
            phase: phase.clone(),
            y: px(gy),
            text_y: px(gy + g.heading_height - 6.0),
            rows,
        });
    }
    let deadlines = deadlines
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let beyond = d.at > end;
            DeadlineMark {
                x: px(if beyond { right } else { x_of(d.at) }),
                label: d.label.clone(),
                label_y: px(LABEL_TOP + LABEL_STEP * i as f64),
                overdue: d.overdue,
                beyond,
                title: d.title.clone(),
            }
        })
        .collect();
    Chart {
        width: px(right + 10.0),
        height: px(y + 8.0),
        plot_left: px(left),
        plot_right: px(right),
        axis_y: px(top - 6.0),
        ticks,
        groups: out_groups,
        deadlines,
        span: duration_text(TimeDelta::milliseconds(span_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T17:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + TimeDelta::seconds(s.into())
    }

    fn bar(step: &str, from: u32, to: u32) -> Bar {
        Bar {
            step: step.into(),
            outcome: "succeeded".into(),
            start: t(from),
            end: t(to),
            waits: vec![],
            items: None,
            title: step.into(),
        }
    }

    fn geometry() -> Geometry {
        Geometry {
            label_width: 100.0,
            plot_width: 1000.0,
            row_height: 20.0,
            heading_height: 30.0,
            top: 40.0,
            min_bar: 2.0,
        }
    }

    #[test]
    fn bars_sit_at_their_times_on_a_linear_axis_grouped_by_phase() {
        let mut approve = bar("approve", 20, 80);
        approve.waits = vec![(t(20), t(70))];
        approve.outcome = "failed".into();
        let mut revoke = bar("revoke", 0, 50);
        revoke.items = Some(12);
        let groups = vec![
            ("contain".to_string(), vec![revoke, approve]),
            ("notify".to_string(), vec![bar("notice", 80, 100)]),
        ];
        let c = layout(t(0), t(100), &groups, &[], geometry());
        let contain = &c.groups[0];
        assert_eq!(
            (contain.phase.as_str(), contain.y.as_str()),
            ("contain", "40.0")
        );
        // Rows start under the heading, one row height apart.
        let r = &contain.rows[0];
        assert_eq!(
            (r.x.as_str(), r.w.as_str(), r.y.as_str()),
            ("100.0", "500.0", "72.0")
        );
        assert_eq!(r.name, "revoke ×12");
        let a = &contain.rows[1];
        assert_eq!(
            (a.x.as_str(), a.w.as_str(), a.y.as_str()),
            ("300.0", "600.0", "92.0")
        );
        assert_eq!(a.outcome, "failed");
        assert_eq!(
            a.waits,
            vec![Segment {
                x: "300.0".into(),
                w: "500.0".into()
            }]
        );
        let notify = &c.groups[1];
        assert_eq!(notify.y, "110.0");
        assert_eq!(
            (notify.rows[0].x.as_str(), notify.rows[0].w.as_str()),
            ("900.0", "200.0")
        );
        assert_eq!(c.height, "168.0");
        assert_eq!(
            (c.plot_left.as_str(), c.plot_right.as_str()),
            ("100.0", "1100.0")
        );
    }

    #[test]
    fn an_instant_step_is_still_visible() {
        let c = layout(
            t(0),
            t(100),
            &[("contain".into(), vec![bar("x", 10, 10)])],
            &[],
            geometry(),
        );
        assert_eq!(c.groups[0].rows[0].w, "2.0");
    }

    #[test]
    fn ticks_are_round_offsets_at_most_eight_apart() {
        let c = layout(t(0), t(100), &[], &[], geometry());
        let labels: Vec<&str> = c.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "0",
                "+15 s",
                "+30 s",
                "+45 s",
                "+1 min",
                "+1 min 15 s",
                "+1 min 30 s"
            ]
        );
        assert_eq!(c.ticks[1].x, "250.0");
        let day = layout(t(0), t(0) + TimeDelta::hours(30), &[], &[], geometry());
        let labels: Vec<&str> = day.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "+6 h", "+12 h", "+18 h", "+1 d", "+1 d 6 h"]);
        // Sub-second drills get sub-second ticks.
        let fast = layout(
            t(0),
            t(0) + TimeDelta::milliseconds(700),
            &[],
            &[],
            geometry(),
        );
        assert_eq!(fast.ticks.len(), 8);
        assert_eq!(fast.ticks[1].label, "+100 ms");
    }

    #[test]
    fn deadlines_inside_the_axis_sit_at_their_time_and_later_ones_at_the_edge() {
        let d = |label: &str, at, overdue| Deadline {
            label: label.into(),
            at,
            overdue,
            title: label.into(),
        };
        let c = layout(
            t(0),
            t(100),
            &[],
            &[
                d("EU 72h", t(0) + TimeDelta::hours(72), false),
                d("asap", t(40), true),
            ],
            geometry(),
        );
        assert_eq!(c.deadlines[0].x, "1100.0");
        assert!(c.deadlines[0].beyond);
        assert_eq!(c.deadlines[1].x, "500.0");
        assert!(!c.deadlines[1].beyond && c.deadlines[1].overdue);
        assert_eq!(
            (
                c.deadlines[0].label_y.as_str(),
                c.deadlines[1].label_y.as_str()
            ),
            ("12.0", "23.0")
        );
        // The axis moves down to make room for the labels.
        assert_eq!(c.axis_y, "42.0");
    }
}
