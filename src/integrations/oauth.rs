//! OAuth2 access tokens for integrations: fetched from the token endpoint
//! (client credentials, refresh token or a signed JWT assertion), cached
//! until shortly before expiry, and redacted like secrets once issued.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::time::Instant;

use super::executor::{excerpt, strip_query, transport, CallError, Executor, Target, RETRIABLE};
use super::manifest::{OAuth2, SendAs};
use super::secrets::Secret;
use crate::template::{render_str, Scope};

impl Executor {
    /// The cached access token, fetched when missing or about to expire.
    /// The lock makes concurrent callers share one token request.
    pub(super) async fn token(
        &self,
        t: &Target,
        o: &OAuth2,
        ctx: &Scope,
        what: &str,
        timeout: Option<Duration>,
    ) -> Result<Secret, CallError> {
        let mut slot = t.token.lock().await;
        if let Some((tok, until)) = slot.as_ref() {
            if Instant::now() < *until {
                return Ok(tok.clone());
            }
        }
        let fatal = |m: String| CallError::Fatal {
            status: None,
            message: self.redact(&m),
        };
        let url = match &t.token_url {
            Some(u) => u.clone(),
            None => render_str(&o.token_url, ctx)
                .map_err(|e| fatal(format!("{what}: oauth2 token_url: {e}")))?,
        };
        let params: Vec<(String, String)> = o
            .params
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    render_str(v, ctx)
                        .map_err(|e| fatal(format!("{what}: oauth2 params.{k}: {e}")))?,
                ))
            })
            .collect::<Result<_, CallError>>()?;
        let mut params = params;
        if let Some(j) = &o.jwt {
            let key = render_str(&j.key, ctx)
                .map_err(|e| fatal(format!("{what}: oauth2 jwt.key: {e}")))?;
            let mut claims = serde_json::Map::new();
            for (k, v) in &j.claims {
                let v = render_str(v, ctx)
                    .map_err(|e| fatal(format!("{what}: oauth2 jwt.claims.{k}: {e}")))?;
                claims.insert(k.clone(), Json::String(v));
            }
            // The vendor checks `iat` against its own clock: real time.
            #[allow(clippy::disallowed_methods)]
            let now = chrono::Utc::now().timestamp();
            let assertion = super::jwt::sign(&key, &claims, now, j.lifetime_secs as i64)
                .map_err(|e| fatal(format!("{what}: oauth2 jwt: {e}")))?;
            params.push(("assertion".into(), assertion));
        }
        let mut req = self.client.request(o.method.clone(), &url);
        req = match o.send_as {
            SendAs::Form => req.form(&params),
            SendAs::Json => req.json(&params.iter().cloned().collect::<BTreeMap<_, _>>()),
            SendAs::Query => req.query(&params),
        };
        if let Some(d) = timeout {
            req = req.timeout(d);
        }
        let shown = self.redact(&strip_query(&url));
        let resp = req.send().await.map_err(|e| CallError::Retriable {
            status: None,
            retry_after: None,
            message: self.redact(&format!(
                "{what}: oauth2 token request to {shown}: {}",
                transport(&e)
            )),
        })?;
        let status = resp.status().as_u16();
        // A token answer is small; a huge one is refused, not buffered.
        let raw = match super::executor::read_capped(
            resp,
            super::manifest::Limits::DEFAULT_MAX_RESPONSE_BYTES,
        )
        .await
        {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => {
                return Err(CallError::Fatal {
                    status: Some(status),
                    message: format!(
                        "{what}: oauth2 token request to {shown}: HTTP {status}: the answer is over {} bytes or broke off",
                        super::manifest::Limits::DEFAULT_MAX_RESPONSE_BYTES
                    ),
                })
            }
        };
        if !(200..300).contains(&status) {
            let message = self.redact(&format!(
                "{what}: oauth2 token request to {shown}: HTTP {status}: {}",
                excerpt(&raw)
            ));
            return Err(if RETRIABLE.contains(&status) {
                CallError::Retriable {
                    status: Some(status),
                    retry_after: None,
                    message,
                }
            } else {
                CallError::Fatal {
                    status: Some(status),
                    message: format!("{message}; check the integration's client credentials"),
                }
            });
        }
        let body: Json = serde_json::from_str(&raw).unwrap_or(Json::Null);
        let Some(token) = body
            .get("access_token")
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
        else {
            return Err(fatal(format!(
                "{what}: oauth2 token response from {shown} has no access_token"
            )));
        };
        let lifetime = body
            .get("expires_in")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(3600);
        // Renew a minute early so a request never leaves with a dying token.
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(1));
        let secret = Secret::new(token);
        self.issued.lock().expect("issued tokens").remember(
            &format!(
                "{}_ACCESS_TOKEN",
                t.manifest.name.to_ascii_uppercase().replace('-', "_")
            ),
            token,
        );
        *slot = Some((secret.clone(), until));
        Ok(secret)
    }
}
