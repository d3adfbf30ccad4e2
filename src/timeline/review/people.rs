//! People's part: each approval and manual task, who was asked, who
//! answered and when; and the stretches each step spent waiting on them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Lens, Record, Task, Waits};
use crate::store::EventKind;
use crate::store::TimelineEvent;
use crate::timeline::display::{duration_text, shown};

/// Who holds each of `roles`: "legal (U0LEGAL1, U0LEGAL2)".
fn asked_text(roles: &[String], members: &BTreeMap<String, Vec<String>>) -> String {
    if roles.is_empty() {
        return "anyone".into();
    }
    roles
        .iter()
        .map(|r| match members.get(r) {
            Some(m) if !m.is_empty() => format!("{r} ({})", m.join(", ")),
            _ => format!("{r} (no members configured)"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// People's tasks: when asked, when answered, by whom.
pub(super) fn tasks(rec: &Record, lens: &Lens) -> Vec<Task> {
    let mut out: Vec<Task> = Vec::new();
    // Per step: its task's index in `out`, and when it was asked.
    let mut by_step: BTreeMap<String, (usize, Option<DateTime<Utc>>)> = BTreeMap::new();
    for e in &rec.events {
        let Some(step) = e.step.as_deref() else {
            continue;
        };
        let kind = match EventKind::parse(&e.kind) {
            Some(
                EventKind::ApprovalRequested
                | EventKind::ApprovalGranted
                | EventKind::ApprovalRejected,
            ) => "approval",
            Some(EventKind::ManualRequested | EventKind::ManualDone) => "manual task",
            _ => continue,
        };
        let roles: Vec<String> = e.data["approvers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let text = e.data["text"].as_str().unwrap_or(&e.message).to_string();
        let (i, asked) = by_step.entry(step.to_string()).or_insert_with(|| {
            out.push(Task {
                step: step.to_string(),
                kind: kind.to_string(),
                text: text.clone(),
                asked: asked_text(&roles, lens.roles),
                asked_at: None,
                answered_by: None,
                answer: "waiting".into(),
                answered_at: None,
                took: None,
                open: true,
                automatic: false,
            });
            (out.len() - 1, None)
        });
        let t = &mut out[*i];
        match EventKind::parse(&e.kind) {
            Some(EventKind::ApprovalRequested | EventKind::ManualRequested) => {
                *asked = Some(e.at);
                t.asked_at = Some(shown(e.at, lens.zone));
            }
            decided => {
                // A drill decides without asking: asked when the step started.
                let asked = asked
                    .or_else(|| rec.snap.steps.get(step).and_then(|r| r.started_at))
                    .unwrap_or(e.at);
                if t.asked_at.is_none() {
                    t.asked_at = Some(shown(asked, lens.zone));
                }
                t.automatic = e.actor == "drill";
                t.answered_by = Some(e.actor.clone());
                t.answer = match decided {
                    Some(EventKind::ApprovalGranted) => "approved",
                    Some(EventKind::ApprovalRejected) => "rejected",
                    _ => "done",
                }
                .into();
                t.answered_at = Some(shown(e.at, lens.zone));
                t.took = Some(duration_text(e.at - asked));
                t.open = false;
            }
        }
    }
    out
}

/// Per step, the stretches spent waiting on a person: from the request to
/// the answer (or to `until` while unanswered).
pub(super) fn people_waits(events: &[TimelineEvent], until: DateTime<Utc>) -> Waits {
    let mut open: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut out: Waits = BTreeMap::new();
    for e in events {
        let Some(step) = e.step.clone() else { continue };
        match EventKind::parse(&e.kind) {
            Some(
                EventKind::ApprovalRequested
                | EventKind::ManualRequested
                | EventKind::NoticeDrafted,
            ) => {
                open.entry(step).or_insert(e.at);
            }
            Some(
                EventKind::ApprovalGranted
                | EventKind::ApprovalRejected
                | EventKind::ManualDone
                | EventKind::NoticeApproved,
            ) => {
                if let Some(from) = open.remove(&step) {
                    out.entry(step).or_default().push((from, e.at));
                }
            }
            _ => {}
        }
    }
    for (step, from) in open {
        out.entry(step).or_default().push((from, until.max(from)));
    }
    out
}
