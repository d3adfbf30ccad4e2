//! When `quench serve` holds the store (sled allows one process), the
//! commands people use during an incident go through its API instead:
//! the daemon's address is QUENCH_SERVER, else `listen` from the config
//! (default 127.0.0.1:8080); the token is api_token_env's.

use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::Value as Json;

use super::Env;
use crate::store::{Store, StoreError};

pub struct Remote {
    base: String,
    token: String,
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
        match Store::open(&self.data_dir) {
            Ok(s) => Ok(Access::Local(s)),
            Err(e @ StoreError::Locked { .. }) => {
                let (token_env, token) = self.api_token();
                let Some(token) = token else {
                    return Err(anyhow!(
                        "{e}\n(to go through the daemon, set {token_env} to its API token)"
                    ));
                };
                let base = std::env::var("QUENCH_SERVER")
                    .ok()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| {
                        format!(
                            "http://{}",
                            self.config.listen.as_deref().unwrap_or("127.0.0.1:8080")
                        )
                    });
                Ok(Access::Daemon(Remote::new(&base, token)?))
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Remote {
    pub fn new(base: &str, token: String) -> anyhow::Result<Remote> {
        Ok(Remote {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("the store is held by a daemon, and {} does not answer (set QUENCH_SERVER to its URL)", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body: Json = resp.json().await.unwrap_or_default();
        let msg = body["error"]["message"]
            .as_str()
            .unwrap_or("no error message");
        Err(anyhow!(
            "the daemon at {} answered {status}: {msg}",
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
