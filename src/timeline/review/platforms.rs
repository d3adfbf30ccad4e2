//! Containment per platform: what each write step changed there (with
//! its items, named from the list the fan-out iterated), what was left to
//! a person, and whether re-reading the platform proved it.

use std::collections::BTreeMap;

use chrono::TimeDelta;
use serde_json::Value as Json;

use super::{strings, Change, Facts, ItemRow, Platform, Verified, ITEMS_SHOWN};
use crate::runbook::StepKind;
use crate::store::{ItemRun, Snapshot, StepStatus};
use crate::timeline::chronology::{action_text, platform_name};
use crate::timeline::display::duration_text;

/// A platform object's name, from the fields vendors name things by:
/// Salesforce's OauthToken has `AppName` and the granting `UserId`; Slack's
/// admin.apps lists wrap the app in `app`.
fn item_label(v: &Json) -> Option<String> {
    let text = |v: &Json| match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(t) = text(v) {
        return Some(t);
    }
    let o = v.as_object()?;
    let pick = |keys: &[&str]| keys.iter().find_map(|k| o.get(*k).and_then(text));
    let name = pick(&[
        "name",
        "title",
        "label",
        "displayName",
        "display_name",
        "app_name",
        "clientName",
        "client_name",
        "AppName",
        "email",
    ]);
    let id = pick(&[
        "id",
        "client_id",
        "clientId",
        "key",
        "uid",
        "token_id",
        "UserId",
    ]);
    match (name, id) {
        (Some(n), Some(i)) if n != i => Some(format!("{n} ({i})")),
        (Some(n), _) => Some(n),
        (None, Some(i)) => Some(i),
        (None, None) => o.get("app").and_then(item_label),
    }
}

/// The list a fan-out iterated (`steps.ID.output...` or `inputs...`),
/// re-read from the recorded outputs so each item can be named on the
/// page; borrowed, since a fan-out's list can be long.
fn iterated<'a>(snap: &'a Snapshot, path: &str) -> Vec<&'a Json> {
    let found = match path.split_once('.') {
        Some(("inputs", rest)) => crate::template::lookup(&snap.incident.inputs, rest),
        Some(("steps", rest)) => rest.split_once('.').and_then(|(id, rest)| {
            let output = &snap.steps.get(id)?.output;
            rest.strip_prefix("output")
                .map(|r| r.trim_start_matches('.'))
                .and_then(|r| crate::template::lookup(output, r))
        }),
        _ => None,
    };
    match found {
        Some(Json::Array(a)) if !a.is_empty() && a.iter().all(Json::is_array) => a
            .iter()
            .flat_map(|x| x.as_array().into_iter().flatten())
            .collect(),
        Some(Json::Array(a)) => a.iter().collect(),
        _ => vec![],
    }
}

pub(super) fn verification(f: &Facts) -> Vec<Verified> {
    let snap = &f.rec.snap;
    let verification: Vec<Verified> = f
        .lens
        .runbook
        .map(|rb| crate::timeline::verification(rb, snap))
        .unwrap_or_default()
        .into_iter()
        .map(|v| Verified {
            platform: v["platform"].as_str().unwrap_or("").to_string(),
            status: v["status"].as_str().unwrap_or("").to_string(),
            ok: v["status"] == "verified",
            after: v["time_to_verify_ms"]
                .as_i64()
                .map(|ms| duration_text(TimeDelta::milliseconds(ms))),
            problems: strings(&v["problems"]),
        })
        .collect();
    verification
}

/// Per platform what changed; and per platform name, how many objects.
pub(super) fn platforms(
    f: &Facts,
    verification: &[Verified],
) -> (Vec<Platform>, BTreeMap<String, u64>) {
    let (snap, lens, rec, steps) = (&f.rec.snap, f.lens, f.rec, &f.steps);
    let mut platforms: Vec<Platform> = Vec::new();
    let mut objects: BTreeMap<String, u64> = BTreeMap::new();
    for (id, _, step) in steps {
        let Some(StepKind::Action {
            integration,
            action,
        }) = step.map(|s| &s.kind)
        else {
            continue;
        };
        let Some(r) = snap.steps.get(id) else {
            continue;
        };
        let manifest_action = lens
            .catalog
            .get(integration)
            .and_then(|m| m.actions.get(action));
        let idx = match platforms.iter().position(|p| &p.integration == integration) {
            Some(i) => i,
            None => {
                platforms.push(Platform {
                    integration: integration.clone(),
                    name: platform_name(lens.catalog, integration),
                    changes: vec![],
                    verification: verification
                        .iter()
                        .find(|v| &v.platform == integration)
                        .cloned(),
                    for_people: vec![],
                });
                platforms.len() - 1
            }
        };
        let p = &mut platforms[idx];
        if let Some(ui) = manifest_action.and_then(|a| a.manual.as_deref()) {
            if r.status != StepStatus::Skipped && r.started_at.is_some() {
                let state = if r.status.is_final() { "done" } else { "open" };
                p.for_people.push(format!("{ui} ({state})"));
            }
            continue;
        }
        if manifest_action.is_some_and(|a| a.reads()) {
            continue;
        }
        let what = action_text(lens.catalog, integration, action).unwrap_or_else(|| action.clone());
        let items = rec.items.get(id);
        let (mut changed, mut already, mut failed, mut skipped) = (0, 0, 0, 0);
        let mut rows = Vec::new();
        let names = step
            .and_then(|s| s.for_each.as_deref())
            .map(|path| iterated(snap, path))
            .unwrap_or_default();
        let runs: Vec<(u32, &ItemRun)> = items
            .map(|m| m.iter().map(|(k, v)| (*k, v)).collect())
            .unwrap_or_default();
        for (n, ir) in &runs {
            match ir.status {
                StepStatus::Succeeded if ir.already_done => already += 1,
                StepStatus::Succeeded => changed += 1,
                StepStatus::Failed => failed += 1,
                StepStatus::Skipped => skipped += 1,
                _ => {}
            }
            if rows.len() < ITEMS_SHOWN {
                let label = names
                    .get(*n as usize)
                    .and_then(|v| item_label(v))
                    .unwrap_or_else(|| format!("item {n}"));
                let note = match (&ir.error, ir.already_done) {
                    (Some(e), _) => e.clone(),
                    (None, true) => "already done".into(),
                    (None, false) if ir.attempts > 1 => format!("{} attempts", ir.attempts),
                    _ => String::new(),
                };
                rows.push(ItemRow {
                    n: *n,
                    label,
                    status: ir.status.name().to_string(),
                    note,
                });
            }
        }
        // A single call (no fan-out) counts as one object.
        if runs.is_empty() && r.status == StepStatus::Succeeded && r.attempts > 0 {
            changed = 1;
        }
        if r.status == StepStatus::Skipped && runs.is_empty() {
            continue;
        }
        *objects.entry(p.name.clone()).or_default() += changed as u64;
        p.changes.push(Change {
            step: id.clone(),
            what,
            status: r.status.name().to_string(),
            total: runs
                .len()
                .max(usize::from(runs.is_empty() && r.attempts > 0)),
            changed,
            already,
            failed,
            skipped,
            items_more: runs.len().saturating_sub(ITEMS_SHOWN),
            items: rows,
            error: r.error.clone(),
        });
    }
    platforms
        .retain(|p| !p.changes.is_empty() || !p.for_people.is_empty() || p.verification.is_some());
    (platforms, objects)
}
