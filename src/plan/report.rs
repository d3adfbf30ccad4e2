//! A plan's report: per platform, what would change (by name, id and
//! owner), what was found and left alone and why, what could not be read
//! and what permission the vendor says it needs, and what the real
//! containment would cost in calls and time; then the people who would be
//! asked, the waits, what would run after a write, and what a real incident
//! would lack. Rendered as text, Markdown or JSON.

use crate::store::EventKind;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value as Json};

use crate::integrations::Executor;
use crate::library::Library;
use crate::registry::{Registry, Verdict};
use crate::runbook::{Runbook, Step, StepKind};
use crate::source::duration::duration_text;
use crate::store::{ItemRun, Snapshot, StepStatus, TimelineEvent};
use crate::template::lookup;

/// What a finished plan run left behind, for [`build`].
pub struct Facts<'a> {
    pub runbook: &'a Runbook,
    pub snapshot: &'a Snapshot,
    pub items: &'a BTreeMap<String, BTreeMap<u32, ItemRun>>,
    pub events: &'a [TimelineEvent],
    pub library: &'a Library,
    pub executor: &'a Executor,
    pub registry: &'a Registry,
    pub roles: &'a BTreeMap<String, Vec<String>>,
}

#[derive(Default)]
struct Platform {
    would_change: Vec<Json>,
    left_alone: Vec<Json>,
    found: Vec<Json>,
    unreadable: Vec<Json>,
    not_run: Vec<Json>,
    reads_sent: u64,
    /// action -> the permissions the vendor documents (any one suffices).
    write_scopes: BTreeMap<String, Vec<String>>,
}

pub fn build(f: &Facts<'_>) -> Json {
    let tool = f.snapshot.incident.inputs["tool"].as_str().unwrap_or("");
    let mut platforms: BTreeMap<String, Platform> = BTreeMap::new();
    let mut people = vec![];
    let mut waits = vec![];
    let mut after = vec![];
    // step -> events about it, in order.
    let mut by_step: BTreeMap<&str, Vec<&TimelineEvent>> = BTreeMap::new();
    for e in f.events {
        if let Some(s) = &e.step {
            by_step.entry(s.as_str()).or_default().push(e);
        }
    }
    let no_events = vec![];
    for step in &f.runbook.steps {
        let events = by_step.get(step.id.as_str()).unwrap_or(&no_events);
        let run = f.snapshot.steps.get(&step.id).cloned().unwrap_or_default();
        if let Some(e) = events.iter().find(|e| e.kind == EventKind::PlanAfterWrite) {
            after.push(json!({"step": step.id, "after": e.data["after"], "phase": step.phase.map(|p| p.name())}));
            continue;
        }
        match &step.kind {
            StepKind::Action {
                integration,
                action,
            } => {
                let Some(a) = f.executor.action(integration, action) else {
                    continue;
                };
                if a.manual.is_some() {
                    people.extend(asked(step, events));
                    continue;
                }
                let p = platforms.entry(integration.clone()).or_default();
                // From the item records: a fan-out logs no event per attempt.
                p.reads_sent += f
                    .items
                    .get(&step.id)
                    .into_iter()
                    .flat_map(|m| m.values())
                    .map(|ir| ir.attempts as u64)
                    .sum::<u64>();
                if run.status == StepStatus::Skipped {
                    p.not_run.push(json!({
                        "step": step.id,
                        "why": events.iter().rev().find(|e| e.kind == EventKind::StepSkipped).map(|e| e.message.clone()),
                    }));
                    continue;
                }
                let items = f.items.get(&step.id);
                if a.reads() {
                    if run.status == StepStatus::Failed {
                        let status = events
                            .iter()
                            .rev()
                            .find(|e| e.kind == EventKind::ItemFailed)
                            .and_then(|e| e.data["status"].as_u64());
                        p.unreadable.push(json!({
                            "step": step.id,
                            "action": action,
                            "status": status,
                            "error": run.error,
                            "needs": needs_text(status, &a.scopes),
                            "scopes": a.scopes,
                        }));
                    } else {
                        p.found.push(json!({
                            "step": step.id,
                            "action": action,
                            "items": count(&run.output),
                        }));
                    }
                    continue;
                }
                if !a.scopes.is_empty() {
                    p.write_scopes.insert(action.clone(), a.scopes.clone());
                }
                let naming = Naming::of(f, step);
                for ir in items.into_iter().flat_map(|m| m.values()) {
                    let item = &ir.output["item"];
                    let (name, id, owner) = naming.read(item);
                    match ir.status {
                        StepStatus::Succeeded => p.would_change.push(json!({
                            "step": step.id,
                            "action": action,
                            "description": step.description.as_ref().or(a.description.as_ref()),
                            "name": name,
                            "id": id,
                            "owner": owner,
                            "method": ir.output["would"]["method"],
                            "url": ir.output["would"]["url"],
                            "body": ir.output["would"]["body"],
                        })),
                        StepStatus::Skipped if ir.output["left_alone"] == true => {
                            let why = why_left(name.as_deref(), tool, f.registry, integration);
                            p.left_alone.push(json!({
                                "step": step.id,
                                "name": name,
                                "id": id,
                                "owner": owner,
                                "why": why,
                            }));
                        }
                        StepStatus::Failed => p.unreadable.push(json!({
                            "step": step.id,
                            "action": action,
                            "status": null,
                            "error": ir.error,
                        })),
                        _ => {}
                    }
                }
            }
            StepKind::Approval { .. } | StepKind::Manual { .. } => {
                people.extend(asked(step, events));
            }
            StepKind::Wait(d) => waits.push(json!({
                "step": step.id,
                "wait": duration_text(*d),
                "wait_ms": d.as_millis() as u64,
            })),
            StepKind::Notice(_) => {}
        }
    }
    for p in platforms.values_mut() {
        // An item one write leaves alone may be another's target (a
        // person's OpenAI key vs a service account's), and two writes may
        // both leave it: it is left alone only if nothing changes it.
        let changed: BTreeSet<String> = p
            .would_change
            .iter()
            .filter_map(|w| w["id"].as_str().map(str::to_string))
            .collect();
        let mut seen = BTreeSet::new();
        p.left_alone.retain(|l| {
            let id = l["id"].as_str().unwrap_or("").to_string();
            id.is_empty() || (!changed.contains(&id) && seen.insert(id))
        });
    }
    let platforms: Vec<Json> = platforms
        .into_iter()
        .map(|(name, p)| platform_json(f, &name, p))
        .collect();
    let complete = platforms
        .iter()
        .all(|p| p["unreadable"].as_array().is_some_and(Vec::is_empty));
    let mut ready = readiness(f);
    ready["scopes_for_writes"] = platforms
        .iter()
        .flat_map(|p| {
            p["write_scopes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(a, any)| json!({"platform": p["platform"], "action": a, "any_of": any}))
        })
        .collect();
    json!({
        "status": if complete { "complete" } else { "incomplete" },
        "writes_sent": 0,
        "platforms": platforms,
        "people": people,
        "waits": waits,
        "after_writes": after,
        "readiness": ready,
    })
}

fn platform_json(f: &Facts<'_>, name: &str, p: Platform) -> Json {
    let m = f.library.catalog.get(name);
    let writes = p.would_change.len() as u64;
    // A lower bound: all writes under the account-wide rate, and each
    // endpoint's writes under its own (they run side by side).
    let rate = m.and_then(|m| m.rate_limit.per_second);
    let mut secs: Option<f64> = rate.filter(|r| *r > 0.0).map(|r| writes as f64 / r);
    if let Some(m) = m {
        let mut per_action: BTreeMap<&str, u64> = BTreeMap::new();
        for w in &p.would_change {
            *per_action
                .entry(w["action"].as_str().unwrap_or(""))
                .or_default() += 1;
        }
        for (a, n) in per_action {
            let Some(action) = m.actions.get(a) else {
                continue;
            };
            for r in action.rate_limit.iter().filter_map(|l| l.per_second) {
                if r > 0.0 {
                    let t = n as f64 / r;
                    secs = Some(secs.map_or(t, |s| s.max(t)));
                }
            }
        }
    }
    let at_least_ms = secs
        .filter(|_| writes > 0)
        .map(|s| (s * 1000.0).ceil() as u64);
    json!({
        "platform": name,
        "title": m.map(|m| m.title.clone()),
        "would_change": p.would_change,
        "left_alone": p.left_alone,
        "found": p.found,
        "unreadable": p.unreadable,
        "not_run": p.not_run,
        "calls": {
            "reads_sent": p.reads_sent,
            "writes": writes,
            "per_second": rate,
            "writes_take_at_least_ms": at_least_ms,
        },
        "write_scopes": p.write_scopes,
    })
}

/// Who a person's step would ask, from the plan's own record of it.
fn asked(step: &Step, events: &[&TimelineEvent]) -> Option<Json> {
    let e = events.iter().find(|e| e.kind == EventKind::PlanWouldAsk)?;
    Some(json!({
        "step": step.id,
        "kind": e.data["kind"],
        "who": e.data["who"],
        "text": e.data["text"],
    }))
}

fn needs_text(status: Option<u64>, scopes: &[String]) -> Option<String> {
    match status {
        Some(401) | Some(403) if !scopes.is_empty() => Some(format!(
            "the vendor documents {} for this call",
            scopes.join(" or ")
        )),
        Some(401) => Some("the credential was refused: check the secret".into()),
        Some(403) => Some("the credential lacks a permission the vendor does not name".into()),
        Some(404) => Some("not found: check the account or instance the secret points at".into()),
        Some(429) => Some("rate limited: the reads ran out of retries".into()),
        _ => None,
    }
}

/// How many objects a read returned (a fan-out's lists flattened).
fn count(output: &Json) -> usize {
    match output {
        Json::Array(a) if a.iter().all(Json::is_array) => {
            a.iter().map(|x| x.as_array().map_or(0, Vec::len)).sum()
        }
        Json::Array(a) => a.len(),
        Json::Null => 0,
        _ => 1,
    }
}

/// Why a write left an item it iterated alone.
fn why_left(name: Option<&str>, tool: &str, registry: &Registry, platform: &str) -> String {
    let Some(name) = name else {
        return "the step's condition leaves it out".into();
    };
    if registry.judge(platform, name).0 == Verdict::Approved {
        return "approved in the registry".into();
    }
    let (lower, tool_lower) = (name.trim().to_lowercase(), tool.trim().to_lowercase());
    if !tool.is_empty() && lower != tool_lower && lower.contains(&tool_lower) {
        return format!("its name only resembles \"{tool}\"; not an exact match");
    }
    "the step's condition leaves it out".into()
}

/// Where an item's display name, id and owner are: the inventory fields of
/// the list action that produced it, else the usual vendor field names.
struct Naming {
    name: Vec<String>,
    id: Vec<String>,
    owner: Vec<String>,
}

const NAMES: &[&str] = &[
    "name",
    "displayName",
    "displayText",
    "AppName",
    "title",
    "settings.title",
    "app.name",
    "attributes.name",
    "campaign.name",
    // Last: an Entra delegated grant has no name, only what it allows.
    "scope",
];
const IDS: &[&str] = &[
    "id",
    "clientId",
    "Id",
    "app.id",
    "campaign.id",
    "definitionId",
];
const OWNERS: &[&str] = &[
    "owner.user.email",
    "owner.name",
    "userKey",
    "UserId",
    "principalDisplayName",
    "principalId",
];

impl Naming {
    fn of(f: &Facts<'_>, step: &Step) -> Naming {
        let defaults = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut n = Naming {
            name: defaults(NAMES),
            id: defaults(IDS),
            owner: defaults(OWNERS),
        };
        let source = step
            .for_each
            .as_deref()
            .and_then(|p| p.strip_prefix("steps."))
            .and_then(|r| r.split('.').next())
            .and_then(|s| f.runbook.step(s));
        if let Some(StepKind::Action {
            integration,
            action,
        }) = source.map(|s| &s.kind)
        {
            if let Some(inv) = f
                .executor
                .action(integration, action)
                .and_then(|a| a.inventory.as_ref())
            {
                n.name.insert(0, inv.name.clone());
                n.id.insert(0, inv.id.clone());
                if let Some(u) = &inv.user {
                    n.owner.insert(0, u.clone());
                }
            }
        }
        n
    }

    fn read(&self, item: &Json) -> (Option<String>, Option<String>, Option<String>) {
        let first = |paths: &[String]| {
            paths.iter().find_map(|p| match lookup(item, p) {
                Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
                Some(Json::Number(n)) => Some(n.to_string()),
                _ => None,
            })
        };
        (first(&self.name), first(&self.id), first(&self.owner))
    }
}

/// What a real incident with this runbook would lack.
fn readiness(f: &Facts<'_>) -> Json {
    let mut reached: BTreeSet<&str> = BTreeSet::new();
    let mut roles_named: BTreeSet<String> = BTreeSet::new();
    for s in &f.runbook.steps {
        match &s.kind {
            StepKind::Action { integration, .. } => {
                reached.insert(integration);
            }
            StepKind::Approval { approvers, .. } => roles_named.extend(approvers.iter().cloned()),
            StepKind::Manual {
                assignee: Some(a), ..
            } => {
                roles_named.insert(a.clone());
            }
            _ => {}
        }
    }
    let not_configured: Vec<Json> = reached
        .iter()
        .filter_map(|i| {
            let missing = f.executor.missing_secrets(i);
            (!missing.is_empty()).then(|| json!({"platform": i, "missing_secrets": missing}))
        })
        .collect();
    let no_members: Vec<&String> = roles_named
        .iter()
        .filter(|r| f.roles.get(*r).is_none_or(Vec::is_empty))
        .collect();
    json!({
        "platforms_not_configured": not_configured,
        "roles_without_members": no_members,
    })
}

/// The report for a terminal.
pub fn render_text(r: &Json) -> String {
    let mut out = String::new();
    let line = |out: &mut String, s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(
        &mut out,
        format!(
            "Plan {} of {} ({}) on the {} platforms, {}",
            r["plan"].as_str().unwrap_or("?"),
            r["runbook"].as_str().unwrap_or("?"),
            inputs_text(&r["inputs"]),
            if r["target"] == "simulator" {
                "simulated"
            } else {
                "live"
            },
            r["planned_at"].as_str().unwrap_or("")
        ),
    );
    let (changes, reads) = totals(r);
    line(
        &mut out,
        format!(
            "Nothing was changed: {reads} read(s) sent; {changes} write(s) recorded, not sent."
        ),
    );
    for p in r["platforms"].as_array().into_iter().flatten() {
        line(&mut out, String::new());
        line(
            &mut out,
            format!(
                "{} ({})",
                p["platform"].as_str().unwrap_or("?"),
                p["title"].as_str().unwrap_or("")
            ),
        );
        for w in list(&p["would_change"]) {
            line(
                &mut out,
                format!(
                    "  would {}: {}    {} {}",
                    w["action"].as_str().unwrap_or("?"),
                    target_text(w),
                    w["method"].as_str().unwrap_or(""),
                    w["url"].as_str().unwrap_or("")
                ),
            );
        }
        for l in list(&p["left_alone"]) {
            line(
                &mut out,
                format!(
                    "  leaves alone: {}: {}",
                    target_text(l),
                    l["why"].as_str().unwrap_or("")
                ),
            );
        }
        for u in list(&p["unreadable"]) {
            line(
                &mut out,
                format!(
                    "  CANNOT READ ({}): {}{}",
                    u["step"].as_str().unwrap_or("?"),
                    u["error"].as_str().unwrap_or(""),
                    u["needs"]
                        .as_str()
                        .map(|n| format!("; {n}"))
                        .unwrap_or_default()
                ),
            );
        }
        let found: Vec<String> = list(&p["found"])
            .map(|x| {
                format!(
                    "{} {}",
                    x["step"].as_str().unwrap_or("?"),
                    x["items"].as_u64().unwrap_or(0)
                )
            })
            .collect();
        if !found.is_empty() {
            line(&mut out, format!("  read: {}", found.join(", ")));
        }
        for n in list(&p["not_run"]) {
            line(
                &mut out,
                format!("  not run: {}", n["why"].as_str().unwrap_or("")),
            );
        }
        line(&mut out, format!("  {}", cost_text(&p["calls"])));
    }
    let people: Vec<&Json> = list(&r["people"]).collect();
    if !people.is_empty() {
        line(&mut out, String::new());
        line(
            &mut out,
            "People it would ask (assumed yes in this plan):".into(),
        );
        for p in people {
            line(
                &mut out,
                format!(
                    "  {} ({}, {}): {}",
                    p["step"].as_str().unwrap_or("?"),
                    p["kind"].as_str().unwrap_or("?"),
                    who_text(&p["who"]),
                    p["text"].as_str().unwrap_or("")
                ),
            );
        }
    }
    for w in list(&r["waits"]) {
        line(
            &mut out,
            format!(
                "Would wait {} ({})",
                w["wait"].as_str().unwrap_or("?"),
                w["step"].as_str().unwrap_or("?")
            ),
        );
    }
    let after: Vec<String> = list(&r["after_writes"])
        .map(|a| {
            format!(
                "{} (after {})",
                a["step"].as_str().unwrap_or("?"),
                a["after"].as_str().unwrap_or("?")
            )
        })
        .collect();
    if !after.is_empty() {
        line(&mut out, String::new());
        line(
            &mut out,
            format!(
                "Would run after a write, so not in this plan: {}",
                after.join(", ")
            ),
        );
    }
    line(&mut out, String::new());
    line(&mut out, readiness_text(&r["readiness"]));
    out
}

/// The report as Markdown, for a ticket or a change review.
pub fn render_markdown(r: &Json) -> String {
    let mut out = String::new();
    let (changes, reads) = totals(r);
    out.push_str(&format!(
        "# Plan {}: {}\n\n{} · {} platforms · {}\n\nNothing was changed: {reads} read(s) sent; {changes} write(s) recorded, not sent.\n",
        r["plan"].as_str().unwrap_or("?"),
        r["runbook"].as_str().unwrap_or("?"),
        inputs_text(&r["inputs"]),
        r["target"].as_str().unwrap_or("?"),
        r["planned_at"].as_str().unwrap_or("")
    ));
    for p in r["platforms"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "\n## {} ({})\n\n{}\n",
            p["platform"].as_str().unwrap_or("?"),
            p["title"].as_str().unwrap_or(""),
            cost_text(&p["calls"])
        ));
        let rows = |items: Vec<&Json>, cols: &[(&str, &str)]| -> String {
            if items.is_empty() {
                return String::new();
            }
            let mut t = format!(
                "\n| {} |\n|{}\n",
                cols.iter().map(|c| c.0).collect::<Vec<_>>().join(" | "),
                " --- |".repeat(cols.len())
            );
            for i in items {
                let cells: Vec<String> = cols.iter().map(|(_, k)| cell(&i[*k])).collect();
                t.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            t
        };
        for (key, title, cols) in PLATFORM_SECTIONS {
            let items: Vec<&Json> = list(&p[*key]).collect();
            if !items.is_empty() {
                out.push_str(&format!("\n### {title}\n"));
                out.push_str(&rows(items, cols));
            }
        }
    }
    let people: Vec<&Json> = list(&r["people"]).collect();
    if !people.is_empty() {
        out.push_str("\n## People it would ask\n");
        out.push_str("\n| Step | Kind | Who | Asks |\n| --- | --- | --- | --- |\n");
        for p in people {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                cell(&p["step"]),
                cell(&p["kind"]),
                who_text(&p["who"]),
                cell(&p["text"])
            ));
        }
    }
    let after: Vec<&Json> = list(&r["after_writes"]).collect();
    if !after.is_empty() {
        out.push_str("\n## Would run after a write\n\n");
        for a in after {
            out.push_str(&format!(
                "- {} (after {})\n",
                cell(&a["step"]),
                cell(&a["after"])
            ));
        }
    }
    out.push_str("\n## Readiness\n\n");
    out.push_str(&readiness_text(&r["readiness"]));
    out.push('\n');
    out
}

/// (report key, heading, columns as (title, field)).
type Section = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);
const PLATFORM_SECTIONS: &[Section] = &[
    (
        "would_change",
        "Would change",
        &[
            ("Action", "action"),
            ("Name", "name"),
            ("Id", "id"),
            ("Owner", "owner"),
            ("Request", "url"),
        ],
    ),
    (
        "left_alone",
        "Left alone",
        &[
            ("Name", "name"),
            ("Id", "id"),
            ("Owner", "owner"),
            ("Why", "why"),
        ],
    ),
    (
        "unreadable",
        "Could not read",
        &[
            ("Step", "step"),
            ("HTTP", "status"),
            ("Error", "error"),
            ("Needs", "needs"),
        ],
    ),
];

fn list(v: &Json) -> impl Iterator<Item = &Json> {
    v.as_array().into_iter().flatten()
}

fn totals(r: &Json) -> (u64, u64) {
    list(&r["platforms"]).fold((0, 0), |(w, rd), p| {
        (
            w + p["calls"]["writes"].as_u64().unwrap_or(0),
            rd + p["calls"]["reads_sent"].as_u64().unwrap_or(0),
        )
    })
}

fn inputs_text(inputs: &Json) -> String {
    inputs
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| match v {
                    Json::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn target_text(x: &Json) -> String {
    let mut s = x["name"].as_str().unwrap_or("(unnamed)").to_string();
    if let Some(id) = x["id"].as_str() {
        s.push_str(&format!(" ({id})"));
    }
    if let Some(o) = x["owner"].as_str() {
        s.push_str(&format!(" of {o}"));
    }
    s
}

fn who_text(who: &Json) -> String {
    match who {
        Json::Array(a) if !a.is_empty() => a
            .iter()
            .filter_map(Json::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "anyone".into(),
    }
}

fn cost_text(calls: &Json) -> String {
    let writes = calls["writes"].as_u64().unwrap_or(0);
    let reads = calls["reads_sent"].as_u64().unwrap_or(0);
    let time = match calls["writes_take_at_least_ms"].as_u64() {
        Some(ms) => format!(
            ", taking at least {} at the vendor's published rate limits",
            duration_text(std::time::Duration::from_millis(ms))
        ),
        _ if writes > 0 => ", no published rate limit".into(),
        _ => String::new(),
    };
    format!("{reads} read(s) sent; the real containment would send {writes} write(s){time}")
}

fn readiness_text(r: &Json) -> String {
    let mut lines = vec![];
    for p in list(&r["platforms_not_configured"]) {
        lines.push(format!(
            "- {} is not configured: missing {}",
            p["platform"].as_str().unwrap_or("?"),
            p["missing_secrets"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(Json::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        ));
    }
    for role in list(&r["roles_without_members"]) {
        lines.push(format!(
            "- role {} has no members: add it under `roles:` in quench.yaml, or its steps wait for no one",
            role.as_str().unwrap_or("?")
        ));
    }
    let scopes: Vec<String> = list(&r["scopes_for_writes"])
        .map(|p| {
            let any: Vec<&str> = list(&p["any_of"]).filter_map(Json::as_str).collect();
            let rest = if any.len() > 1 {
                format!(" (or {})", any[1..].join(", "))
            } else {
                String::new()
            };
            format!(
                "- {}.{}: {}{rest}",
                p["platform"].as_str().unwrap_or("?"),
                p["action"].as_str().unwrap_or("?"),
                any.first().copied().unwrap_or("?"),
            )
        })
        .collect();
    let scopes = if scopes.is_empty() {
        String::new()
    } else {
        format!(
            "\nThe writes need these permissions (as the vendors document them):\n{}",
            scopes.join("\n")
        )
    };
    if lines.is_empty() {
        format!("Ready: every platform the runbook reaches has its secrets, and every role has members.{scopes}")
    } else {
        format!("A real incident would lack:\n{}{scopes}", lines.join("\n"))
    }
}

fn cell(v: &Json) -> String {
    let s = match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as a page (no script, no external asset); it refreshes
/// itself while the plan runs.
pub fn render_html(r: &Json) -> String {
    use crate::timeline::html_escape as esc;
    let title = format!(
        "Plan {} of {}",
        r["plan"].as_str().unwrap_or("?"),
        r["runbook"].as_str().unwrap_or("?")
    );
    let running = r["status"] == "running";
    let mut body = format!(
        "<h1>{}</h1><p>{} · {} platforms · {} · by {}</p>",
        esc(&title),
        esc(&inputs_text(&r["inputs"])),
        esc(r["target"].as_str().unwrap_or("?")),
        esc(r["planned_at"].as_str().unwrap_or("")),
        esc(r["planned_by"].as_str().unwrap_or("?")),
    );
    match r["status"].as_str() {
        Some("running") => {
            body.push_str("<p>Planning: reads only. This page refreshes itself.</p>")
        }
        Some("failed") => body.push_str(&format!(
            "<p class=\"overdue\">The plan failed: {}</p>",
            esc(r["error"].as_str().unwrap_or("?"))
        )),
        _ => {
            let (changes, reads) = totals(r);
            body.push_str(&format!(
                "<p>Nothing was changed: {reads} read(s) sent; {changes} write(s) recorded, not sent.</p>"
            ));
        }
    }
    let table = |items: Vec<&Json>, cols: &[(&str, &str)]| -> String {
        let head: String = cols
            .iter()
            .map(|c| format!("<th>{}</th>", esc(c.0)))
            .collect();
        let rows: String = items
            .iter()
            .map(|i| {
                let cells: String = cols
                    .iter()
                    .map(|(_, k)| format!("<td>{}</td>", esc(&cell(&i[*k]))))
                    .collect();
                format!("<tr>{cells}</tr>")
            })
            .collect();
        format!("<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    };
    for p in list(&r["platforms"]) {
        body.push_str(&format!(
            "<h2>{} ({})</h2><p>{}</p>",
            esc(p["platform"].as_str().unwrap_or("?")),
            esc(p["title"].as_str().unwrap_or("")),
            esc(&cost_text(&p["calls"]))
        ));
        for (key, heading, cols) in PLATFORM_SECTIONS {
            let items: Vec<&Json> = list(&p[*key]).collect();
            if !items.is_empty() {
                body.push_str(&format!("<h3>{heading}</h3>"));
                body.push_str(&table(items, cols));
            }
        }
    }
    let people: Vec<&Json> = list(&r["people"]).collect();
    if !people.is_empty() {
        body.push_str("<h2>People it would ask</h2>");
        body.push_str(&table(
            people,
            &[("Step", "step"), ("Kind", "kind"), ("Asks", "text")],
        ));
    }
    let after: Vec<&Json> = list(&r["after_writes"]).collect();
    if !after.is_empty() {
        body.push_str("<h2>Would run after a write</h2>");
        body.push_str(&table(after, &[("Step", "step"), ("After", "after")]));
    }
    if !r["readiness"].is_null() {
        body.push_str(&format!(
            "<h2>Readiness</h2><pre>{}</pre>",
            esc(&readiness_text(&r["readiness"]))
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">{}<title>{}</title>{}</head><body>{body}</body></html>\n",
        if running { "<meta http-equiv=\"refresh\" content=\"3\">" } else { "" },
        esc(&title),
        crate::timeline::PAGE_STYLE,
    )
}
