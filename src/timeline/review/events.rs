//! The event log as a reader follows it: significant events (with the
//! phases' starts and ends derived from the step runs) and every event.

use crate::store::EventKind;
use chrono::{DateTime, Utc};

use super::{EventRow, Facts, Record, Rehearsal, PHASES};
use crate::timeline::display::{offset_label, shown};

/// Kinds a reader needs to follow the story; the rest (each attempt of
/// each item) are one click away.
fn significant(kind: &str) -> bool {
    kind.starts_with("incident.")
        || kind.starts_with("approval.")
        || kind.starts_with("manual.")
        || kind.starts_with("notice.")
        || kind.starts_with("clock.")
        || kind.starts_with("decision.")
        || kind.starts_with("leader.")
        || matches!(
            EventKind::parse(kind),
            Some(
                EventKind::StepFailed
                    | EventKind::ItemFailed
                    | EventKind::MomentRecorded
                    | EventKind::ExceptionApplied
                    | EventKind::Note
                    | EventKind::ContainmentVerified
                    | EventKind::ContainmentFailed
                    | EventKind::WaitCut
                    | EventKind::SlackRefused
            )
        )
}

fn event_class(kind: &str) -> &'static str {
    match EventKind::parse(kind) {
        Some(
            EventKind::StepFailed
            | EventKind::ItemFailed
            | EventKind::IncidentFailed
            | EventKind::ContainmentFailed
            | EventKind::ApprovalRejected
            | EventKind::ApprovalRefused
            | EventKind::SlackRefused
            | EventKind::DecisionLate,
        ) => "bad",
        Some(EventKind::IncidentCompleted | EventKind::ContainmentVerified) => "good",
        // The rows the review derives for phases (never stored events).
        _ if kind.starts_with("phase.") => "phase",
        _ => "",
    }
}

/// (significant events, every event up to the lens's cap).
pub(super) fn rows(f: &Facts) -> (Vec<EventRow>, Vec<EventRow>) {
    let snap = &f.rec.snap;
    let inc = &snap.incident;
    let (rec, steps, zone) = (f.rec, &f.steps, f.lens.zone);
    let row =
        |seq: String, at: DateTime<Utc>, kind: &str, step: &str, actor: &str, message: &str| {
            EventRow {
                seq,
                at: shown(at, zone),
                offset: offset_label(at - inc.declared_at),
                kind: kind.to_string(),
                step: step.to_string(),
                actor: actor.to_string(),
                message: message.to_string(),
                class: event_class(kind).to_string(),
            }
        };
    let recorded = |e: &crate::store::TimelineEvent| {
        row(
            e.seq.to_string(),
            e.at,
            &e.kind,
            e.step.as_deref().unwrap_or(""),
            &e.actor,
            &e.message,
        )
    };
    let mut key_events: Vec<EventRow> = Vec::new();
    let mut phase_marks: Vec<(DateTime<Utc>, String, String)> = Vec::new();
    for phase in PHASES {
        let ids: Vec<&String> = steps
            .iter()
            .filter(|(_, p, _)| *p == Some(phase))
            .map(|x| &x.0)
            .collect();
        let runs: Vec<_> = ids.iter().filter_map(|id| snap.steps.get(*id)).collect();
        if let Some(first) = runs.iter().filter_map(|r| r.started_at).min() {
            phase_marks.push((
                first,
                "phase.started".to_string(),
                format!("{} phase started", phase.name()),
            ));
        }
        if !runs.is_empty() && runs.len() == ids.len() && runs.iter().all(|r| r.status.is_final()) {
            if let Some(last) = runs.iter().filter_map(|r| r.finished_at).max() {
                phase_marks.push((
                    last,
                    "phase.finished".to_string(),
                    format!("{} phase finished", phase.name()),
                ));
            }
        }
    }
    phase_marks.sort();
    let mut marks = phase_marks.into_iter().peekable();
    for e in &rec.events {
        while let Some((at, kind, msg)) = marks.next_if(|m| m.0 <= e.at) {
            key_events.push(row(String::new(), at, &kind, "", "quench", &msg));
        }
        if significant(&e.kind) {
            key_events.push(recorded(e));
        }
    }
    for (at, kind, msg) in marks {
        key_events.push(row(String::new(), at, &kind, "", "quench", &msg));
    }
    let events: Vec<EventRow> = rec
        .events
        .iter()
        .take(f.lens.events_cap)
        .map(recorded)
        .collect();
    (key_events, events)
}

/// A drill's rehearsal list, as recorded at its end.
pub(super) fn rehearsal(rec: &Record) -> Option<Rehearsal> {
    rec.events
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::DrillRehearsal)
        .map(|e| crate::timeline::rehearsal::render_text(&e.data))
        .filter(|t| !t.is_empty())
        .map(|t| {
            let mut lines = t.lines();
            let heading = lines
                .next()
                .unwrap_or_default()
                .trim_end_matches(':')
                .to_string();
            Rehearsal {
                heading,
                items: lines
                    .map(|l| l.trim_start_matches("- ").to_string())
                    .collect(),
            }
        })
}
