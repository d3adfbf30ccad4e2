//! What quench says in Slack: mrkdwn text (user text escaped so it cannot
//! ping `<!channel>` or forge links), incident status with the regulatory
//! clocks and their time left, and the decision buttons.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use slack_morphism::prelude::*;

use crate::store::EventKind;
use crate::store::{Snapshot, StepStatus, TimelineEvent};

pub(super) const APPROVE: &str = "quench_approve";
pub(super) const REJECT: &str = "quench_reject";
pub(super) const DONE: &str = "quench_done";

/// Slack's documented limits: a message's `text` (chat.postMessage:
/// "truncated ... more than 40,000 characters") and a section block's text
/// (Block Kit reference: "Maximum length ... 3000 characters").
pub(super) const TEXT_MAX: usize = 40_000;
pub(super) const SECTION_MAX: usize = 3_000;

/// `text` cut to at most `max` characters, at a line end where there is
/// one in the last quarter, with a note of the cut and where to read it
/// all. A cut never splits an `&amp;`-style escape or a `<...>` link.
pub(super) fn fit(text: &str, max: usize, link: Option<&str>) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let note = match link {
        Some(l) => format!("\n… _(cut to fit Slack; all of it: <{l}|the incident page>)_"),
        None => "\n… _(cut to fit Slack; all of it is on the incident page)_".to_string(),
    };
    let keep = max.saturating_sub(note.chars().count());
    let mut cut: String = text.chars().take(keep).collect();
    if let Some(nl) = cut.rfind('\n').filter(|&i| i >= cut.len() * 3 / 4) {
        cut.truncate(nl);
    }
    // Do not leave half an escape or an unclosed link behind.
    if let Some(amp) = cut.rfind('&').filter(|&i| !cut[i..].contains(';')) {
        cut.truncate(amp);
    }
    if let Some(lt) = cut.rfind('<').filter(|&i| !cut[i..].contains('>')) {
        cut.truncate(lt);
    }
    cut.push_str(&note);
    cut
}

/// Slack's three control characters in mrkdwn.
pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line per applicable clock, most urgent first, with the time left
/// and overdue ones flagged.
pub(super) fn clocks_text(clocks: &[Json]) -> String {
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

/// The live status message at the top of an incident's room: the
/// headline, phase progress, platforms verified, who is waited on,
/// regulatory clocks with their time left, and the notices' states.
pub(super) fn live_status(
    snap: &Snapshot,
    events: &[TimelineEvent],
    rb: Option<&crate::runbook::Runbook>,
    notices: &[crate::store::NoticeDraft],
    now: DateTime<Utc>,
    link: Option<&str>,
) -> String {
    use crate::runbook::Phase;
    let i = &snap.incident;
    let icon = match i.status.name() {
        "completed" => ":white_check_mark:",
        "failed" => ":x:",
        _ => ":rotating_light:",
    };
    let mut out = format!(
        "{icon} *{}* {}{} · {} · *{}*\nDeclared by {} at {}",
        escape(&i.id),
        escape(&i.title),
        if i.drill { " (drill)" } else { "" },
        i.severity.name(),
        i.status.name(),
        person(&i.declared_by),
        i.declared_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(rb) = rb {
        let mut phases = Vec::new();
        for phase in [Phase::Contain, Phase::Notify, Phase::Recover] {
            let steps: Vec<&crate::runbook::Step> =
                rb.steps.iter().filter(|s| s.phase == Some(phase)).collect();
            if steps.is_empty() {
                continue;
            }
            let run = |s: &&crate::runbook::Step| snap.steps.get(&s.id).map(|r| r.status);
            let done = steps
                .iter()
                .filter(|s| run(s).is_some_and(|st| st.is_final()))
                .count();
            let failed = steps
                .iter()
                .filter(|s| run(s) == Some(StepStatus::Failed))
                .count();
            let failed = if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            };
            phases.push(format!("{} {done}/{}{failed}", phase.name(), steps.len()));
        }
        if !phases.is_empty() {
            out.push_str(&format!("\n*Progress* {}", phases.join(" · ")));
        }
        let v = crate::timeline::verification(rb, snap);
        if !v.is_empty() {
            let ok = v.iter().filter(|p| p["status"] == "verified").count();
            let not: Vec<&str> = v
                .iter()
                .filter(|p| p["status"] == "not verified")
                .filter_map(|p| p["platform"].as_str())
                .collect();
            out.push_str(&format!("\n*Verified* {ok}/{} platforms", v.len()));
            if !not.is_empty() {
                out.push_str(&format!(", *not verified*: `{}`", not.join("`, `")));
            }
        }
    }
    let failed: Vec<&str> = snap
        .steps
        .iter()
        .filter(|(_, r)| r.status == StepStatus::Failed)
        .map(|(s, _)| s.as_str())
        .collect();
    if !failed.is_empty() {
        out.push_str(&format!("\n*Failed steps* `{}`", failed.join("`, `")));
    }
    // Who each open request waits on, as it was asked.
    let mut waits = Vec::new();
    for (step, r) in &snap.steps {
        if r.status != StepStatus::Waiting {
            continue;
        }
        let asked = events.iter().rev().find(|e| {
            e.step.as_deref() == Some(step)
                && matches!(
                    EventKind::parse(&e.kind),
                    Some(EventKind::ApprovalRequested | EventKind::ManualRequested)
                )
        });
        let who: Vec<String> = asked
            .and_then(|e| e.data["approvers"].as_array())
            .map(|a| a.iter().filter_map(Json::as_str).map(escape).collect())
            .unwrap_or_default();
        let since = asked
            .map(|e| format!(" since {}", e.at.format("%H:%M UTC")))
            .unwrap_or_default();
        let who = if who.is_empty() {
            String::new()
        } else {
            format!(" on {}", who.join(" or "))
        };
        waits.push(format!("`{}`{who}{since}", escape(step)));
    }
    if !waits.is_empty() {
        out.push_str(&format!("\n*Waiting* {}", waits.join(" · ")));
    }
    let clocks = crate::timeline::clocks::clocks_json(i, events, now);
    if !clocks.is_empty() {
        out.push_str("\n*Regulatory clocks*\n");
        out.push_str(&clocks_text(&clocks));
    }
    // The newest version of each notice, and whether it is out.
    let mut latest: std::collections::BTreeMap<&str, &crate::store::NoticeDraft> =
        Default::default();
    for n in notices {
        let e = latest.entry(n.template.as_str()).or_insert(n);
        if n.version > e.version {
            *e = n;
        }
    }
    if !latest.is_empty() {
        let line: Vec<String> = latest
            .values()
            .map(|n| {
                let sent = events.iter().any(|e| {
                    e.kind == EventKind::NoticeSent
                        && e.data["audience"] == n.audience.as_str()
                        && e.data["jurisdiction"].as_str() == n.jurisdiction.as_deref()
                });
                let state = if sent {
                    "sent".to_string()
                } else if let Some(by) = &n.approved_by {
                    format!("approved by {}", person(by))
                } else {
                    "drafted".to_string()
                };
                format!("{} v{} {state}", escape(&n.template), n.version)
            })
            .collect();
        out.push_str(&format!("\n*Notices* {}", line.join(" · ")));
    }
    if let Some(link) = link {
        out.push_str(&format!("\n<{link}|Full timeline>"));
    }
    out
}

/// Whether `who` looks like a Slack user id (U... or W..., upper case).
pub(super) fn is_user_id(who: &str) -> bool {
    who.len() >= 8
        && (who.starts_with('U') || who.starts_with('W'))
        && who
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A Slack user id as a mention; anything else as text.
pub(super) fn person(who: &str) -> String {
    if is_user_id(who) {
        format!("<@{who}>")
    } else {
        escape(who)
    }
}

/// A decision asked of people: the prompt and its buttons. The button
/// value names the incident and step; who pressed it comes from Slack.
pub(super) fn decision_blocks(id: &str, step: &str, approval: bool, text: &str) -> Vec<SlackBlock> {
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
        SlackSectionBlock::new()
            .with_text(md!("{}", fit(text, SECTION_MAX, None)))
            .into(),
        SlackActionsBlock::new(buttons).into(),
    ]
}

#[cfg(test)]
mod fit_tests {
    use super::*;

    #[test]
    fn a_long_text_is_cut_to_slacks_limit_with_a_link_to_all_of_it() {
        let huge = format!(
            "{}\n{}",
            "line of the record\n".repeat(20),
            "x".repeat(600_000)
        );
        let cut = fit(&huge, TEXT_MAX, Some("https://q.example/incidents/INC-1"));
        assert!(cut.chars().count() <= TEXT_MAX);
        assert!(cut.ends_with("<https://q.example/incidents/INC-1|the incident page>)_"));
        assert_eq!(fit("short", TEXT_MAX, None), "short");
        // Never half an escape or an open link.
        let cut = fit(&"&amp;".repeat(1_000), SECTION_MAX, None);
        let body = cut.split("\n…").next().unwrap();
        assert!(!body.is_empty() && body.len() % 5 == 0, "{body}");
        assert_eq!(body, "&amp;".repeat(body.len() / 5));
        let cut = fit(&"<https://x.example|y> ".repeat(300), SECTION_MAX, None);
        let body = cut.split("\n…").next().unwrap();
        assert!(cut.chars().count() <= SECTION_MAX);
        assert!(body.ends_with("> "), "{body}");
    }

    #[test]
    fn a_decision_prompt_fits_a_section_block() {
        let blocks = decision_blocks("INC-1", "legal", true, &"p".repeat(600_000));
        let json = serde_json::to_string(&blocks).unwrap();
        assert!(json.len() < SECTION_MAX + 2_000, "{} bytes", json.len());
    }
}
