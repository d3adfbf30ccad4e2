//! A drill is a rehearsal: what it filled in that a real incident with the
//! same runbook would need from people and configuration. Roles with no
//! members (their approvals would wait for no one), platforms whose
//! secrets are missing for `--live`, the manual tasks and who owns them,
//! the approvals the drill granted itself, the waits it cut, and the
//! notices it approved as `drill`. Recorded in the timeline at the end of
//! the drill (`drill.rehearsal`), so the page and exports show it too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value as Json};

use crate::integrations::Catalog;
use crate::runbook::{Runbook, StepKind};
use crate::store::EventKind;
use crate::store::{NoticeDraft, TimelineEvent};

/// The list, as JSON (`drill --json` fields, the stored event's data).
pub fn rehearsal(
    rb: &Runbook,
    catalog: &Catalog,
    events: &[TimelineEvent],
    notices: &[NoticeDraft],
    roles: &BTreeMap<String, Vec<String>>,
    has_secret: impl Fn(&str) -> bool,
) -> Json {
    let members = |role: &str| roles.get(role).cloned().unwrap_or_default();
    // Which steps name each role.
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    for s in &rb.steps {
        match &s.kind {
            StepKind::Approval { approvers, .. } => {
                for r in approvers {
                    named.entry(r.clone()).or_default().push(s.id.clone());
                }
            }
            StepKind::Manual {
                assignee: Some(a), ..
            } => named.entry(a.clone()).or_default().push(s.id.clone()),
            StepKind::Action { integration, .. } => {
                reached.insert(integration);
            }
            _ => {}
        }
    }
    let roles_without_members: Vec<Json> = named
        .iter()
        .filter(|(r, _)| members(r).is_empty())
        .map(|(r, steps)| json!({"role": r, "steps": steps}))
        .collect();
    let platforms_missing_secrets: Vec<Json> = reached
        .iter()
        .filter_map(|i| {
            let m = catalog.get(i)?;
            let missing: Vec<&String> = m.secrets.iter().filter(|s| !has_secret(s)).collect();
            (!missing.is_empty()).then(|| json!({"platform": i, "missing_secrets": missing}))
        })
        .collect();
    // What the drill did in people's place, from its own records.
    let owner = |step: &str| -> Option<String> {
        match rb.step(step).map(|s| &s.kind) {
            Some(StepKind::Manual { assignee, .. }) => assignee.clone(),
            Some(StepKind::Approval { approvers, .. }) => Some(approvers.join(" or ")),
            _ => None,
        }
    };
    let mut manual_tasks = vec![];
    let mut approvals_assumed = vec![];
    let mut waits_cut = vec![];
    for e in events.iter().filter(|e| e.actor == "drill") {
        let step = e.step.clone().unwrap_or_default();
        let text = e.data["text"].as_str().unwrap_or(&e.message).to_string();
        match EventKind::parse(&e.kind) {
            Some(EventKind::ManualDone) => {
                let who = owner(&step);
                manual_tasks.push(json!({
                    "step": step,
                    "owner": who,
                    "members": who.as_deref().map(members).unwrap_or_default(),
                    "task": text,
                }));
            }
            Some(EventKind::ApprovalGranted) => {
                let who = owner(&step);
                approvals_assumed.push(json!({"step": step, "approvers": who, "asked": text}));
            }
            Some(EventKind::WaitCut) => waits_cut.push(json!({"step": step, "cut": e.message})),
            _ => {}
        }
    }
    let notices_to_approve: Vec<Json> = notices
        .iter()
        .filter(|n| n.approved_by.as_deref() == Some("drill"))
        .map(|n| json!({"template": n.template, "version": n.version, "step": n.step}))
        .collect();
    json!({
        "roles_without_members": roles_without_members,
        "platforms_missing_secrets": platforms_missing_secrets,
        "manual_tasks": manual_tasks,
        "approvals_assumed": approvals_assumed,
        "waits_cut": waits_cut,
        "notices_to_approve": notices_to_approve,
    })
}

fn items(r: &Json, key: &str) -> Vec<Json> {
    r[key].as_array().cloned().unwrap_or_default()
}

fn s(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        Json::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// One line per thing a real incident would need, under a heading; empty
/// when the drill filled in nothing.
pub fn render_text(r: &Json) -> String {
    let mut lines = vec![];
    for x in items(r, "roles_without_members") {
        lines.push(format!(
            "- role {} has no members: {} would wait for no one; add Slack user ids under `roles.{}` in quench.yaml",
            s(&x["role"]),
            s(&x["steps"]),
            s(&x["role"])
        ));
    }
    for x in items(r, "platforms_missing_secrets") {
        lines.push(format!(
            "- {} has no credentials for --live: set {}",
            s(&x["platform"]),
            s(&x["missing_secrets"])
        ));
    }
    for x in items(r, "approvals_assumed") {
        lines.push(format!(
            "- approval {} was granted by the drill; a real incident waits for {}",
            s(&x["step"]),
            s(&x["approvers"])
        ));
    }
    for x in items(r, "manual_tasks") {
        let who = match (
            x["owner"].as_str(),
            x["members"].as_array().filter(|m| !m.is_empty()),
        ) {
            (None, _) => "whoever responds (no assignee)".to_string(),
            (Some(o), Some(m)) => format!("{o} ({})", s(&Json::Array(m.clone()))),
            (Some(o), None) => o.to_string(),
        };
        lines.push(format!(
            "- manual task {} for {who}: {}",
            s(&x["step"]),
            s(&x["task"])
        ));
    }
    for x in items(r, "waits_cut") {
        lines.push(format!("- wait {}: {}", s(&x["step"]), s(&x["cut"])));
    }
    for x in items(r, "notices_to_approve") {
        lines.push(format!(
            "- notice {} v{} was approved by the drill; a real one needs its approval step",
            s(&x["template"]),
            s(&x["version"])
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "What a real incident would need that this drill filled in:\n{}\n",
        lines.join("\n")
    )
}
