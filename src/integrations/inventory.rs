//! Shadow-AI inventory: every connected app, OAuth grant and API key the
//! configured platforms report, marked against the approved-tools registry.

use std::path::Path;

use serde_json::{json, Value as Json};
use serde_yaml::Value;

use super::{Catalog, Executor};
use crate::runbook::Diagnostics;
use crate::source::check::{kind_of, Checker};
use crate::source::yaml::{YPath, YamlDoc};
use crate::template::lookup as lookup_path;
use crate::template::render_value;

/// One tool in the registry.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tool {
    pub name: String,
    pub vendor: Option<String>,
    /// Case-insensitive fragments of the names platforms show for it.
    pub matches: Vec<String>,
    /// Where it is approved; empty means everywhere.
    pub allowed_platforms: Vec<String>,
    pub owner: Option<String>,
    /// A known tool the company has said no to.
    pub banned: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Registry {
    pub tools: Vec<Tool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approved,
    Unapproved,
    Unknown,
}

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

const TOOL_KEYS: &[&str] = &[
    "name",
    "vendor",
    "match",
    "allowed_platforms",
    "owner",
    "status",
];

impl Registry {
    /// Reads `path`; a missing file is an empty registry (everything unknown).
    pub fn load(path: &Path) -> Result<Registry, Diagnostics> {
        let Ok(src) = std::fs::read_to_string(path) else {
            return Ok(Registry::default());
        };
        Registry::parse(&path.display().to_string(), &src)
    }

    pub fn parse(file: &str, src: &str) -> Result<Registry, Diagnostics> {
        let doc = YamlDoc::parse(file, src).map_err(|d| Diagnostics(vec![d]))?;
        let mut c = Checker::new(&doc);
        let root = YPath::root();
        let mut tools = vec![];
        let value = doc.value.clone();
        if let Some(top) = c
            .map(
                &root,
                &value,
                "the approved-tools registry",
                &["tools"],
                &["tools"],
            )
            .cloned()
        {
            let tp = root.key("tools");
            // `c.map` has reported a missing `tools`; a Mapping's index
            // would panic on it.
            match top.get("tools") {
                None => {}
                Some(Value::Sequence(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let p = tp.index(i);
                        let Some(m) = c.map(&p, item, "a tool", TOOL_KEYS, &["name"]).cloned()
                        else {
                            continue;
                        };
                        let Some(name) = m
                            .get("name")
                            .and_then(|v| c.string(&p.key("name"), v, "`name`"))
                        else {
                            continue;
                        };
                        let list = |c: &mut Checker, k: &str| {
                            m.get(k)
                                .and_then(|v| c.string_list(&p.key(k), v, &format!("`{k}`")))
                                .unwrap_or_default()
                        };
                        let mut matches = list(&mut c, "match");
                        if matches.is_empty() {
                            matches.push(name.clone());
                        }
                        let allowed_platforms = list(&mut c, "allowed_platforms");
                        let banned = match m
                            .get("status")
                            .and_then(|v| c.string(&p.key("status"), v, "`status`"))
                            .as_deref()
                        {
                            None | Some("approved") => false,
                            Some("unapproved") => true,
                            Some(other) => {
                                c.error_hint(
                                    &p.key("status"),
                                    format!("unknown status \"{other}\""),
                                    "approved (the default) or unapproved",
                                );
                                false
                            }
                        };
                        tools.push(Tool {
                            name,
                            vendor: m
                                .get("vendor")
                                .and_then(|v| c.string(&p.key("vendor"), v, "`vendor`")),
                            matches: matches.into_iter().map(|s| s.to_lowercase()).collect(),
                            allowed_platforms,
                            owner: m
                                .get("owner")
                                .and_then(|v| c.string(&p.key("owner"), v, "`owner`")),
                            banned,
                        });
                    }
                }
                Some(other) => c.error(
                    &tp,
                    format!("`tools` must be a list, found {}", kind_of(other)),
                ),
            }
        }
        if c.diags.is_empty() {
            Ok(Registry { tools })
        } else {
            Err(Diagnostics(c.diags).sorted())
        }
    }

    /// Marks one app, grant or key found on `platform`.
    pub fn judge(&self, platform: &str, name: &str) -> (Verdict, Option<String>, String) {
        let lower = name.to_lowercase();
        let Some(tool) = self.tools.iter().find(|t| {
            t.matches
                .iter()
                .any(|m| !m.is_empty() && lower.contains(m.as_str()))
        }) else {
            return (
                Verdict::Unknown,
                None,
                "not in the approved-tools registry".into(),
            );
        };
        if tool.banned {
            return (
                Verdict::Unapproved,
                Some(tool.name.clone()),
                format!("{} is listed as unapproved", tool.name),
            );
        }
        if tool.allowed_platforms.is_empty() || tool.allowed_platforms.iter().any(|p| p == platform)
        {
            let owner = tool
                .owner
                .as_deref()
                .map(|o| format!(", owner {o}"))
                .unwrap_or_default();
            (
                Verdict::Approved,
                Some(tool.name.clone()),
                format!("approved{owner}"),
            )
        } else {
            (
                Verdict::Unapproved,
                Some(tool.name.clone()),
                format!(
                    "{} is approved only on {}",
                    tool.name,
                    tool.allowed_platforms.join(", ")
                ),
            )
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_against_the_registry() {
        let r = Registry::parse(
            "approved-tools.yaml",
            "tools:\n  - { name: Jasper, match: [jasper], allowed_platforms: [hubspot], owner: content-lead }\n  - { name: ChatGPT, status: unapproved }\n",
        )
        .unwrap();
        assert_eq!(
            r.judge("hubspot", "Jasper AI Marketing").0,
            Verdict::Approved
        );
        assert_eq!(
            r.judge("google-workspace", "Jasper AI").0,
            Verdict::Unapproved
        );
        assert_eq!(r.judge("slack", "ChatGPT for Slack").0, Verdict::Unapproved);
        assert_eq!(r.judge("slack", "Zapier").0, Verdict::Unknown);
        let e =
            Registry::parse("a.yaml", "tools:\n  - { name: X, statsu: approved }\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.yaml:2:16: error: unknown key `statsu` in a tool\n  hint: did you mean `status`?"
        );
    }
}
