//! `quench.yaml`: every key optional (DESIGN.md, "Configuration").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value as Json;

use crate::runbook::{Diagnostic, Pos};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub runbooks_dir: Option<PathBuf>,
    pub integrations_dir: Option<PathBuf>,
    pub api_token_env: Option<String>,
    /// The approved-tools registry for `quench inventory` (default ./approved-tools.yaml).
    pub approved_tools: Option<PathBuf>,
    /// A YAML map of secret name -> value, for hosts without env injection.
    pub secrets_file: Option<PathBuf>,
    #[serde(default)]
    pub integrations: BTreeMap<String, IntegrationOverride>,
    pub slack: Option<SlackConfig>,
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
    pub organization: Option<serde_yaml::Value>,
    /// How pages and exports show times (default UTC).
    pub timezone: Option<Zone>,
    /// Per-person API tokens (their SHA-256) and what each may do.
    #[serde(default)]
    pub access: Vec<crate::daemon::access::AccessEntry>,
    /// Where incidents are kept: the embedded store in `data_dir`
    /// (default), or PostgreSQL.
    pub store: Option<StoreConfig>,
}

/// `store:` (DESIGN.md, "Extensions").
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub backend: Backend,
    /// The environment variable holding the PostgreSQL URL (default
    /// QUENCH_DATABASE_URL): a URL may carry a password, so the config
    /// names where it is rather than holding it.
    pub url_env: Option<String>,
    /// How long a leader's lease runs without a renewal (default 10s):
    /// the most a standby waits to take over from a leader that died.
    pub lease: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Sled,
    Postgres,
}

/// An IANA time zone name, checked when the config is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone(pub chrono_tz::Tz);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<chrono_tz::Tz>().map(Zone).map_err(|_| {
            serde::de::Error::custom(format!(
                "`timezone`: \"{name}\" is not a time zone: use an IANA name such as UTC, Europe/Berlin or America/New_York"
            ))
        })
    }
}

/// `slack:` (DESIGN.md), plus `channel` and `public_url`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Web API base (a local mock in tests); default <https://slack.com/api>.
    pub api_url: Option<String>,
    /// Env var holding the signing secret; unset secret = Slack off.
    pub signing_secret_env: Option<String>,
    /// Env var holding the bot token (xoxb-...) used to post updates.
    pub bot_token_env: Option<String>,
    #[serde(default)]
    pub socket_mode: bool,
    pub app_token_env: Option<String>,
    /// Channel id for updates on incidents not declared from Slack.
    pub channel: Option<String>,
    /// The only origin response_url replies go to (default
    /// <https://hooks.slack.com>; a local mock in tests).
    pub hooks_url: Option<String>,
    /// How people reach this daemon (links to /incidents/ID in messages).
    pub public_url: Option<String>,
    /// A channel per incident (default); false: a thread in the declaring
    /// channel.
    pub incident_channels: Option<bool>,
    /// The incident channel's name; `{{id}}`, `{{runbook}}`, `{{severity}}`
    /// are replaced (default `inc-{{id}}-{{runbook}}`).
    pub channel_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IntegrationOverride {
    pub base_url: Option<String>,
    /// Where to get OAuth2 tokens instead of the manifest's `token_url`.
    pub token_url: Option<String>,
}

impl Config {
    /// Reads `path`; `None` means the defaults (and `./quench.yaml` if present).
    pub fn load(path: Option<&Path>) -> Result<Config, Diagnostic> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("quench.yaml"), false),
        };
        let shown = path.display().to_string();
        let src = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default())
            }
            Err(e) => {
                return Err(Diagnostic::new(
                    &shown,
                    Pos::START,
                    format!("cannot read the config: {e}"),
                ))
            }
        };
        if src.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(&src).map_err(|e| {
            let mut d = crate::source::yaml::typed_error(&shown, "config", &e);
            // serde places a value's own check (a time zone's name) at the
            // start of the map; the message names the key, so point at it.
            if let Some(key) = d
                .message
                .split_once(": `")
                .and_then(|(_, rest)| rest.split_once("`:"))
                .map(|(k, _)| k.to_string())
            {
                if let Ok(doc) = crate::source::yaml::YamlDoc::parse(&shown, &src) {
                    let pos = doc.pos(&crate::source::yaml::YPath::root().key(&key));
                    (d.line, d.col) = (pos.line, pos.col);
                }
            }
            d
        })
    }

    /// The PostgreSQL URL when the store is shared: `Ok(None)` for the
    /// embedded store, an error when the variable it names is unset.
    pub fn shared_store_url(&self) -> Result<Option<String>, String> {
        let Some(store) = self
            .store
            .as_ref()
            .filter(|s| s.backend == Backend::Postgres)
        else {
            return Ok(None);
        };
        let var = store.url_env.as_deref().unwrap_or("QUENCH_DATABASE_URL");
        match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => Ok(Some(url.trim().to_string())),
            _ => Err(format!(
                "`store: {{backend: postgres}}` reads the database's URL from ${var}, which is not set: set it to postgres://USER:PASSWORD@HOST:PORT/DATABASE (or name another variable with `url_env:`)"
            )),
        }
    }

    /// The shared store's lease (`store.lease`, default 10s).
    pub fn lease(&self) -> Result<std::time::Duration, String> {
        match self.store.as_ref().and_then(|s| s.lease.as_deref()) {
            None => Ok(crate::store::DEFAULT_LEASE),
            Some(text) => crate::source::duration::parse_duration(text)
                .filter(|d| *d >= std::time::Duration::from_millis(300))
                .ok_or_else(|| {
                    format!("`store.lease`: \"{text}\" is not a duration of 300ms or more: write it as 10s, 1500ms or 1m")
                }),
        }
    }

    /// The display zone of pages and exports.
    pub fn zone(&self) -> chrono_tz::Tz {
        self.timezone.map(|z| z.0).unwrap_or(chrono_tz::Tz::UTC)
    }

    pub fn organization_json(&self) -> Json {
        self.organization
            .as_ref()
            .and_then(|v| serde_json::to_value(v).ok())
            // `example` marks the stand-in: drills draft with it (and say
            // so); a real incident refuses to (notice steps).
            .unwrap_or_else(|| serde_json::json!({"name": "Example Marketing Ltd", "dpo": {"name": "Data Protection Officer", "email": "dpo@example.com", "phone": "+1 555 0100"}, "website": "https://example.com/security", "example": true}))
    }

    /// Secrets from `secrets_file`, if configured.
    pub fn file_secrets(&self) -> Result<BTreeMap<String, String>, Diagnostic> {
        let Some(p) = &self.secrets_file else {
            return Ok(BTreeMap::new());
        };
        let shown = p.display().to_string();
        let src = std::fs::read_to_string(p).map_err(|e| {
            Diagnostic::new(
                &shown,
                Pos::START,
                format!("cannot read the secrets file: {e}"),
            )
        })?;
        // Never echo the file's content in an error: it holds secrets.
        serde_yaml::from_str(&src).map_err(|e| {
            Diagnostic::new(
                &shown,
                crate::source::yaml::error_pos(&e),
                "the secrets file must be a map of NAME: value strings",
            )
        })
    }
}
