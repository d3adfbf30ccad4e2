//! Runs one attempt of a manifest action over HTTP.
//!
//! One reqwest client (connection reuse) and one limiter per integration for
//! the whole process. The executor only classifies each response; the
//! engine's retry policy decides whether and when to try again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::manifest::{Action, Auth, Manifest};
use super::rate_limit::Limiter;
use super::secrets::Secrets;
use super::Catalog;
use crate::render::{lookup, render_path, render_str, render_value};

/// Statuses worth another try: throttling, timeouts and server trouble.
pub const RETRIABLE: &[u16] = &[408, 425, 429, 500, 502, 503, 504];

#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub status: u16,
    pub output: Json,
    /// The effect already held (an `already_done` status).
    pub already_done: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("{message}")]
    Retriable {
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{message}")]
    Fatal {
        status: Option<u16>,
        message: String,
    },
}

impl CallError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Retriable { status, .. } | CallError::Fatal { status, .. } => *status,
        }
    }
}

struct Target {
    manifest: Arc<Manifest>,
    base_url: Option<String>,
    secrets: Secrets,
    limiter: Limiter,
}

/// Where each integration's requests go.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// integration -> base URL replacing the manifest's
    pub base_urls: HashMap<String, String>,
    pub secrets: Secrets,
}

pub struct Executor {
    client: reqwest::Client,
    targets: HashMap<String, Target>,
}

impl Executor {
    pub fn new(catalog: &Catalog, routing: Routing) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("quench/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let targets = catalog
            .manifests()
            .map(|m| {
                (
                    m.name.clone(),
                    Target {
                        manifest: m.clone(),
                        base_url: routing.base_urls.get(&m.name).cloned(),
                        secrets: routing.secrets.clone(),
                        limiter: Limiter::new(&m.rate_limit),
                    },
                )
            })
            .collect();
        Ok(Executor { client, targets })
    }

    pub fn action(&self, integration: &str, action: &str) -> Option<&Action> {
        self.targets.get(integration)?.manifest.actions.get(action)
    }

    /// Secrets this executor may send, for redacting anything recorded.
    pub fn redact(&self, text: &str) -> String {
        match self.targets.values().next() {
            Some(t) => t.secrets.redact(text),
            None => text.to_string(),
        }
    }

    /// One attempt. `timeout` bounds the whole request, body included.
    pub async fn call(
        &self,
        integration: &str,
        action_name: &str,
        with: &Json,
        idempotency_key: &str,
        timeout: Option<Duration>,
    ) -> Result<Success, CallError> {
        let fatal = |message: String| CallError::Fatal {
            status: None,
            message,
        };
        let t = self
            .targets
            .get(integration)
            .ok_or_else(|| fatal(format!("unknown integration \"{integration}\"")))?;
        let action = t.manifest.actions.get(action_name).ok_or_else(|| {
            fatal(format!(
                "integration \"{integration}\" has no action \"{action_name}\""
            ))
        })?;
        let what = format!("{integration}.{action_name}");

        let missing: Vec<&str> = t
            .manifest
            .secrets
            .iter()
            .filter(|s| !t.secrets.has(s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(fatal(format!(
                "{what}: missing secret{} {}; set the environment variable{} or add {} to the secrets file",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                if missing.len() > 1 { "s" } else { "" },
                if missing.len() > 1 { "them" } else { "it" },
            )));
        }

        let ctx = json!({
            "with": with,
            "secrets": t.secrets.context(),
            "run": { "idempotency_key": idempotency_key },
        });
        let redact = |s: String| t.secrets.redact(&s);
        let rendered = |r: Result<String, crate::render::RenderError>| {
            r.map_err(|e| fatal(redact(format!("{what}: {e}"))))
        };

        let base = match &t.base_url {
            Some(b) => b.clone(),
            None => rendered(render_str(&t.manifest.base_url, &ctx))?,
        };
        let url = format!(
            "{}{}",
            base.trim_end_matches('/'),
            rendered(render_path(&action.path, &ctx))?
        );
        let mut req = self.client.request(action.method.clone(), &url);
        match &t.manifest.auth {
            Auth::None => {}
            Auth::Bearer(tok) => req = req.bearer_auth(rendered(render_str(tok, &ctx))?),
            Auth::Basic { username, password } => {
                req = req.basic_auth(
                    rendered(render_str(username, &ctx))?,
                    Some(rendered(render_str(password, &ctx))?),
                )
            }
            Auth::Header { name, value } => {
                req = req.header(name.as_str(), rendered(render_str(value, &ctx))?)
            }
        }
        for (k, v) in &action.headers {
            req = req.header(k.as_str(), rendered(render_str(v, &ctx))?);
        }
        if !action.query.is_empty() {
            let q: Vec<(String, String)> = action
                .query
                .iter()
                .map(|(k, v)| Ok((k.clone(), rendered(render_str(v, &ctx))?)))
                .collect::<Result<_, CallError>>()?;
            req = req.query(&q);
        }
        if let Some(b) = &action.body {
            let body = render_value(b, &ctx).map_err(|e| fatal(redact(format!("{what}: {e}"))))?;
            req = req.json(&body);
        } else if !action.form.is_empty() {
            let f: Vec<(String, String)> = action
                .form
                .iter()
                .map(|(k, v)| Ok((k.clone(), rendered(render_str(v, &ctx))?)))
                .collect::<Result<_, CallError>>()?;
            req = req.form(&f);
        }
        if let Some(d) = timeout {
            req = req.timeout(d);
        }
        let shown_url = redact(strip_query(&url));

        let _permit = t.limiter.acquire().await;
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(CallError::Retriable {
                    status: None,
                    retry_after: None,
                    message: redact(format!(
                        "{what}: {} {shown_url}: {}",
                        action.method,
                        transport(&e)
                    )),
                })
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(CallError::Retriable {
                    status: Some(status),
                    retry_after,
                    message: redact(format!(
                        "{what}: reading the response of {} {shown_url}: {}",
                        action.method,
                        transport(&e)
                    )),
                })
            }
        };
        let body: Json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()))
        };

        if action.ok.contains(&status) || action.already_done.contains(&status) {
            let output = match &action.output {
                Some(field) => lookup(&body, field).cloned().unwrap_or(Json::Null),
                None => body,
            };
            return Ok(Success {
                status,
                output,
                already_done: !action.ok.contains(&status),
            });
        }
        let message = redact(format!(
            "{what}: HTTP {status} from {} {shown_url}: {}",
            action.method,
            excerpt(&String::from_utf8_lossy(&bytes))
        ));
        if RETRIABLE.contains(&status) {
            Err(CallError::Retriable {
                status: Some(status),
                retry_after,
                message,
            })
        } else {
            Err(CallError::Fatal {
                status: Some(status),
                message,
            })
        }
    }
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        // reqwest errors embed the URL, query included; keep the kind only.
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "(url)");
        }
        s.chars().take(200).collect()
    }
}

/// The first 300 characters of a body, on one line.
pub fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else if one_line.is_empty() {
        "(empty body)".to_string()
    } else {
        one_line
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
