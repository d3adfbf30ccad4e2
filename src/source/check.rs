//! Typed reads from a located YAML document that collect every problem.
//!
//! Each reader returns `None` after recording a diagnostic, so callers keep
//! going and one pass reports everything, the way a compiler does.

use serde_yaml::{Mapping, Value};

use super::duration::parse_duration;
use crate::source::diagnostic::{did_you_mean, Diagnostic};
use crate::source::yaml::{YPath, YamlDoc};

pub struct Checker<'a> {
    pub doc: &'a YamlDoc,
    pub diags: Vec<Diagnostic>,
}

pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Quotes a scalar for a message; containers are described by kind.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind_of(other).to_string(),
    }
}

impl<'a> Checker<'a> {
    pub fn new(doc: &'a YamlDoc) -> Self {
        Checker {
            doc,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, path: &YPath, msg: impl Into<String>) {
        let d = self.doc.error(path, msg);
        self.diags.push(d);
    }

    pub fn error_hint(&mut self, path: &YPath, msg: impl Into<String>, hint: impl Into<String>) {
        let d = self.doc.error(path, msg).with_hint(hint);
        self.diags.push(d);
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// A map whose keys are checked against `allowed` and `required`.
    pub fn map<'v>(
        &mut self,
        path: &YPath,
        v: &'v Value,
        what: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<&'v Mapping> {
        let Value::Mapping(m) = v else {
            self.error(path, format!("{what} must be a map, found {}", kind_of(v)));
            return None;
        };
        for k in m.keys() {
            let Value::String(key) = k else {
                self.error(path, format!("{what} has a non-string key {}", show(k)));
                continue;
            };
            if !allowed.contains(&key.as_str()) {
                let kp = path.key(key);
                let msg = format!("unknown key `{key}` in {what}");
                match did_you_mean(key, allowed.iter().copied()) {
                    Some(s) => {
                        let d = self
                            .doc
                            .key_error(&kp, msg)
                            .with_hint(format!("did you mean `{s}`?"));
                        self.diags.push(d);
                    }
                    None => {
                        let d = self
                            .doc
                            .key_error(&kp, msg)
                            .with_hint(format!("allowed keys: {}", allowed.join(", ")));
                        self.diags.push(d);
                    }
                }
            }
        }
        for r in required {
            if !m.contains_key(*r) {
                self.error(path, format!("{what} is missing the required key `{r}`"));
            }
        }
        Some(m)
    }

    pub fn string(&mut self, path: &YPath, v: &Value, what: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            // Numbers and booleans are fine where text is expected (`version: 2026-07-15`).
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.error(
                    path,
                    format!("{what} must be a string, found {}", kind_of(v)),
                );
                None
            }
        }
    }

    pub fn uint(&mut self, path: &YPath, v: &Value, what: &str) -> Option<u64> {
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.error(
                    path,
                    format!("{what} must be a non-negative integer, found {}", show(v)),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, path: &YPath, v: &Value, what: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.error(
                    path,
                    format!("{what} must be true or false, found {}", show(v)),
                );
                None
            }
        }
    }

    pub fn string_list(&mut self, path: &YPath, v: &Value, what: &str) -> Option<Vec<String>> {
        let Value::Sequence(items) = v else {
            self.error(path, format!("{what} must be a list, found {}", kind_of(v)));
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = self.string(&path.index(i), item, what) {
                out.push(s);
            }
        }
        Some(out)
    }

    pub fn duration(&mut self, path: &YPath, v: &Value, what: &str) -> Option<std::time::Duration> {
        let text = match v {
            Value::String(s) => s.clone(),
            _ => {
                self.error_hint(
                    path,
                    format!("{what} must be a duration, found {}", show(v)),
                    "write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Some(d) => Some(d),
            None => {
                self.error_hint(
                    path,
                    format!("invalid duration \"{text}\" in {what}"),
                    "write a number with a unit: 500ms, 30s, 10m, 2h, 1d",
                );
                None
            }
        }
    }
}
