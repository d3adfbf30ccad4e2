//! Governance KPIs over many incidents: how fast the team contains and
//! notifies (median, 90th percentile, worst), how many incidents end well,
//! and how many regulatory clocks ran out. Real incidents and drills are
//! reported apart: drills measure readiness, incidents measure outcomes.

use crate::store::EventKind;
use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::runbook::{Known, Runbook};
use crate::store::{IncidentStatus, Store, StoreError};

/// One incident's contribution.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: String,
    pub runbook: String,
    pub declared_at: DateTime<Utc>,
    pub drill: bool,
    pub status: IncidentStatus,
    pub time_to_contain_ms: Option<i64>,
    pub time_to_notify_ms: Option<i64>,
    pub clocks: usize,
    pub overdue_clocks: usize,
    pub notices_sent: usize,
}

/// Reads every incident declared at or after `since` from the store.
pub fn rows(
    store: &Store,
    known: &Known,
    since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Vec<Row>, StoreError> {
    let mut out = Vec::new();
    for inc in store.incidents()? {
        if since.is_some_and(|s| inc.declared_at < s) {
            continue;
        }
        let snap = store.snapshot(&inc.id)?;
        let events = store.events(&inc.id)?;
        // The runbook as declared; one that no longer loads still counts,
        // without phase timings.
        let rb: Option<Runbook> =
            crate::runbook::load(&inc.runbook_file, &inc.runbook_source, known).ok();
        let clocks = super::clocks::clocks_json(&inc, &events, now);
        out.push(Row {
            id: inc.id.clone(),
            runbook: inc.runbook.clone(),
            declared_at: inc.declared_at,
            drill: inc.drill,
            status: inc.status,
            time_to_contain_ms: rb
                .as_ref()
                .and_then(|rb| super::time_to_contain_ms(rb, &snap)),
            time_to_notify_ms: rb
                .as_ref()
                .and_then(|rb| super::time_to_notify_ms(rb, &snap)),
            clocks: clocks.len(),
            overdue_clocks: clocks.iter().filter(|c| c["overdue"] == true).count(),
            notices_sent: events
                .iter()
                .filter(|e| e.kind == EventKind::NoticeSent)
                .count(),
        });
    }
    Ok(out)
}

/// `--since` / `?since=`: a date (midnight UTC) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| format!("\"{s}\" is not a date: write 2026-11-01 or 2026-11-01T00:00:00Z"))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn timing(mut values: Vec<i64>) -> Json {
    values.sort_unstable();
    json!({
        "count": values.len(),
        "median_ms": percentile(&values, 50.0),
        "p90_ms": percentile(&values, 90.0),
        "max_ms": values.last(),
    })
}

fn group(rows: &[&Row]) -> Json {
    let count = |s: IncidentStatus| rows.iter().filter(|r| r.status == s).count();
    json!({
        "incidents": rows.len(),
        "completed": count(IncidentStatus::Completed),
        "failed": count(IncidentStatus::Failed),
        "open": count(IncidentStatus::Running) + count(IncidentStatus::Waiting),
        "time_to_contain": timing(rows.iter().filter_map(|r| r.time_to_contain_ms).collect()),
        "time_to_notify": timing(rows.iter().filter_map(|r| r.time_to_notify_ms).collect()),
        "clocks": rows.iter().map(|r| r.clocks).sum::<usize>(),
        "overdue_clocks": rows.iter().map(|r| r.overdue_clocks).sum::<usize>(),
        "notices_sent": rows.iter().map(|r| r.notices_sent).sum::<usize>(),
    })
}

pub fn summarize(rows: &[Row], since: Option<DateTime<Utc>>) -> Json {
    let real: Vec<&Row> = rows.iter().filter(|r| !r.drill).collect();
    let drills: Vec<&Row> = rows.iter().filter(|r| r.drill).collect();
    json!({
        "since": since.map(|s| s.to_rfc3339()),
        "incidents": group(&real),
        "drills": group(&drills),
    })
}

fn ms(v: &Json) -> String {
    v.as_i64()
        .map(|ms| {
            crate::source::duration::duration_text(std::time::Duration::from_millis(
                ms.max(0) as u64
            ))
        })
        .unwrap_or_else(|| "-".into())
}

/// Rows of (label, incidents value, drills value).
pub fn lines(k: &Json) -> Vec<(&'static str, String, String)> {
    let both = |f: &dyn Fn(&Json) -> String| (f(&k["incidents"]), f(&k["drills"]));
    let mut out = Vec::new();
    let mut add = |label: &'static str, f: &dyn Fn(&Json) -> String| {
        let (a, b) = both(f);
        out.push((label, a, b));
    };
    add("declared", &|g| g["incidents"].to_string());
    add("completed", &|g| g["completed"].to_string());
    add("failed", &|g| g["failed"].to_string());
    add("open", &|g| g["open"].to_string());
    add("time to contain, median", &|g| {
        ms(&g["time_to_contain"]["median_ms"])
    });
    add("time to contain, p90", &|g| {
        ms(&g["time_to_contain"]["p90_ms"])
    });
    add("time to contain, worst", &|g| {
        ms(&g["time_to_contain"]["max_ms"])
    });
    add("time to notify, median", &|g| {
        ms(&g["time_to_notify"]["median_ms"])
    });
    add("time to notify, p90", &|g| {
        ms(&g["time_to_notify"]["p90_ms"])
    });
    add("time to notify, worst", &|g| {
        ms(&g["time_to_notify"]["max_ms"])
    });
    add("regulatory clocks", &|g| g["clocks"].to_string());
    add("clocks overdue", &|g| g["overdue_clocks"].to_string());
    add("notices sent", &|g| g["notices_sent"].to_string());
    out
}

pub fn render_text(k: &Json) -> String {
    let mut out = format!(
        "KPIs{}\n{:<26} {:>12} {:>12}\n",
        k["since"]
            .as_str()
            .map(|s| format!(" since {s}"))
            .unwrap_or_default(),
        "",
        "incidents",
        "drills"
    );
    for (label, a, b) in lines(k) {
        out.push_str(&format!("{label:<26} {a:>12} {b:>12}\n"));
    }
    out
}

pub fn render_markdown(k: &Json) -> String {
    let mut out = format!(
        "# Incident-response KPIs{}\n\n| | Incidents | Drills |\n|---|---:|---:|\n",
        k["since"]
            .as_str()
            .map(|s| format!(" since {s}"))
            .unwrap_or_default()
    );
    for (label, a, b) in lines(k) {
        out.push_str(&format!("| {label} | {a} | {b} |\n"));
    }
    out
}

pub fn render_html_table(k: &Json) -> String {
    let mut rows = String::new();
    for (label, a, b) in lines(k) {
        rows.push_str(&format!(
            "<tr><td>{label}</td><td>{}</td><td>{}</td></tr>\n",
            super::html_escape(&a),
            super::html_escape(&b)
        ));
    }
    format!("<table><thead><tr><th></th><th>Incidents</th><th>Drills</th></tr></thead><tbody>\n{rows}</tbody></table>")
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // any instant will do here
mod tests {
    use super::*;

    fn row(drill: bool, status: IncidentStatus, ttc: Option<i64>) -> Row {
        Row {
            id: "x".into(),
            runbook: "r".into(),
            declared_at: Utc::now(),
            drill,
            status,
            time_to_contain_ms: ttc,
            time_to_notify_ms: None,
            clocks: 2,
            overdue_clocks: usize::from(status == IncidentStatus::Waiting),
            notices_sent: 1,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).map(|i| i * 100).collect();
        assert_eq!(percentile(&v, 50.0), Some(500));
        assert_eq!(percentile(&v, 90.0), Some(900));
        assert_eq!(percentile(&[7], 90.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn incidents_and_drills_are_kept_apart() {
        let rows = vec![
            row(false, IncidentStatus::Completed, Some(60_000)),
            row(false, IncidentStatus::Waiting, Some(180_000)),
            row(false, IncidentStatus::Failed, None),
            row(true, IncidentStatus::Completed, Some(130)),
        ];
        let k = summarize(&rows, None);
        assert_eq!(k["incidents"]["incidents"], 3);
        assert_eq!(k["incidents"]["open"], 1);
        assert_eq!(k["incidents"]["failed"], 1);
        assert_eq!(k["incidents"]["time_to_contain"]["count"], 2);
        assert_eq!(k["incidents"]["time_to_contain"]["median_ms"], 60_000);
        assert_eq!(k["incidents"]["time_to_contain"]["max_ms"], 180_000);
        assert_eq!(k["incidents"]["overdue_clocks"], 1);
        assert_eq!(k["drills"]["time_to_contain"]["median_ms"], 130);
        let text = render_text(&k);
        assert!(text.contains("time to contain, median"), "{text}");
        assert!(text.contains("1m 0s") || text.contains("1m"), "{text}");
    }
}
