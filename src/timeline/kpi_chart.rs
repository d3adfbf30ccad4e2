//! The KPI chart's geometry: time to contain and to notify per incident
//! over a window of days, drills drawn apart from real incidents, and a
//! trend line per series. The y axis is logarithmic: a drill contains in
//! seconds and a real incident in hours, and both must stay readable on
//! one chart.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::display::duration_text;

/// One incident's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub id: String,
    pub at: DateTime<Utc>,
    pub drill: bool,
    pub contain_ms: Option<i64>,
    pub notify_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Chart {
    pub width: String,
    pub height: String,
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    pub dots: Vec<Dot>,
    pub trends: Vec<Trend>,
    pub days: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tick {
    /// x for an x tick, y for a y tick.
    pub at: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dot {
    pub x: String,
    pub y: String,
    /// `contain` or `notify`, then ` drill` for a drill.
    pub class: String,
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Trend {
    pub class: String,
    pub d: String,
    pub title: String,
}

const LEFT: f64 = 70.0;
const WIDTH: f64 = 680.0;
const TOP: f64 = 10.0;
const HEIGHT: f64 = 220.0;

/// Round durations for the y axis, in milliseconds.
const Y_TICKS: &[i64] = &[
    100,
    1_000,
    10_000,
    60_000,
    600_000,
    3_600_000,
    21_600_000,
    86_400_000,
    604_800_000,
];

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// Lays out `points` over the `days` before `now`.
pub fn layout(points: &[Point], now: DateTime<Utc>, days: i64) -> Chart {
    let from = now - TimeDelta::days(days);
    let points: Vec<&Point> = points
        .iter()
        .filter(|p| p.at >= from && p.at <= now)
        .collect();
    let values: Vec<i64> = points
        .iter()
        .flat_map(|p| [p.contain_ms, p.notify_ms])
        .flatten()
        .map(|v| v.max(1))
        .collect();
    // The y range: the decades the values span, at least 1 s to 1 h.
    let lo = values.iter().copied().min().unwrap_or(1_000).min(1_000) as f64;
    let hi = values
        .iter()
        .copied()
        .max()
        .unwrap_or(3_600_000)
        .max(3_600_000) as f64;
    let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
    let y_of = |ms: i64| {
        let v = (ms.max(1) as f64).log10().clamp(lo, hi);
        TOP + HEIGHT * (hi - v) / (hi - lo)
    };
    let span_ms = (now - from).num_milliseconds().max(1) as f64;
    let x_of = |t: DateTime<Utc>| {
        let ms = (t - from).num_milliseconds().clamp(0, span_ms as i64) as f64;
        LEFT + WIDTH * ms / span_ms
    };
    let y_ticks = Y_TICKS
        .iter()
        .filter(|&&ms| {
            let l = (ms as f64).log10();
            l >= lo && l <= hi
        })
        .map(|&ms| Tick {
            at: px(y_of(ms)),
            label: duration_text(TimeDelta::milliseconds(ms)),
        })
        .collect();
    let step = (days / 6).max(1);
    let x_ticks = (0..=days / step)
        .map(|i| {
            let t = from + TimeDelta::days(i * step);
            Tick {
                at: px(x_of(t)),
                label: t.format("%b %-d").to_string(),
            }
        })
        .collect();
    let mut dots = Vec::new();
    for p in &points {
        for (series, v) in [("contain", p.contain_ms), ("notify", p.notify_ms)] {
            let Some(ms) = v else { continue };
            dots.push(Dot {
                x: px(x_of(p.at)),
                y: px(y_of(ms)),
                class: if p.drill {
                    format!("{series} drill")
                } else {
                    series.to_string()
                },
                id: p.id.clone(),
                title: format!(
                    "{}{}: time to {series} {}",
                    p.id,
                    if p.drill { " (drill)" } else { "" },
                    duration_text(TimeDelta::milliseconds(ms))
                ),
            });
        }
    }
    let mut trends = Vec::new();
    for drill in [false, true] {
        for series in ["contain", "notify"] {
            let pts: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.drill == drill)
                .filter_map(|p| {
                    let v = if series == "contain" {
                        p.contain_ms
                    } else {
                        p.notify_ms
                    }?;
                    Some((
                        (p.at - from).num_seconds() as f64 / 86_400.0,
                        (v.max(1) as f64).log10(),
                    ))
                })
                .collect();
            let Some((a, b)) = fit(&pts) else { continue };
            let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(l, h), (x, _)| {
                (l.min(*x), h.max(*x))
            });
            let at = |d: f64| from + TimeDelta::seconds((d * 86_400.0) as i64);
            let ms = |d: f64| 10f64.powf(a + b * d).round() as i64;
            let kind = if drill { "drills" } else { "incidents" };
            trends.push(Trend {
                class: if drill {
                    format!("trend {series} drill")
                } else {
                    format!("trend {series}")
                },
                d: format!(
                    "M{},{} L{},{}",
                    px(x_of(at(x0))),
                    px(y_of(ms(x0))),
                    px(x_of(at(x1))),
                    px(y_of(ms(x1)))
                ),
                title: format!(
                    "Trend of time to {series} ({kind}, {} points): {} to {}",
                    pts.len(),
                    duration_text(TimeDelta::milliseconds(ms(x0))),
                    duration_text(TimeDelta::milliseconds(ms(x1)))
                ),
            });
        }
    }
    Chart {
        width: px(LEFT + WIDTH + 20.0),
        height: px(TOP + HEIGHT + 30.0),
        left: px(LEFT),
        right: px(LEFT + WIDTH),
        top: px(TOP),
        bottom: px(TOP + HEIGHT),
        y_ticks,
        x_ticks,
        dots,
        trends,
        days,
    }
}

/// Least squares `y = a + b x`; None for fewer than two distinct x.
fn fit(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return None;
    }
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = pts.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if sxx < 1e-9 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn point(id: &str, days_ago: i64, drill: bool, contain: i64) -> Point {
        Point {
            id: id.into(),
            at: now() - TimeDelta::days(days_ago),
            drill,
            contain_ms: Some(contain),
            notify_ms: None,
        }
    }

    #[test]
    fn dots_sit_on_a_day_axis_and_a_log_time_axis() {
        let c = layout(
            &[
                point("A", 90, false, 1_000),
                point("B", 45, true, 3_600_000),
                point("OLD", 91, false, 5),
            ],
            now(),
            90,
        );
        // 1 s to 1 h: decades 0..=4 of 10^3..10^7 ms.
        assert_eq!(
            c.dots.len(),
            2,
            "the incident before the window is left out"
        );
        assert_eq!(
            (c.dots[0].x.as_str(), c.dots[0].y.as_str()),
            ("70.0", "230.0")
        );
        assert_eq!(c.dots[0].class, "contain");
        // 1 h = 10^6.56 ms, so 0.44 decades below the top of 10^7.
        assert_eq!(
            (c.dots[1].x.as_str(), c.dots[1].y.as_str()),
            ("410.0", "34.4")
        );
        assert_eq!(c.dots[1].class, "contain drill");
        assert!(c.dots[1].title.contains("(drill)"));
        let labels: Vec<&str> = c.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["1 s", "10 s", "1 min", "10 min", "1 h"]);
        assert_eq!(c.x_ticks.first().map(|t| t.label.as_str()), Some("Sep 2"));
    }

    #[test]
    fn a_trend_follows_the_series_and_drills_trend_apart() {
        let c = layout(
            &[
                point("A", 60, false, 100_000),
                point("B", 30, false, 10_000),
                point("C", 0, false, 1_000),
                point("D", 10, true, 1_000),
            ],
            now(),
            90,
        );
        assert_eq!(c.trends.len(), 1, "one drill is no trend");
        let t = &c.trends[0];
        assert_eq!(t.class, "trend contain");
        assert!(t.title.contains("1 min 40 s to 1 s"), "{}", t.title);
        assert!(t.d.starts_with("M296.7,"), "{}", t.d);
    }

    #[test]
    fn the_fit_is_least_squares() {
        assert_eq!(fit(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]), Some((1.0, 2.0)));
        assert_eq!(fit(&[(1.0, 1.0), (1.0, 3.0)]), None);
    }
}
