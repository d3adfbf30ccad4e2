//! Slack: responders declare and steer incidents with `/quench`, decide
//! approvals with buttons, and follow each incident in a thread of its
//! channel (progress, decisions asked for, regulatory clocks).
//!
//! Every request from Slack is checked against the signing secret before
//! anything else (401 otherwise); with no secret configured Slack is off
//! and `/slack/*` answers 404. Posting uses slack-morphism's Web API client
//! with its rate control, so Slack's 429 + Retry-After are honoured.

mod api;
mod commands;
mod interactions;
mod message;
mod modal;
mod outbox;
mod replay;
mod room;
mod socket;
mod verify;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use slack_morphism::prelude::*;

use crate::config::SlackConfig;
use crate::daemon::Daemon;

/// What the record names as the credential of a request from Slack: its
/// signature (or Socket Mode's app connection) vouches for the user id.
pub const CREDENTIAL: &str = "slack";

/// Resolved Slack settings: secrets already read from the environment.
#[derive(Clone)]
pub struct SlackSettings {
    pub api_url: String,
    /// Checks requests to /slack/*; None: those endpoints answer 404.
    pub signing_secret: Option<String>,
    /// Socket Mode's app-level token (xapp-...); None: HTTP only.
    pub app_token: Option<String>,
    pub bot_token: Option<String>,
    pub channel: Option<String>,
    pub public_url: Option<String>,
    /// A channel per incident; false: a thread in the declaring channel.
    pub incident_channels: bool,
    /// The incident channel's name pattern (`{{id}}`, `{{runbook}}`, `{{severity}}`).
    pub channel_name: String,
    /// The only origin `response_url` replies go to (Slack's hooks host;
    /// a local mock in tests).
    pub hooks_url: String,
}

/// Where Slack's response_urls point (api.slack.com/interactivity/handling).
pub const HOOKS_URL: &str = "https://hooks.slack.com";

/// The bot scopes quench uses, each for what; examples/slack-app-manifest.yaml
/// asks for exactly these.
pub const SCOPES: &[(&str, &str)] = &[
    ("commands", "/quench"),
    (
        "chat:write",
        "the status message, requests, decisions, updates",
    ),
    (
        "channels:manage",
        "a channel per incident, its topic, inviting responders",
    ),
    ("channels:read", "the channel's membership events"),
    (
        "channels:history",
        "after a restart, find a post that was in flight",
    ),
    ("pins:write", "pin the status message"),
    ("bookmarks:write", "the timeline page in the channel header"),
];

/// The default incident channel name (DESIGN.md).
pub const CHANNEL_NAME: &str = "inc-{{id}}-{{runbook}}";

impl std::fmt::Debug for SlackSettings {
    // The secret and token must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSettings")
            .field("api_url", &self.api_url)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "[REDACTED]"))
            .field("socket_mode", &self.app_token.is_some())
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl SlackSettings {
    /// From the config and the environment. `Ok(None)`: no signing secret,
    /// so Slack is off.
    pub fn from_config(cfg: Option<&SlackConfig>) -> Result<Option<SlackSettings>, String> {
        let default = SlackConfig::default();
        let cfg = cfg.unwrap_or(&default);
        let secret_env = cfg
            .signing_secret_env
            .as_deref()
            .unwrap_or("SLACK_SIGNING_SECRET");
        let signing_secret = std::env::var(secret_env).ok().filter(|s| !s.is_empty());
        let app_token = if cfg.socket_mode {
            let env = cfg.app_token_env.as_deref().unwrap_or("SLACK_APP_TOKEN");
            let Some(t) = std::env::var(env).ok().filter(|s| !s.is_empty()) else {
                return Err(format!(
                    "slack.socket_mode is true but {env} (app_token_env) is not set: create an app-level token with connections:write and export it"
                ));
            };
            Some(t)
        } else {
            None
        };
        if signing_secret.is_none() && app_token.is_none() {
            return Ok(None);
        }
        let token_env = cfg.bot_token_env.as_deref().unwrap_or("SLACK_BOT_TOKEN");
        Ok(Some(SlackSettings {
            api_url: cfg
                .api_url
                .clone()
                .unwrap_or_else(|| "https://slack.com/api".into())
                .trim_end_matches('/')
                .to_string(),
            signing_secret,
            app_token,
            bot_token: std::env::var(token_env).ok().filter(|s| !s.is_empty()),
            channel: cfg.channel.clone(),
            public_url: cfg
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_string()),
            incident_channels: cfg.incident_channels.unwrap_or(true),
            hooks_url: origin(cfg.hooks_url.as_deref().unwrap_or(HOOKS_URL)).ok_or_else(|| {
                format!(
                    "slack.hooks_url \"{}\" is not a URL: write it as https://HOST (default {HOOKS_URL})",
                    cfg.hooks_url.as_deref().unwrap_or_default()
                )
            })?,
            channel_name: {
                let pattern = cfg
                    .channel_name
                    .clone()
                    .unwrap_or_else(|| CHANNEL_NAME.into());
                // A pattern that cannot render fails at start, not mid-incident.
                let probe = serde_json::json!({"id": "INC-1", "runbook": "r", "severity": "sev1"});
                if let Err(e) = crate::template::render_str(&pattern, &probe) {
                    return Err(format!(
                        "slack.channel_name \"{pattern}\": {e} (it may use {{{{id}}}}, {{{{runbook}}}} and {{{{severity}}}})"
                    ));
                }
                pattern
            },
        }))
    }
}

#[derive(Clone)]
pub struct Slack {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Option<slack_morphism::signature_verifier::SlackEventSignatureVerifier>,
    app_token: Option<String>,
    socket: tokio::sync::Mutex<Option<socket::SocketMode>>,
    client: Arc<SlackHyperClient>,
    token: Option<SlackApiToken>,
    channel: Option<String>,
    public_url: Option<String>,
    incident_channels: bool,
    channel_name: String,
    hooks_url: String,
    /// Signatures already acted on (see `replay`).
    replays: std::sync::Mutex<replay::Replays>,
    /// The outbox's tasks, stopped with the daemon.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The daemon's metrics, once `follow` attaches it.
    metrics: std::sync::Mutex<Option<crate::daemon::metrics::Metrics>>,
}

impl Slack {
    pub fn new(s: SlackSettings) -> std::io::Result<Slack> {
        // slack-morphism's own connector is https-only; a configurable
        // api_url (a local mock) needs http as well. Real Slack stays https.
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system CA certificates: https calls to Slack will fail");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let https = builder
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(&s.api_url)
            .with_rate_control(SlackApiRateControlConfig::new().with_max_retries(3));
        Ok(Slack {
            inner: Arc::new(Inner {
                verifier: s.signing_secret.map(|secret| {
                    slack_morphism::signature_verifier::SlackEventSignatureVerifier::new(
                        &SlackSigningSecret::new(secret),
                    )
                }),
                app_token: s.app_token,
                socket: Default::default(),
                client: Arc::new(SlackClient::new(connector)),
                token: s.bot_token.map(|t| SlackApiToken::new(t.into())),
                channel: s.channel,
                public_url: s.public_url,
                incident_channels: s.incident_channels,
                channel_name: s.channel_name,
                hooks_url: origin(&s.hooks_url).unwrap_or_else(|| HOOKS_URL.into()),
                replays: Default::default(),
                tasks: Default::default(),
                metrics: Default::default(),
            }),
        })
    }

    /// Opens the Socket Mode connection when an app token is configured.
    pub async fn connect(&self, daemon: Daemon) -> Result<(), String> {
        let Some(token) = &self.inner.app_token else {
            return Ok(());
        };
        let sm = socket::SocketMode::connect(self, daemon, token).await?;
        *self.inner.socket.lock().await = Some(sm);
        Ok(())
    }

    /// Closes the Socket Mode connection, if any, and stops posting (the
    /// outbox's cursors are stored: the next start carries on).
    pub async fn disconnect(&self) {
        outbox::stop(self);
        if let Some(sm) = self.inner.socket.lock().await.take() {
            sm.shutdown().await;
        }
    }

    /// Posts incident updates to Slack as the engines record events.
    pub fn follow(&self, daemon: Daemon) {
        *self.inner.metrics.lock().expect("slack metrics") = Some(daemon.metrics().clone());
        outbox::spawn(self.clone(), daemon);
    }

    /// The incident's live status text (the status message, `/quench status`).
    fn status_of(&self, d: &Daemon, id: &str) -> Result<String, crate::store::StoreError> {
        let store = d.store();
        let snap = store.snapshot(id)?;
        let events = store.events(id)?;
        let notices = store.notices(id)?;
        let known = d.engine().library().known();
        let rb = crate::runbook::load(
            &snap.incident.runbook_file,
            &snap.incident.runbook_source,
            &known,
        )
        .ok();
        Ok(message::live_status(
            &snap,
            &events,
            rb.as_ref(),
            &notices,
            d.engine().now(),
            self.page_link(id).as_deref(),
        ))
    }

    /// False when this (verified) request's signature was seen before.
    fn first_time(&self, headers: &HeaderMap) -> bool {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let sig = get(slack_morphism::signature_verifier::SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER)
            .unwrap_or_default();
        let ts = get(
            slack_morphism::signature_verifier::SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP,
        )
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or_default();
        // Slack's own clock is what the signature window is measured on.
        #[allow(clippy::disallowed_methods)]
        let now = chrono::Utc::now().timestamp();
        self.inner
            .replays
            .lock()
            .expect("replays")
            .first_time(sig, ts, now)
    }

    /// Whether an interaction's response_url may be answered: only on
    /// Slack's hooks host, never anywhere a payload points.
    fn may_respond(&self, url: &str) -> bool {
        origin(url).is_some_and(|o| o == self.inner.hooks_url)
    }

    fn page_link(&self, id: &str) -> Option<String> {
        self.link(&format!("incidents/{id}"))
    }

    fn plan_link(&self, id: &str) -> Option<String> {
        self.link(&format!("plans/{id}"))
    }

    fn link(&self, path: &str) -> Option<String> {
        self.inner
            .public_url
            .as_ref()
            .map(|u| format!("{u}/{path}"))
    }
}

/// `scheme://host[:port]` of a URL, lowercased; None if it is not an
/// http(s) URL.
fn origin(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    if !matches!(u.scheme(), "http" | "https") {
        return None;
    }
    let host = u.host_str()?.to_ascii_lowercase();
    Some(match u.port() {
        Some(p) => format!("{}://{host}:{p}", u.scheme()),
        None => format!("{}://{host}", u.scheme()),
    })
}

/// `/slack/*`: each verifies the signature on the raw body first. With
/// no `slack` (not configured) they answer that Slack is off.
pub fn routes(slack: Option<Slack>) -> Router<Daemon> {
    Router::new()
        .route("/slack/commands", post(on_command))
        .route("/slack/interactions", post(on_interaction))
        .route("/slack/events", post(on_event))
        .layer(axum::Extension(slack))
}

/// The configured Slack a request reaches, if any.
type Configured = axum::Extension<Option<Slack>>;

impl crate::daemon::Channel for Slack {
    fn follow(&self, daemon: Daemon) {
        Slack::follow(self, daemon)
    }

    fn connect(&self, daemon: Daemon) -> crate::daemon::Pending<'_, Result<(), String>> {
        Box::pin(Slack::connect(self, daemon))
    }

    fn disconnect(&self) -> crate::daemon::Pending<'_, ()> {
        Box::pin(Slack::disconnect(self))
    }
}

/// Why a request from Slack was turned away before any work.
enum Refused {
    Off,
    Unsigned,
    /// Signed, but that signature was acted on already.
    Replayed,
    /// Signed, reaching a standby of the shared store: why, and who leads.
    Standby(String),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Off => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({"error": {"code": "not_found", "message": "Slack is not configured on this daemon (no signing secret)"}})),
            )
                .into_response(),
            Refused::Unsigned => (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"error": {"code": "unauthorized", "message": "invalid Slack signature"}})),
            )
                .into_response(),
            // 200: Slack (or whoever replays) must not retry it. A slash
            // command's answer is shown only to the one who typed it.
            Refused::Replayed => axum::Json(serde_json::json!({
                "response_type": "ephemeral",
                "text": "This request was already received and acted on once; it was not run again."
            }))
            .into_response(),
            // 503: the Events API retries it, and a load balancer that
            // follows /healthz's role sends Slack to the leader.
            Refused::Standby(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"error": {"code": "standby", "message": why}})),
            )
                .into_response(),
        }
    }
}

/// The checks every Slack request passes: Slack on, signature valid,
/// this daemon the leader (a standby says so only to a signed request),
/// not seen before.
async fn admit(
    d: &Daemon,
    slack: Option<&Slack>,
    endpoint: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Slack, Refused> {
    let Some((slack, verifier)) = slack.and_then(|s| s.inner.verifier.as_ref().map(|v| (s, v)))
    else {
        return Err(Refused::Off);
    };
    if let Err(why) = verify::check(verifier, headers, body) {
        d.metrics().inc(
            crate::daemon::metrics::Count::SlackRequests,
            &[("endpoint", endpoint), ("outcome", "rejected")],
        );
        tracing::warn!(endpoint, reason = %why, "Slack request rejected");
        return Err(Refused::Unsigned);
    }
    if let Some(why) = d.standby_reason().await {
        d.metrics().inc(
            crate::daemon::metrics::Count::SlackRequests,
            &[("endpoint", endpoint), ("outcome", "standby")],
        );
        return Err(Refused::Standby(why));
    }
    if !slack.first_time(headers) {
        d.metrics().inc(
            crate::daemon::metrics::Count::SlackRequests,
            &[("endpoint", endpoint), ("outcome", "replayed")],
        );
        tracing::warn!(endpoint, "Slack request replayed: answered, not acted on");
        return Err(Refused::Replayed);
    }
    d.metrics().inc(
        crate::daemon::metrics::Count::SlackRequests,
        &[("endpoint", endpoint), ("outcome", "accepted")],
    );
    Ok(slack.clone())
}

fn bad_payload(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %e, "unreadable Slack {what}");
    (
        StatusCode::BAD_REQUEST,
        format!("unreadable Slack {what}: {e}\n"),
    )
        .into_response()
}

async fn on_command(
    State(d): State<Daemon>,
    axum::Extension(slack): Configured,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let slack = match admit(&d, slack.as_ref(), "commands", &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let ev: SlackCommandEvent = match serde_urlencoded::from_bytes(&body) {
        Ok(ev) => ev,
        Err(e) => return bad_payload("command", e),
    };
    axum::Json(commands::handle(&d, &slack, ev).await).into_response()
}

async fn on_interaction(
    State(d): State<Daemon>,
    axum::Extension(slack): Configured,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let slack = match admit(&d, slack.as_ref(), "interactions", &headers, &body).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    #[derive(serde::Deserialize)]
    struct Form {
        payload: String,
    }
    let ev: SlackInteractionEvent = match serde_urlencoded::from_bytes::<Form>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| serde_json::from_str(&f.payload).map_err(|e| e.to_string()))
    {
        Ok(ev) => ev,
        Err(e) => return bad_payload("interaction", e),
    };
    match interactions::handle(&d, &slack, ev).await {
        Some(body) => axum::Json(body).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

async fn on_event(
    State(d): State<Daemon>,
    axum::Extension(slack): Configured,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = admit(&d, slack.as_ref(), "events", &headers, &body).await {
        return r.into_response();
    }
    match serde_json::from_slice::<SlackPushEvent>(&body) {
        Ok(SlackPushEvent::UrlVerification(v)) => {
            axum::Json(serde_json::json!({"challenge": v.challenge})).into_response()
        }
        // Nothing subscribes to message events yet; acknowledge so Slack
        // does not retry.
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => bad_payload("event", e),
    }
}
