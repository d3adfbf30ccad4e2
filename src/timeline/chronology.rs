//! What the organisation did after becoming aware of the breach, in order:
//! the chronological account regulators ask for (the PDPC's Guide on
//! Managing and Notifying Data Breaches asks for "a chronological account of
//! the steps taken ... after the organisation became aware", including the
//! s. 26C assessment). Built from the timeline, so it is the record, not a
//! recollection: fan-outs are summed per step, so a 10,000-grant revocation
//! is one line.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

use super::clocks::at_of;
use crate::integrations::Catalog;
use crate::notices::clocks::Moment;
use crate::runbook::Runbook;
use crate::store::EventKind;
use crate::store::{Snapshot, StepStatus, TimelineEvent};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// How a moment reads in an account of events.
fn moment_text(m: Moment) -> &'static str {
    match m {
        Moment::Occurred => "The breach occurred",
        Moment::Discovered => "The breach was discovered",
        Moment::Aware => "Became aware that personal data was compromised",
        Moment::NyInadvertentDisclosureDetermined => {
            "Determined that the exposure was an inadvertent disclosure unlikely to cause misuse (N.Y. GBL 899-aa(2)(a))"
        }
        Moment::TxBreachDetermined => "Determined that a breach occurred (Tex. Bus. & Com. Code 521.053)",
        Moment::PipedaRealRiskDetermined => {
            "Determined that the breach creates a real risk of significant harm (PIPEDA s. 10.1)"
        }
        Moment::AuEligibleBreachBelieved => {
            "Formed reasonable grounds to believe an eligible data breach happened (Privacy Act s. 26WK)"
        }
        Moment::Confirmed => "Confirmed that personal data was affected",
        Moment::Assessed => "Completed the assessment of whether the breach is notifiable",
        Moment::UsCaResidentsNotified => "California residents were notified",
        Moment::UsHhsNotified => "The US Secretary of Health and Human Services was notified",
    }
}

/// What one call of an action does, from its manifest's description:
/// "Revoke an OAuth grant" of "Revoke an OAuth grant: `with.token` is ...".
pub(crate) fn action_text(catalog: &Catalog, integration: &str, action: &str) -> Option<String> {
    let d = catalog
        .get(integration)?
        .actions
        .get(action)?
        .description
        .as_deref()?;
    let end = d.find(['.', ':', '(', ';']).unwrap_or(d.len());
    let text = d[..end].trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// A person's task as they were asked it, cut to a readable length.
fn asked(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

fn times(n: u64) -> String {
    match n {
        1 => "once".to_string(),
        n => format!("{n} times"),
    }
}

/// "Salesforce Platform" of "Salesforce Platform (OAuth grants of connected apps)".
pub(crate) fn platform_name(catalog: &Catalog, integration: &str) -> String {
    catalog
        .get(integration)
        .map(|m| m.title.split(" (").next().unwrap_or(&m.title).to_string())
        .unwrap_or_else(|| integration.to_string())
}

/// The account, oldest first. `catalog` tells writes (revocations, pauses)
/// from reads, which are not steps taken.
pub fn chronology(
    rb: &Runbook,
    snap: &Snapshot,
    events: &[TimelineEvent],
    catalog: &Catalog,
) -> Vec<Entry> {
    let mut out = Vec::new();
    // What each person was asked, as the timeline recorded it.
    let mut tasks: BTreeMap<&str, String> = BTreeMap::new();
    // Per write step: items changed, items found already done.
    let mut changed: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for e in events {
        let by = e.actor.as_str();
        let step = e.step.as_deref().unwrap_or("-");
        if let Some(t) = e.data.get("text").and_then(Json::as_str) {
            tasks.insert(step, asked(t));
        }
        let task = || tasks.get(step).cloned().unwrap_or_else(|| step.to_string());
        let text = match EventKind::parse(&e.kind) {
            Some(EventKind::IncidentDeclared) => Some(format!(
                "Became aware of the breach; incident {} declared by {by}",
                snap.incident.id
            )),
            Some(EventKind::MomentRecorded) => {
                let moments = e.data.get("moment").and_then(Json::as_str).unwrap_or("");
                for m in Moment::recorded(moments) {
                    out.push(Entry {
                        at: at_of(e),
                        text: format!("{} (recorded by {by})", moment_text(m)),
                    });
                }
                None
            }
            Some(EventKind::ApprovalGranted) => Some(format!("Approved by {by}: {}", task())),
            Some(EventKind::ApprovalRejected) => Some(format!("Declined by {by}: {}", task())),
            Some(EventKind::ManualDone) => Some(format!("Done by {by}: {}", task())),
            Some(EventKind::ExceptionApplied) => Some(e.message.clone()),
            Some(EventKind::ClockPaused | EventKind::ClockResumed | EventKind::Note) => {
                Some(format!("{} ({by})", e.message))
            }
            Some(EventKind::NoticeApproved | EventKind::NoticeSent) => Some(e.message.clone()),
            Some(EventKind::StepFailed) => Some(e.message.clone()),
            Some(EventKind::ItemSucceeded) => {
                if let Some(id) = e.step.as_deref() {
                    let c = changed.entry(id).or_default();
                    if e.data["already_done"] == true {
                        c.1 += 1;
                    } else {
                        c.0 += 1;
                    }
                }
                None
            }
            // A fan-out's items, summarised: its last summary has them all.
            Some(EventKind::ItemsSummary) => {
                if let Some(id) = e.step.as_deref() {
                    let n = |k: &str| e.data[k].as_u64().unwrap_or(0);
                    changed.insert(id, (n("succeeded"), n("already_done")));
                }
                None
            }
            _ => None,
        };
        if let Some(text) = text {
            out.push(Entry { at: at_of(e), text });
        }
    }
    // Each write step once, when it finished, with what it changed.
    for (s, integration, action) in rb.action_steps() {
        let Some(run) = snap.steps.get(&s.id) else {
            continue;
        };
        // A failed step's changes happened too (its failure has its own line).
        let (Some(at), StepStatus::Succeeded | StepStatus::Failed) = (run.finished_at, run.status)
        else {
            continue;
        };
        if !catalog.is_write(integration, action) {
            continue;
        }
        let (n, already) = changed.get(s.id.as_str()).copied().unwrap_or_default();
        if n + already == 0 {
            continue;
        }
        let platform = platform_name(catalog, integration);
        let what = action_text(catalog, integration, action).unwrap_or_else(|| action.to_string());
        let done = match (n, already) {
            (n, 0) => times(n),
            (0, k) => format!("nothing left to do ({k} already done)"),
            (n, k) => format!("{} ({k} already done)", times(n)),
        };
        out.push(Entry {
            at,
            text: format!("{platform}: {what}: {done}"),
        });
    }
    // Each platform's proof that nothing of the tool remains.
    for v in super::verification(rb, snap) {
        if let (Some(p), Some(at)) = (v["platform"].as_str(), v["verified_at"].as_str()) {
            if let Ok(at) = DateTime::parse_from_rfc3339(at) {
                let platform = platform_name(catalog, p);
                out.push(Entry {
                    at: at.with_timezone(&Utc),
                    text: format!(
                        "{platform}: re-read, and none of the tool's access or sends remains"
                    ),
                });
            }
        }
    }
    // Stable: entries at the same instant keep the timeline's order.
    out.sort_by_key(|e| e.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{Folders, Library};
    use crate::store::{Incident, IncidentStatus, StepRun};
    use serde_json::json;

    const RB: &str = r#"
version: 1
name: t
inputs:
  tool: { type: string, default: ChatGPT }
steps:
  - id: find
    action: salesforce.list_oauth_tokens
  - id: revoke
    action: salesforce.revoke_token
    needs: [find]
    for_each: steps.find.output
    with: { token: "{{item.DeleteToken}}" }
  - id: again
    action: salesforce.revoke_token
    with: { token: x }
  - id: ok
    approval: { approvers: [legal], prompt: "Go?" }
"#;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ev(
        seq: u64,
        at: &str,
        kind: &str,
        step: Option<&str>,
        actor: &str,
        data: Json,
    ) -> TimelineEvent {
        TimelineEvent {
            seq,
            at: t(at),
            kind: kind.into(),
            step: step.map(str::to_string),
            item: None,
            actor: actor.into(),
            message: format!("{kind} message"),
            data,
        }
    }

    #[test]
    fn the_account_sums_writes_names_people_and_leaves_out_reads() {
        let lib = Library::load(&Folders::default()).unwrap();
        let rb = crate::runbook::load("t.yaml", RB, &lib.known()).unwrap();
        let declared = t("2026-03-02T09:00:00Z");
        let done = |at: &str, status| StepRun {
            status,
            finished_at: Some(t(at)),
            ..StepRun::default()
        };
        let snap = Snapshot {
            incident: Incident {
                id: "INC-1".into(),
                runbook: "t".into(),
                title: "t".into(),
                status: IncidentStatus::Running,
                declared_at: declared,
                declared_by: "U0RESP".into(),
                severity: crate::store::Severity::Sev1,
                inputs: json!({}),
                drill: false,
                runbook_file: "t.yaml".into(),
                runbook_source: RB.into(),
                finished_at: None,
            },
            steps: [
                ("find", done("2026-03-02T09:01:00Z", StepStatus::Succeeded)),
                (
                    "revoke",
                    done("2026-03-02T09:03:00Z", StepStatus::Succeeded),
                ),
                ("again", done("2026-03-02T09:04:00Z", StepStatus::Succeeded)),
                ("ok", done("2026-03-02T09:05:00Z", StepStatus::Succeeded)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        };
        let item = |seq, at, step, already| {
            ev(
                seq,
                at,
                "item.succeeded",
                Some(step),
                "quench",
                json!({"already_done": already}),
            )
        };
        let events = vec![
            ev(
                1,
                "2026-03-02T09:00:00Z",
                "incident.declared",
                None,
                "U0RESP",
                json!({}),
            ),
            item(2, "2026-03-02T09:01:00Z", "find", false),
            // A fan-out reports progress, then sums up all its items.
            ev(
                3,
                "2026-03-02T09:02:00Z",
                "items.progress",
                Some("revoke"),
                "quench",
                json!({"succeeded": 1, "already_done": 0}),
            ),
            ev(
                4,
                "2026-03-02T09:02:30Z",
                "items.progress",
                Some("revoke"),
                "quench",
                json!({"succeeded": 2, "already_done": 0}),
            ),
            ev(
                5,
                "2026-03-02T09:02:40Z",
                "items.summary",
                Some("revoke"),
                "quench",
                json!({"succeeded": 2, "already_done": 1, "items_digest": "sha256:00"}),
            ),
            item(6, "2026-03-02T09:04:00Z", "again", true),
            ev(
                7,
                "2026-03-02T09:04:30Z",
                "approval.requested",
                Some("ok"),
                "quench",
                json!({"text": "Send   the\nnotices?"}),
            ),
            ev(
                8,
                "2026-03-02T09:05:00Z",
                "approval.granted",
                Some("ok"),
                "U0LEGAL",
                json!({}),
            ),
            // A moment noted later about an earlier time sits at that time.
            ev(
                9,
                "2026-03-02T09:06:00Z",
                "moment.recorded",
                None,
                "U0DPO",
                json!({"moment": "assessed", "at": "2026-03-02T08:59:00Z"}),
            ),
        ];
        let got: Vec<(String, String)> = chronology(&rb, &snap, &events, &lib.catalog)
            .into_iter()
            .map(|e| (e.at.format("%H:%M:%S").to_string(), e.text))
            .collect();
        let want = [
            (
                "08:59:00",
                "Completed the assessment of whether the breach is notifiable (recorded by U0DPO)",
            ),
            (
                "09:00:00",
                "Became aware of the breach; incident INC-1 declared by U0RESP",
            ),
            (
                "09:03:00",
                "Salesforce Platform: Revoke an OAuth grant: 2 times (1 already done)",
            ),
            (
                "09:04:00",
                "Salesforce Platform: Revoke an OAuth grant: nothing left to do (1 already done)",
            ),
            ("09:05:00", "Approved by U0LEGAL: Send the notices?"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}
