//! The one client for talking to a daemon. Commands go through it when
//! `--server URL` (QUENCH_SERVER) names a daemon, from any machine and
//! folder, and when `quench serve` holds the local store (sled allows one
//! process): then the address is `listen` from the config (default
//! 127.0.0.1:8080). The token is the person's QUENCH_TOKEN, else the
//! shared api_token_env's.

use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::Value as Json;

use super::{CliToken, Env};
use crate::store::{Store, StoreError};

pub struct Remote {
    base: String,
    token: CliToken,
    /// Named with --server / QUENCH_SERVER (rather than found holding the store).
    named: bool,
    http: reqwest::Client,
}

/// Where a command reads and writes.
pub enum Access {
    Local(Store),
    Daemon(Remote),
}

impl Env {
    /// The store, or the daemon that holds it.
    pub fn access(&self) -> anyhow::Result<Access> {
        if let Some(url) = &self.server {
            return Ok(Access::Daemon(self.remote(url, true)?));
        }
        if self.shared_store()? {
            // The daemon is the store's one writer, and has it read already.
            return Ok(Access::Daemon(self.remote(&self.daemon_url(), false)?));
        }
        match Store::open(&self.data_dir) {
            Ok(s) => Ok(Access::Local(s)),
            Err(e @ StoreError::Locked { .. }) => self
                .remote(&self.daemon_url(), false)
                .map(Access::Daemon)
                .map_err(|why| anyhow!("{e}\n(to go through the daemon: {why})")),
            Err(e) => Err(e.into()),
        }
    }

    /// A client for the daemon at `base`, with this user's token.
    pub fn remote(&self, base: &str, named: bool) -> anyhow::Result<Remote> {
        let token = self.cli_token().map_err(|e| anyhow!("{e}"))?;
        Remote::new(base, token, named)
    }
}

impl Remote {
    #[allow(clippy::disallowed_methods)] // the daemon client is built here
    fn new(base: &str, token: CliToken, named: bool) -> anyhow::Result<Remote> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(anyhow!(
                "--server \"{base}\" is not a URL: write it as http://HOST:PORT or https://HOST"
            ));
        }
        Ok(Remote {
            base,
            token,
            named,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The `by` to send for a decision or note: what the user asked for;
    /// else nothing with a personal token (the daemon records the token's
    /// user), and $USER with the shared token, which names no one.
    pub fn by(&self, asked: Option<String>) -> Option<String> {
        asked.or_else(|| (!self.token.personal).then(super::people::default_actor))
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let resp = req
            .bearer_auth(&self.token.value)
            .send()
            .await
            .with_context(|| {
                if self.named {
                    format!("the daemon at {} does not answer (check --server / QUENCH_SERVER)", self.base)
                } else {
                    format!("the store is held by a daemon, and {} does not answer (set QUENCH_SERVER to its URL)", self.base)
                }
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body: Json = resp.json().await.unwrap_or_default();
        let msg = body["error"]["message"]
            .as_str()
            .unwrap_or("no error message");
        let hint = match status.as_u16() {
            401 => format!(
                " (the token in {} is not one it accepts)",
                self.token.source
            ),
            _ => String::new(),
        };
        Err(anyhow!(
            "the daemon at {} answered {status}: {msg}{hint}",
            self.base
        ))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Json> {
        let resp = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await?;
        Ok(resp.json().await?)
    }

    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self
            .send(self.http.get(format!("{}{path}", self.base)))
            .await?;
        Ok(resp.text().await?)
    }

    pub async fn post(&self, path: &str, body: &Json) -> anyhow::Result<Json> {
        let resp = self
            .send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await?;
        Ok(resp.json().await?)
    }
}
