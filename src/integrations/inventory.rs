//! Shadow-AI inventory: every connected app, OAuth grant and API key the
//! configured platforms report, marked against the approved-tools registry.

use serde_json::{json, Value as Json};

use super::{Catalog, Executor};
use crate::registry::{Registry, Verdict};
use crate::template::lookup as lookup_path;
use crate::template::render_value;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Found {
    pub platform: String,
    pub kind: String,
    pub name: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    pub reason: String,
}

/// What one scan found, and what it could not look at.
#[derive(Debug, Default, serde::Serialize)]
pub struct Scan {
    pub items: Vec<Found>,
    /// platform -> missing secrets
    pub skipped: Vec<(String, Vec<String>)>,
    /// platform -> error
    pub errors: Vec<(String, String)>,
}

fn text(v: Option<&Json>) -> String {
    match v {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn as_list(v: Json) -> Vec<Json> {
    match v {
        Json::Array(a) => a,
        Json::Null => vec![],
        one => vec![one],
    }
}

/// Calls every inventory action of every configured integration.
pub async fn scan(exec: &Executor, catalog: &Catalog, registry: &Registry) -> Scan {
    let mut out = Scan::default();
    for m in catalog.manifests() {
        let inventory: Vec<_> = m
            .actions
            .iter()
            .filter_map(|(n, a)| a.inventory.as_ref().map(|i| (n, i)))
            .collect();
        if inventory.is_empty() {
            continue;
        }
        let missing = exec.missing_secrets(&m.name);
        if !missing.is_empty() {
            out.skipped.push((m.name.clone(), missing));
            continue;
        }
        for (action, spec) in inventory {
            // (with, user) per call: once, or once per item of `for_each`.
            let mut calls: Vec<(Json, Option<String>)> = vec![];
            match &spec.for_each {
                None => calls.push((
                    render_value(&spec.with, &json!({})).unwrap_or(Json::Null),
                    None,
                )),
                Some(list) => match exec
                    .call(&m.name, list, &json!({}), "inventory", None)
                    .await
                {
                    Ok(ok) => {
                        for item in as_list(ok.output) {
                            match render_value(&spec.with, &json!({"item": item})) {
                                Ok(w) => calls.push((w, None)),
                                Err(e) => {
                                    out.errors.push((m.name.clone(), format!("{action}: {e}")))
                                }
                            }
                        }
                    }
                    Err(e) => {
                        out.errors.push((m.name.clone(), e.to_string()));
                        continue;
                    }
                },
            }
            for (with, _) in calls {
                match exec.call(&m.name, action, &with, "inventory", None).await {
                    Ok(ok) => {
                        for entry in as_list(ok.output) {
                            let name = text(lookup_path(&entry, &spec.name));
                            let (verdict, tool, reason) = registry.judge(&m.name, &name);
                            out.items.push(Found {
                                platform: m.name.clone(),
                                kind: spec.kind.clone(),
                                id: text(lookup_path(&entry, &spec.id)),
                                user: spec
                                    .user
                                    .as_ref()
                                    .map(|u| text(lookup_path(&entry, u)))
                                    .filter(|u| !u.is_empty()),
                                name,
                                verdict,
                                tool,
                                reason,
                            });
                        }
                    }
                    Err(e) => out.errors.push((m.name.clone(), e.to_string())),
                }
            }
        }
    }
    out
}
