//! Reading a vendor's answer: what a response means (ok, already done,
//! retry, fail, reauth) from its status and body, and where the next page is.

use serde_json::Value as Json;

use super::executor::{Exchange, RETRIABLE};
use super::manifest::{Action, Manifest, Means};
use crate::template::lookup as lookup_path;

/// The first matching rule (action's, then manifest's), else the status.
pub(super) fn classify(m: &Manifest, a: &Action, ex: &Exchange) -> Means {
    for rule in a.responses.iter().chain(&m.responses) {
        let status_ok = rule.status.is_empty() || rule.status.contains(&ex.status);
        let body_ok = rule.body.iter().all(|(path, vals)| {
            lookup_path(&ex.body, path).is_some_and(|got| vals.iter().any(|v| loose_eq(got, v)))
        });
        if status_ok && body_ok {
            return rule.means;
        }
    }
    if a.ok.contains(&ex.status) {
        Means::Ok
    } else if a.already_done.contains(&ex.status) {
        Means::AlreadyDone
    } else if ex.status == 401 {
        Means::Reauth
    } else if RETRIABLE.contains(&ex.status) {
        Means::Retry
    } else {
        Means::Fail
    }
}

/// `601` matches `"601"`: vendors disagree on whether codes are strings.
pub(super) fn loose_eq(a: &Json, b: &Json) -> bool {
    a == b || scalar_text(a) == scalar_text(b)
}

pub(super) fn scalar_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Object(_) => "an object",
        Json::String(_) => "a string",
        Json::Number(_) => "a number",
        Json::Bool(_) => "a boolean",
        Json::Array(_) => "a list",
        Json::Null => "null",
    }
}

/// `rel="next"` of an RFC 8288 Link header.
pub(super) fn next_link(h: &reqwest::header::HeaderMap) -> Option<String> {
    for v in h.get_all(reqwest::header::LINK) {
        let v = v.to_str().ok()?;
        for part in v.split(',') {
            let mut bits = part.split(';');
            let target = bits.next()?.trim();
            if bits.any(|b| {
                let b = b.trim().replace(' ', "");
                b == "rel=\"next\"" || b == "rel=next"
            }) {
                return Some(
                    target
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string(),
                );
            }
        }
    }
    None
}

/// Resolves a next-page link that may be relative to the first URL.
pub(super) fn absolute(base: &str, link: &str) -> String {
    if link.starts_with("http://") || link.starts_with("https://") {
        return link.to_string();
    }
    match reqwest::Url::parse(base).and_then(|b| b.join(link)) {
        Ok(u) => u.to_string(),
        Err(_) => link.to_string(),
    }
}
