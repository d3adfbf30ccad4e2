//! Timeline assembly, KPIs and renderers.

pub mod chronology;
pub mod clocks;
pub mod kpis;
pub mod notes;
pub mod rehearsal;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::runbook::{Phase, Runbook, StepKind};
use std::collections::BTreeMap;

use crate::store::{Incident, NoticeDraft, Snapshot, StepRun, StepStatus, TimelineEvent};

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
    format!(
        "{:>4}  {}  {:>10}  {:<18} {:<8} {}",
        e.seq,
        e.at.format("%H:%M:%S%.3f"),
        offset(inc, e.at),
        e.kind,
        e.actor,
        e.message
    )
}

pub fn render_text(inc: &Incident, events: &[TimelineEvent]) -> String {
    let mut out = format!(
        "{} · {} · {} · {} · declared {} by {}\n",
        inc.id,
        inc.runbook,
        inc.severity,
        inc.status.name(),
        inc.declared_at.to_rfc3339(),
        inc.declared_by
    );
    for e in events {
        out.push_str(&event_line(inc, e));
        out.push('\n');
    }
    out
}

/// The Markdown export: header, regulatory clocks, then every event.
pub fn render_markdown(inc: &Incident, events: &[TimelineEvent]) -> String {
    let clocks = clocks::clocks_json(inc, events, Utc::now());
    let mut head = render_markdown_events(inc, events);
    if !clocks.is_empty() {
        let mut table = String::from("\n## Regulatory clocks\n\n| Jurisdiction | Recipient | Obligation | Deadline | Status | Source |\n|---|---|---|---|---|---|\n");
        for c in &clocks {
            let s = |k: &str| c[k].as_str().unwrap_or("").replace('|', "\\|");
            table.push_str(&format!(
                "| {} | {} | {} | {} from {} | {}{} | {} |\n",
                s("jurisdiction"),
                s("recipient"),
                s("title"),
                s("deadline"),
                s("starts_at"),
                if c["overdue"] == true {
                    "**OVERDUE** "
                } else {
                    ""
                },
                s("describe"),
                s("source")
            ));
        }
        // Clocks go between the header and the events table.
        if let Some(i) = head.find("\n| # |") {
            head.insert_str(i, &table);
        }
    }
    head
}

fn render_markdown_events(inc: &Incident, events: &[TimelineEvent]) -> String {
    let mut out = format!(
        "# {} — {}\n\n- Runbook: `{}`\n- Severity: {}\n- Status: {}\n- Declared: {} by {}\n\n| # | Time (UTC) | Since declared | Event | Step | Actor | Detail |\n|---|---|---|---|---|---|---|\n",
        inc.id,
        inc.title,
        inc.runbook,
        inc.severity,
        inc.status.name(),
        inc.declared_at.to_rfc3339(),
        inc.declared_by
    );
    for e in events {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            e.seq,
            e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            offset(inc, e.at),
            e.kind,
            e.step.as_deref().unwrap_or(""),
            e.actor,
            e.message.replace('|', "\\|").replace('\n', " ")
        ));
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

pub const PAGE_STYLE: &str = "<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}.overdue{color:#b00;font-weight:bold}</style>";

/// The HTML export (`timeline --format html`): clocks and events.
pub fn render_html(inc: &Incident, events: &[TimelineEvent]) -> String {
    html_document(inc, events, None, &[], Utc::now(), false)
}

/// The daemon's page for one incident: its steps too, and it refreshes
/// itself while the incident is open.
pub fn render_html_page(
    snap: &Snapshot,
    events: &[TimelineEvent],
    notices: &[NoticeDraft],
    now: DateTime<Utc>,
    refresh: bool,
) -> String {
    html_document(&snap.incident, events, Some(snap), notices, now, refresh)
}

/// Each notice's latest version: drafted, approved (by whom, when), sent.
fn notices_html(notices: &[NoticeDraft], events: &[TimelineEvent]) -> String {
    if notices.is_empty() {
        return String::new();
    }
    let mut rows = String::new();
    for d in notices {
        let sent = events.iter().find(|e| {
            e.kind == "notice.sent"
                && e.data["version"] == d.version
                && e.data["audience"] == d.audience.as_str()
                && e.data["jurisdiction"] == json!(d.jurisdiction)
                && e.step.as_deref() == Some(d.step.as_str())
        });
        let state = match (sent, &d.approved_by, d.approved_at) {
            (Some(e), _, _) => format!("sent by {} at {}", e.actor, e.at.to_rfc3339()),
            (None, Some(by), Some(at)) => format!("ready: approved by {by} at {}", at.to_rfc3339()),
            _ => "draft: not approved".to_string(),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>v{}</td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&d.audience),
            html_escape(d.jurisdiction.as_deref().unwrap_or("-")),
            d.version,
            html_escape(&d.template),
            html_escape(&state),
        ));
    }
    format!("<h2>Notices</h2><table><thead><tr><th>Audience</th><th>Jurisdiction</th><th>Version</th><th>Template</th><th>State</th></tr></thead><tbody>\n{rows}</tbody></table>")
}

fn html_document(
    inc: &Incident,
    events: &[TimelineEvent],
    snap: Option<&Snapshot>,
    notices: &[NoticeDraft],
    now: DateTime<Utc>,
    refresh: bool,
) -> String {
    let notices_html = notices_html(notices, events);
    // A drill's rehearsal list, as recorded at its end.
    let rehearsal_html = events
        .iter()
        .rev()
        .find(|e| e.kind == "drill.rehearsal")
        .map(|e| rehearsal::render_text(&e.data))
        .filter(|t| !t.is_empty())
        .map(|t| {
            let mut lines = t.lines();
            let head = lines.next().unwrap_or_default();
            let items: String = lines
                .map(|l| format!("<li>{}</li>", html_escape(l.trim_start_matches("- "))))
                .collect();
            format!(
                "<h2>{}</h2><ul class=\"rehearsal\">{items}</ul>",
                html_escape(head.trim_end_matches(':'))
            )
        })
        .unwrap_or_default();
    let mut clock_rows = String::new();
    for c in clocks::clocks_json(inc, events, now) {
        let g = |k: &str| html_escape(c[k].as_str().unwrap_or(""));
        clock_rows.push_str(&format!(
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{}\">source</a></td></tr>\n",
            if c["overdue"] == true { " class=\"overdue\"" } else { "" },
            g("jurisdiction"),
            g("recipient"),
            g("title"),
            g("describe"),
            g("source")
        ));
    }
    let clocks_html = if clock_rows.is_empty() {
        String::new()
    } else {
        format!("<h2>Regulatory clocks</h2><table><thead><tr><th>Jurisdiction</th><th>Recipient</th><th>Obligation</th><th>Status</th><th></th></tr></thead><tbody>\n{clock_rows}</tbody></table>")
    };
    let steps_html = match snap {
        Some(snap) if !snap.steps.is_empty() => {
            let mut rows = String::new();
            for (sid, r) in &snap.steps {
                rows.push_str(&format!(
                    "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    if r.status == StepStatus::Failed {
                        " class=\"overdue\""
                    } else {
                        ""
                    },
                    html_escape(sid),
                    r.status.name(),
                    r.attempts,
                    r.items.map(|n| n.to_string()).unwrap_or_default(),
                    html_escape(r.error.as_deref().unwrap_or("")),
                ));
            }
            format!("<h2>Steps</h2><table><thead><tr><th>Step</th><th>Status</th><th>Attempts</th><th>Items</th><th>Error</th></tr></thead><tbody>\n{rows}</tbody></table>")
        }
        _ => String::new(),
    };
    let mut rows = String::new();
    for e in events {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            e.seq,
            html_escape(&e.at.to_rfc3339()),
            offset(inc, e.at),
            html_escape(&e.kind),
            html_escape(e.step.as_deref().unwrap_or("")),
            html_escape(&e.actor),
            html_escape(&e.message)
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{refresh}<title>{id} timeline</title>{style}</head>\
<body><h1>{id} — {title}</h1><p>Runbook <code>{rb}</code> · {sev} · status <strong>{status}</strong> · declared {at} by {by}</p>{rehearsal_html}{clocks_html}{notices_html}{steps_html}\
<h2>Timeline</h2><table><thead><tr><th>#</th><th>Time</th><th>Since declared</th><th>Event</th><th>Step</th><th>Actor</th><th>Detail</th></tr></thead><tbody>\n{rows}</tbody></table></body></html>\n",
        refresh = if refresh { "<meta http-equiv=\"refresh\" content=\"15\">" } else { "" },
        style = PAGE_STYLE,
        id = html_escape(&inc.id),
        title = html_escape(&inc.title),
        rb = html_escape(&inc.runbook),
        sev = html_escape(&inc.severity),
        status = inc.status.name(),
        at = inc.declared_at.to_rfc3339(),
        by = html_escape(&inc.declared_by),
    )
}

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
