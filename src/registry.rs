//! The approved-tools registry (`approved-tools.yaml`): which AI tools the
//! company has approved, where, and which it has said no to; and the
//! verdict on a name a platform shows for a connected app.

use std::path::Path;

use serde_yaml::Value;

use crate::source::check::{kind_of, Checker};
use crate::source::yaml::{YPath, YamlDoc};
use crate::source::Diagnostics;

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
