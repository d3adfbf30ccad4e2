//! Timeline assembly, KPIs and renderers.

pub mod chronology;
pub mod clocks;
pub mod display;
pub mod gantt;
pub mod kpi_chart;
pub mod kpis;
pub mod notes;
pub mod overview;
pub mod page;
pub mod postmortem;
pub mod rehearsal;
pub mod review;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::runbook::{Phase, Runbook, StepKind};
use std::collections::BTreeMap;

use crate::store::{Incident, Snapshot, StepRun, StepStatus, TimelineEvent};

/// Milliseconds from declaration to the end of the last `contain` step,
/// once every contain step is final; none when one failed (not contained).
pub fn time_to_contain_ms(rb: &Runbook, snap: &Snapshot) -> Option<i64> {
    phase_done_at(rb, snap, Phase::Contain)
        .map(|t| (t - snap.incident.declared_at).num_milliseconds())
}

/// Milliseconds from declaration to the end of the last `notify` step;
/// none while one is open or when one failed.
pub fn time_to_notify_ms(rb: &Runbook, snap: &Snapshot) -> Option<i64> {
    phase_done_at(rb, snap, Phase::Notify)
        .map(|t| (t - snap.incident.declared_at).num_milliseconds())
}

fn phase_done_at(rb: &Runbook, snap: &Snapshot, phase: Phase) -> Option<DateTime<Utc>> {
    let mut last = None;
    let mut any = false;
    for s in rb.steps.iter().filter(|s| s.phase == Some(phase)) {
        any = true;
        let r = snap.steps.get(&s.id)?;
        // A failed step (a verification that found the tool's access left,
        // a revocation that gave up) means the phase never got there.
        if !r.status.is_final() || r.status == StepStatus::Failed {
            return None;
        }
        last = last.max(r.finished_at);
    }
    if any {
        last
    } else {
        None
    }
}

/// The drill/incident report of DESIGN.md.
pub fn report(rb: &Runbook, snap: &Snapshot) -> Json {
    let steps: Vec<Json> = rb
        .steps
        .iter()
        .map(|s| {
            let r = snap.steps.get(&s.id).cloned().unwrap_or_default();
            let items = match (&s.kind, r.items) {
                (_, Some(n)) => n,
                (StepKind::Action { .. }, None) if r.attempts > 0 => 1,
                _ => 0,
            };
            let mut o = json!({
                "id": s.id,
                "status": r.status.name(),
                "attempts": r.attempts,
                "items": items,
                "started_at": r.started_at.map(|t| t.to_rfc3339()),
                "finished_at": r.finished_at.map(|t| t.to_rfc3339()),
            });
            if let Some(e) = &r.error {
                o["error"] = json!(e);
            }
            if let Some(p) = s.phase {
                o["phase"] = json!(p.name());
            }
            o
        })
        .collect();
    let status = match snap.incident.status.name() {
        "running" => "waiting",
        s => s,
    };
    json!({
        "incident": snap.incident.id,
        "runbook": snap.incident.runbook,
        "status": status,
        "declared_at": snap.incident.declared_at.to_rfc3339(),
        "time_to_contain_ms": time_to_contain_ms(rb, snap),
        "time_to_notify_ms": time_to_notify_ms(rb, snap),
        "verification": verification(rb, snap),
        "steps": steps,
    })
}

/// Per platform, whether re-reading it proved containment: `verified` when
/// every verification step of it passed (with when, and how long after the
/// declaration), `not verified` when one failed or could not run, `pending`
/// while one has yet to finish.
pub fn verification(rb: &Runbook, snap: &Snapshot) -> Vec<Json> {
    let mut by: BTreeMap<&str, Vec<&crate::runbook::Step>> = BTreeMap::new();
    for s in rb.steps.iter().filter(|s| s.verify.is_some()) {
        if let StepKind::Action { integration, .. } = &s.kind {
            by.entry(integration.as_str()).or_default().push(s);
        }
    }
    // A verification its own `when` skipped (ads without pause_ads) checks a
    // platform this incident did not touch: left out, not "not verified".
    // Skipped for any other reason (what it re-reads was not found) it is
    // in scope, and not verified.
    let out_of_scope = |s: &crate::runbook::Step, r: &StepRun| {
        s.when.is_some() && r.status == StepStatus::Skipped && r.error.is_none()
    };
    by.into_iter()
        .filter_map(|(platform, steps)| {
            let runs: Vec<(&crate::runbook::Step, StepRun)> = steps
                .iter()
                .map(|s| (*s, snap.steps.get(&s.id).cloned().unwrap_or_default()))
                .filter(|(s, r)| !out_of_scope(s, r))
                .collect();
            (!runs.is_empty()).then_some((platform, runs))
        })
        .map(|(platform, pairs)| {
            let (steps, runs): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
            let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
            let status = if runs.iter().all(|r| r.status == StepStatus::Succeeded) {
                "verified"
            } else if runs
                .iter()
                .any(|r| r.status.is_final() && r.status != StepStatus::Succeeded)
            {
                "not verified"
            } else {
                "pending"
            };
            let mut o = json!({"platform": platform, "status": status, "steps": ids});
            if status == "verified" {
                let at = runs.iter().filter_map(|r| r.finished_at).max();
                if let Some(at) = at {
                    o["verified_at"] = json!(at.to_rfc3339());
                    o["time_to_verify_ms"] =
                        json!((at - snap.incident.declared_at).num_milliseconds());
                }
            } else {
                let why: Vec<String> = steps
                    .iter()
                    .zip(&runs)
                    .filter(|(_, r)| r.status.is_final() && r.status != StepStatus::Succeeded)
                    .map(|(s, r)| {
                        format!(
                            "{}: {}",
                            s.id,
                            r.error.as_deref().unwrap_or(r.status.name())
                        )
                    })
                    .collect();
                o["problems"] = json!(why);
            }
            o
        })
        .collect()
}

pub fn events_json(inc: &Incident, events: &[TimelineEvent]) -> Json {
    json!({"incident": inc.id, "events": events})
}

fn offset(inc: &Incident, at: DateTime<Utc>) -> String {
    let ms = (at - inc.declared_at).num_milliseconds().max(0);
    format!("+{}.{:03}s", ms / 1000, ms % 1000)
}

/// One line per event, for terminals and logs.
pub fn event_line(inc: &Incident, e: &TimelineEvent) -> String {
    display::terminal(&format!(
        "{:>4}  {}  {:>10}  {:<18} {:<8} {}",
        e.seq,
        e.at.format("%H:%M:%S%.3f"),
        offset(inc, e.at),
        e.kind,
        e.actor,
        e.message
    ))
}

pub fn render_text(inc: &Incident, events: &[TimelineEvent]) -> String {
    let mut out = display::terminal(&format!(
        "{} · {} · {} · {} · declared {} by {}",
        inc.id,
        inc.runbook,
        inc.severity,
        inc.status.name(),
        inc.declared_at.to_rfc3339(),
        inc.declared_by
    ));
    out.push('\n');
    for e in events {
        out.push_str(&event_line(inc, e));
        out.push('\n');
    }
    out
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The plan report's style (the incident pages have their own stylesheet).
pub const PAGE_STYLE: &str = "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}.overdue{color:#b00;font-weight:bold}</style>";

/// A short status word for progress displays.
pub fn step_symbol(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Succeeded => "ok",
        StepStatus::Failed => "FAILED",
        StepStatus::Skipped => "skipped",
        StepStatus::Waiting => "waiting",
        StepStatus::Running => "running",
        StepStatus::Pending => "pending",
    }
}

/// An incident as the REST API and `status --json` show it: its fields,
/// every step's state, and its regulatory clocks as of `now`.
pub fn incident_json(snap: &Snapshot, events: &[TimelineEvent], now: DateTime<Utc>) -> Json {
    let i = &snap.incident;
    let steps: Vec<Json> = snap
        .steps
        .iter()
        .map(|(s, r)| {
            json!({"id": s, "status": r.status.name(), "attempts": r.attempts,
                   "items": r.items.unwrap_or(0), "started_at": r.started_at,
                   "finished_at": r.finished_at, "error": r.error})
        })
        .collect();
    json!({
        "id": i.id, "runbook": i.runbook, "title": i.title, "status": i.status.name(),
        "declared_at": i.declared_at.to_rfc3339(), "declared_by": i.declared_by,
        "severity": i.severity, "drill": i.drill, "finished_at": i.finished_at,
        "steps": steps,
        "clocks": clocks::clocks_json(i, events, now),
    })
}
