//! Secrets: read from the environment (or a secrets file), never printed.

use std::collections::BTreeMap;
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};

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
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, Secret>,
    /// Every form of every secret `redact` looks for, and the name each
    /// stands for: worked out when a secret is added, not on every
    /// redaction (every string of every vendor answer is redacted).
    forms: Vec<(String, Secret)>,
    /// All of `forms` in one automaton, found in one pass, the longest at
    /// each place: searched one form after another, a deployment with
    /// thirty secrets made some 240 substring searches of every string.
    matcher: Option<AhoCorasick>,
}

impl fmt::Debug for Secrets {
    // By hand: the automaton's own Debug shows its patterns' bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("values", &self.values)
            .finish_non_exhaustive()
    }
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
        Secrets::from_values(values)
    }

    fn from_values(values: BTreeMap<String, Secret>) -> Self {
        let mut s = Secrets {
            values,
            ..Secrets::default()
        };
        s.reindex();
        s
    }

    fn reindex(&mut self) {
        self.forms = self
            .values
            .iter()
            // Very short values would redact ordinary words; real secrets are long.
            .filter(|(_, v)| v.0.len() >= 6)
            .flat_map(|(name, v)| {
                encodings(&v.0)
                    .into_iter()
                    .map(|f| (name.clone(), Secret(f)))
            })
            .collect();
        // Only a pattern set past the automaton's size limits fails to
        // build; `redacted` then searches form by form.
        self.matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(self.forms.iter().map(|(_, f)| f.expose()))
            .ok();
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
        Secrets::from_values(values)
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        self.values.insert(name.to_string(), Secret::new(value));
        self.reindex();
    }

    /// Keeps `value` redacted under `label` beside every value already
    /// kept (a refreshed token must not make the previous one readable).
    pub fn remember(&mut self, label: &str, value: &str) {
        if value.is_empty() || self.values.values().any(|v| v.0 == value) {
            return;
        }
        let mut name = label.to_string();
        let mut n = 1;
        while self.values.contains_key(&name) {
            n += 1;
            name = format!("{label}#{n}");
        }
        self.values.insert(name, Secret::new(value));
        self.reindex();
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn extend(&mut self, other: &Secrets) {
        for (k, v) in &other.values {
            self.values.insert(k.clone(), v.clone());
        }
        self.reindex();
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

    /// Replaces every secret value in `text` with `[REDACTED:NAME]`: the
    /// value itself and the forms it travels in (percent-encoded in a query
    /// or path, form-encoded, base64), since an error or a vendor's echo
    /// can carry any of them.
    pub fn redact(&self, text: &str) -> String {
        self.redacted(text).unwrap_or_else(|| text.to_string())
    }

    /// [`Secrets::redact`], or `None` when `text` holds no secret (the
    /// common case, which then copies nothing).
    pub fn redacted(&self, text: &str) -> Option<String> {
        if self.forms.is_empty() {
            return None;
        }
        let Some(m) = &self.matcher else {
            let mut out = text.to_string();
            for (name, form) in &self.forms {
                if out.contains(form.expose()) {
                    out = out.replace(form.expose(), &format!("[REDACTED:{name}]"));
                }
            }
            return (out != text).then_some(out);
        };
        let mut hits = m.find_iter(text).peekable();
        hits.peek()?;
        // Every form is whole UTF-8, so each hit starts and ends on a
        // character boundary of `text`.
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for hit in hits {
            out.push_str(&text[done..hit.start()]);
            out.push_str("[REDACTED:");
            out.push_str(&self.forms[hit.pattern().as_usize()].0);
            out.push(']');
            done = hit.end();
        }
        out.push_str(&text[done..]);
        Some(out)
    }
}

/// The value and its encoded forms, longest first (so a form that contains
/// another is replaced whole).
fn encodings(v: &str) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms = vec![
        v.to_string(),
        crate::template::encode_segment(v),
        lower_hex(&crate::template::encode_segment(v)),
        serde_urlencoded::to_string([("", v)])
            .map(|s| s.trim_start_matches('=').to_string())
            .unwrap_or_default(),
        b64.encode(v),
        b64.encode(v).trim_end_matches('=').to_string(),
        b64url.encode(v),
        // Inside a JSON string: escaped quotes, backslashes, control
        // characters (a PEM's newlines), and PHP-style `\/`.
        serde_json::to_string(v)
            .map(|q| q[1..q.len() - 1].to_string())
            .unwrap_or_default(),
        serde_json::to_string(v)
            .map(|q| q[1..q.len() - 1].replace('/', "\\/"))
            .unwrap_or_default(),
    ];
    forms.retain(|f| !f.is_empty());
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// `%2F` written `%2f`, as some clients and servers do.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut hex_left: u8 = 0;
    for c in s.chars() {
        out.push(if hex_left > 0 {
            c.to_ascii_lowercase()
        } else {
            c
        });
        hex_left = if c == '%' {
            2
        } else {
            hex_left.saturating_sub(1)
        };
    }
    out
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

    #[test]
    fn redacts_encoded_forms() {
        use base64::Engine as _;
        let mut s = Secrets::default();
        s.insert("K", "sk/a+b c=?d");
        let b64 = base64::engine::general_purpose::STANDARD.encode("sk/a+b c=?d");
        for text in [
            "x sk%2Fa%2Bb%20c%3D%3Fd y".to_string(),
            "x sk%2fa%2bb%20c%3d%3fd y".to_string(),
            "x sk%2Fa%2Bb+c%3D%3Fd y".to_string(),
            format!("x {b64} y"),
            r#"x sk\/a+b c=?d y"#.to_string(),
        ] {
            assert_eq!(s.redact(&text), "x [REDACTED:K] y", "{text}");
        }
        let mut pem = Secrets::default();
        pem.insert("PEM", "-----BEGIN KEY-----\nABCDEF\n-----END KEY-----");
        assert_eq!(
            pem.redact(r#"{"key":"-----BEGIN KEY-----\nABCDEF\n-----END KEY-----"}"#),
            r#"{"key":"[REDACTED:PEM]"}"#
        );
        let mut issued = Secrets::default();
        issued.remember("TOKEN", "first-token-1");
        issued.remember("TOKEN", "second-token-2");
        assert_eq!(
            issued.redact("first-token-1 then second-token-2"),
            "[REDACTED:TOKEN] then [REDACTED:TOKEN#2]"
        );
    }

    /// One secret inside another is redacted whole as the longer, never
    /// leaving the longer's tail readable; nothing else is touched, and
    /// text with no secret is not copied.
    #[test]
    fn the_longest_secret_at_each_place_wins_and_the_rest_is_kept() {
        let mut s = Secrets::default();
        s.insert("SHORT", "abc123");
        s.insert("LONG", "abc123-and-more");
        assert_eq!(
            s.redact("é abc123-and-more, abc123 é"),
            "é [REDACTED:LONG], [REDACTED:SHORT] é"
        );
        assert_eq!(s.redacted("nothing secret here"), None);
        assert_eq!(Secrets::default().redacted("abc123"), None);
        assert!(!format!("{s:?}").contains("abc123"));
    }
}
