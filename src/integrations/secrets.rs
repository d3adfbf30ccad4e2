//! Secrets: read from the environment (or a secrets file), never printed.

use std::collections::BTreeMap;
use std::fmt;

/// A secret value whose `Debug`/`Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The secrets known to this process, by name.
#[derive(Clone, Default, Debug)]
pub struct Secrets {
    values: BTreeMap<String, Secret>,
}

impl Secrets {
    /// Looks each wanted name up in `file_values` first, then the environment.
    pub fn resolve<'a>(
        names: impl IntoIterator<Item = &'a String>,
        file_values: &BTreeMap<String, String>,
    ) -> Self {
        let mut values = BTreeMap::new();
        for n in names {
            let v = file_values
                .get(n)
                .cloned()
                .or_else(|| std::env::var(n).ok());
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                values.insert(n.clone(), Secret::new(v));
            }
        }
        Secrets { values }
    }

    /// Stand-ins for a drill: the simulator needs credentials to be present
    /// in the request, not real.
    pub fn simulated<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        let values = names
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    Secret::new(format!("sim-{}", n.to_ascii_lowercase())),
                )
            })
            .collect();
        Secrets { values }
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), Secret::new(value));
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn extend(&mut self, other: &Secrets) {
        for (k, v) in &other.values {
            self.values.insert(k.clone(), v.clone());
        }
    }

    /// The template context `secrets` object. Only for manifest rendering.
    pub fn context(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.values
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.expose().to_string())))
                .collect(),
        )
    }

    /// Replaces every secret value in `text` with `[REDACTED:NAME]`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, v) in &self.values {
            // Very short values would redact ordinary words; real secrets are long.
            if v.0.len() >= 6 && out.contains(v.0.as_str()) {
                out = out.replace(v.0.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_values_and_debug() {
        let mut s = Secrets::default();
        s.insert("HUBSPOT_TOKEN", "pat-na1-SECRET-123");
        assert_eq!(
            s.redact("Bearer pat-na1-SECRET-123 failed"),
            "Bearer [REDACTED:HUBSPOT_TOKEN] failed"
        );
        assert!(!format!("{s:?}").contains("SECRET"));
    }
}
