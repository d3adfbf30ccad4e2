//! What quench says in Slack: mrkdwn text (user text escaped so it cannot
//! ping `<!channel>` or forge links), incident status with the regulatory
//! clocks and their time left, and the decision buttons.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use slack_morphism::prelude::*;

use crate::store::{Snapshot, StepStatus, TimelineEvent};

pub const APPROVE: &str = "quench_approve";
pub const REJECT: &str = "quench_reject";
pub const DONE: &str = "quench_done";

/// Slack's three control characters in mrkdwn.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line per applicable clock, most urgent first, with the time left
/// and overdue ones flagged.
pub fn clocks_text(clocks: &[Json]) -> String {
    let mut out = String::new();
    for c in clocks {
        let s = |k: &str| escape(c[k].as_str().unwrap_or(""));
        let flag = if c["overdue"] == true {
            ":rotating_light: *OVERDUE* "
        } else {
            ""
        };
        out.push_str(&format!(
            "• {flag}*{}* {} · {}: {}\n",
            s("jurisdiction"),
            s("recipient"),
            s("title"),
            s("describe")
        ));
    }
    out
}

/// An incident at a glance: state, step counts, what waits on people, the
/// regulatory clocks, and where the full timeline is.
pub fn status_text(
    snap: &Snapshot,
    events: &[TimelineEvent],
    now: DateTime<Utc>,
    link: Option<&str>,
) -> String {
    let i = &snap.incident;
    let count = |st: StepStatus| snap.steps.values().filter(|r| r.status == st).count();
    let waiting: Vec<&str> = snap
        .steps
        .iter()
        .filter(|(_, r)| r.status == StepStatus::Waiting)
        .map(|(s, _)| s.as_str())
        .collect();
    let failed: Vec<&str> = snap
        .steps
        .iter()
        .filter(|(_, r)| r.status == StepStatus::Failed)
        .map(|(s, _)| s.as_str())
        .collect();
    let mut out = format!(
        "*{}* {}{} · {} · *{}*\nSteps: {} succeeded, {} skipped, {} running",
        escape(&i.id),
        escape(&i.title),
        if i.drill { " (drill)" } else { "" },
        escape(&i.severity),
        i.status.name(),
        count(StepStatus::Succeeded),
        count(StepStatus::Skipped),
        count(StepStatus::Running),
    );
    if !failed.is_empty() {
        out.push_str(&format!(", failed: `{}`", failed.join("`, `")));
    }
    if !waiting.is_empty() {
        out.push_str(&format!("\nWaiting on people: `{}`", waiting.join("`, `")));
    }
    let clocks = crate::timeline::clocks::clocks_json(i, events, now);
    if !clocks.is_empty() {
        out.push_str("\n*Regulatory clocks*\n");
        out.push_str(&clocks_text(&clocks));
    }
    if let Some(link) = link {
        out.push_str(&format!("\n<{link}|Full timeline>"));
    }
    out
}

/// A decision asked of people: the prompt and its buttons. The button
/// value names the incident and step; who pressed it comes from Slack.
pub fn decision_blocks(id: &str, step: &str, approval: bool, text: &str) -> Vec<SlackBlock> {
    let value = format!("{id} {step}");
    let buttons: Vec<SlackActionBlockElement> = if approval {
        vec![
            SlackBlockButtonElement::new(pt!("Approve"))
                .with_action_id(APPROVE.into())
                .with_value(value.clone())
                .with_style(SlackBlockButtonStyle::Primary)
                .into(),
            SlackBlockButtonElement::new(pt!("Reject"))
                .with_action_id(REJECT.into())
                .with_value(value)
                .with_style(SlackBlockButtonStyle::Danger)
                .into(),
        ]
    } else {
        vec![SlackBlockButtonElement::new(pt!("Mark done"))
            .with_action_id(DONE.into())
            .with_value(value)
            .with_style(SlackBlockButtonStyle::Primary)
            .into()]
    };
    vec![
        SlackSectionBlock::new().with_text(md!("{}", text)).into(),
        SlackActionsBlock::new(buttons).into(),
    ]
}
