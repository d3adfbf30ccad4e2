//! The index page's content: open incidents first, then the most recent;
//! the KPIs over the last 90 days as a chart and a table; filters by
//! runbook and by drill or real incident.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::display::{duration_text, shown, Shown};
use super::kpi_chart;
use super::kpis::Row;
use crate::store::Incident;

/// The chart's window.
pub const DAYS: i64 = 90;

/// Which incidents the page lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Filter {
    pub runbook: Option<String>,
    /// `real`, `drill`, or all when absent.
    pub kind: Option<String>,
}

impl Filter {
    pub fn check(&self) -> Result<(), String> {
        match self.kind.as_deref() {
            None | Some("" | "all" | "real" | "drill") => Ok(()),
            Some(k) => Err(format!("kind \"{k}\" is not one of all, real, drill")),
        }
    }

    fn keeps(&self, runbook: &str, drill: bool) -> bool {
        let runbook_ok = match self.runbook.as_deref() {
            None | Some("") => true,
            Some(r) => r == runbook,
        };
        let kind_ok = match self.kind.as_deref() {
            Some("real") => !drill,
            Some("drill") => drill,
            _ => true,
        };
        runbook_ok && kind_ok
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub incidents: Vec<Line>,
    pub shown: usize,
    pub total: usize,
    pub runbooks: Vec<Choice>,
    pub kinds: Vec<Choice>,
    pub chart: kpi_chart::Chart,
    /// (label, real incidents, drills), from `kpis::summarize`.
    pub kpis: Vec<[String; 3]>,
    pub zone: String,
    pub generated: Shown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub id: String,
    pub title: String,
    pub runbook: String,
    pub severity: String,
    pub status: String,
    pub open: bool,
    pub drill: bool,
    pub declared: Shown,
    pub declared_by: String,
    pub contain: String,
    pub notify: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Newest first within each group: open ones, then the rest.
pub fn overview(
    incidents: &[Incident],
    rows: &[Row],
    filter: &Filter,
    now: DateTime<Utc>,
    zone: Tz,
) -> Overview {
    let figure = |v: Option<i64>| {
        v.map(|ms| duration_text(TimeDelta::milliseconds(ms)))
            .unwrap_or_else(|| "-".into())
    };
    let mut kept: Vec<&Incident> = incidents
        .iter()
        .filter(|i| filter.keeps(&i.runbook, i.drill))
        .collect();
    kept.sort_by_key(|i| (!i.status.is_open(), std::cmp::Reverse(i.declared_at)));
    let lines: Vec<Line> = kept
        .iter()
        .map(|i| {
            let row = rows.iter().find(|r| r.id == i.id);
            Line {
                id: i.id.clone(),
                title: i.title.clone(),
                runbook: i.runbook.clone(),
                severity: i.severity.name().to_string(),
                status: i.status.name().to_string(),
                open: i.status.is_open(),
                drill: i.drill,
                declared: shown(i.declared_at, zone),
                declared_by: i.declared_by.clone(),
                contain: figure(row.and_then(|r| r.time_to_contain_ms)),
                notify: figure(row.and_then(|r| r.time_to_notify_ms)),
            }
        })
        .collect();
    let kept_rows: Vec<Row> = rows
        .iter()
        .filter(|r| filter.keeps(&r.runbook, r.drill))
        .cloned()
        .collect();
    let points: Vec<kpi_chart::Point> = kept_rows
        .iter()
        .map(|r| kpi_chart::Point {
            id: r.id.clone(),
            at: r.declared_at,
            drill: r.drill,
            contain_ms: r.time_to_contain_ms,
            notify_ms: r.time_to_notify_ms,
        })
        .collect();
    let since = now - TimeDelta::days(DAYS);
    let recent: Vec<Row> = kept_rows
        .iter()
        .filter(|r| r.declared_at >= since)
        .cloned()
        .collect();
    let summary = super::kpis::summarize(&recent, Some(since));
    let kpis = super::kpis::lines(&summary)
        .into_iter()
        .map(|(l, a, b)| [l.to_string(), a, b])
        .collect();
    let mut names: Vec<String> = incidents.iter().map(|i| i.runbook.clone()).collect();
    names.sort();
    names.dedup();
    let chosen = filter.runbook.clone().unwrap_or_default();
    let mut runbooks = vec![Choice {
        value: String::new(),
        label: "every runbook".into(),
        selected: chosen.is_empty(),
    }];
    runbooks.extend(names.into_iter().map(|n| Choice {
        selected: n == chosen,
        label: n.clone(),
        value: n,
    }));
    let kind = filter.kind.clone().unwrap_or_default();
    let kinds = [
        ("", "drills and real"),
        ("real", "real incidents"),
        ("drill", "drills"),
    ]
    .into_iter()
    .map(|(v, l)| Choice {
        value: v.into(),
        label: l.into(),
        selected: kind == v || (v.is_empty() && kind == "all"),
    })
    .collect();
    Overview {
        shown: lines.len(),
        total: incidents.len(),
        incidents: lines,
        runbooks,
        kinds,
        chart: kpi_chart::layout(&points, now, DAYS),
        kpis,
        zone: zone.name().to_string(),
        generated: shown(now, zone),
    }
}
