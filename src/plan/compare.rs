//! An incident beside the plan made for it shortly before: did the real
//! containment change what the plan said it would? Per write step, what
//! the plan counted against what the incident changed; a difference means
//! the platform moved (a new grant, a send scheduled since) or the plan
//! could not read it.

use serde_json::{json, Value as Json};

use crate::runbook::Runbook;
use crate::store::{Snapshot, StepStatus, Store, StoreError};

/// How long before a declaration a plan still describes the platforms.
pub const FRESH: chrono::Duration = chrono::Duration::days(7);

/// The latest plan of the same runbook, tool and target made in the week
/// before the incident was declared, compared with what the incident
/// changed. None: there is no such plan.
pub fn against_last_plan(
    store: &Store,
    rb: &Runbook,
    snap: &Snapshot,
    is_write: impl Fn(&str, &str) -> bool,
) -> Result<Option<Json>, StoreError> {
    let inc = &snap.incident;
    let target = if inc.drill { "simulator" } else { "live" };
    let declared = inc.declared_at;
    let plan = store
        .plans()?
        .into_iter()
        .filter(|p| {
            p["runbook"] == rb.name.as_str()
                && p["target"] == target
                && p["inputs"]["tool"] == inc.inputs["tool"]
                && matches!(p["status"].as_str(), Some("complete" | "incomplete"))
        })
        .filter_map(|p| {
            let at = p["planned_at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())?
                .with_timezone(&chrono::Utc);
            (at <= declared && declared - at <= FRESH).then_some((at, p))
        })
        .max_by_key(|(at, _)| *at);
    let Some((_, plan)) = plan else {
        return Ok(None);
    };
    let mut planned: std::collections::BTreeMap<&str, (String, u64)> = Default::default();
    for p in plan["platforms"].as_array().into_iter().flatten() {
        for w in p["would_change"].as_array().into_iter().flatten() {
            if let Some(step) = w["step"].as_str() {
                let e = planned
                    .entry(step)
                    .or_insert((p["platform"].as_str().unwrap_or("").to_string(), 0));
                e.1 += 1;
            }
        }
    }
    let mut differences = vec![];
    let mut open = vec![];
    for (s, integration, action) in rb.action_steps() {
        if !is_write(integration, action) {
            continue;
        }
        let would = planned.get(s.id.as_str()).map_or(0, |p| p.1);
        let run = snap.steps.get(&s.id);
        if !run.is_some_and(|r| r.status.is_final()) {
            if would > 0 {
                open.push(s.id.clone());
            }
            continue;
        }
        let changed = store
            .item_runs(&inc.id, &s.id)?
            .values()
            .filter(|i| i.status == StepStatus::Succeeded)
            .count() as u64;
        // A recovery step has nothing planned (it runs after the writes):
        // only steps the plan could count are compared.
        let after_write = plan["after_writes"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["step"] == s.id.as_str()));
        if after_write {
            continue;
        }
        if changed != would {
            differences.push(json!({
                "step": s.id,
                "platform": integration,
                "planned": would,
                "changed": changed,
            }));
        }
    }
    Ok(Some(json!({
        "plan": plan["plan"],
        "planned_at": plan["planned_at"],
        "plan_status": plan["status"],
        "same": differences.is_empty() && open.is_empty(),
        "differences": differences,
        "not_yet_run": open,
    })))
}

/// One line for people: "planned at T (PLAN-…): found the same" or the
/// differences.
pub fn text(c: &Json) -> String {
    let head = format!(
        "planned at {} ({})",
        c["planned_at"].as_str().unwrap_or("?"),
        c["plan"].as_str().unwrap_or("?")
    );
    let diffs: Vec<String> = c["differences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} {} (planned {}, changed {})",
                d["platform"].as_str().unwrap_or("?"),
                d["step"].as_str().unwrap_or("?"),
                d["planned"],
                d["changed"]
            )
        })
        .collect();
    if c["same"] == true {
        format!("{head}: found the same")
    } else if diffs.is_empty() {
        format!("{head}: containment still running")
    } else {
        format!(
            "{head}: {} difference(s): {}",
            diffs.len(),
            diffs.join("; ")
        )
    }
}
