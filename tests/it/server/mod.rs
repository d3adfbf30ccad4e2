//! The daemon over HTTP: token checks, the REST API's contract, approvals
//! by role, notes, limits, the timeline page with its clocks, metrics; and
//! Slack: signatures, slash commands, buttons, the incident thread.

use std::time::Duration;

use hmac::{KeyInit, Mac};
use quench::daemon::{Daemon, DaemonParts};
use quench::slack::{Slack, SlackSettings};
use serde_json::{json, Value as Json};

use crate::slack_api::SlackApi;
use crate::support::{build_engine, Mock, Reply};

mod api;
mod failover;
mod process;
mod slack;

pub(crate) use process::{listening, project, spawn_serve_with};

pub(crate) const TOKEN: &str = "api-token-0123456789abcdef";
const SIGNING: &str = "slack-signing-secret-42";
const BOT: &str = "xoxb-bot-token-SEKRET";

/// A runbook that reaches the mock platform, then waits for legal's
/// approval and a manual task, then makes one more call.
const RUNBOOK: &str = r#"version: 1
name: contain
title: Contain a test exposure
inputs:
  tool: { type: string, required: true }
  jurisdictions: { type: list, default: [EU] }
  data_elements: { type: list, default: [name, email, purchase_history] }
  records: { type: integer, default: 0 }
steps:
  - id: revoke
    action: mockp.revoke
    with: { path: "grants/{{inputs.tool}}" }
    phase: contain
  - id: draft
    notice: { audience: regulator, jurisdictions: inputs.jurisdictions }
    needs: [revoke]
    phase: notify
  - id: legal
    approval: { approvers: [legal], prompt: "Notify for {{inputs.tool}}?" }
    needs: [draft]
  - id: vendor
    manual: { assignee: mops, instructions: "Ask the vendor to delete the upload" }
    needs: [revoke]
  - id: after
    action: mockp.post
    with: { path: "after", value: "done" }
    needs: [legal, vendor]
"#;

pub(crate) struct Host {
    pub(crate) url: String,
    pub(crate) daemon: Daemon,
    pub(crate) platform: Mock,
    pub(crate) slack: Option<SlackApi>,
    /// quench's own Slack adapter, when the host has Slack.
    pub(crate) adapter: Option<Slack>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum SlackKind {
    Off,
    Http,
    Socket,
}

async fn host(with_slack: bool) -> Host {
    host_with(if with_slack {
        SlackKind::Http
    } else {
        SlackKind::Off
    })
    .await
}

async fn host_with(kind: SlackKind) -> Host {
    host_full(kind, false).await
}

/// `live_plans`: live plans read the mock platform too.
async fn host_full(kind: SlackKind, live_plans: bool) -> Host {
    host_opts(kind, live_plans, false).await
}

/// `incident_channels`: a Slack channel per incident (else a thread).
pub(crate) async fn host_opts(kind: SlackKind, live_plans: bool, incident_channels: bool) -> Host {
    host_build(
        kind,
        live_plans,
        incident_channels,
        quench::daemon::access::Access::legacy_only(TOKEN),
    )
    .await
}

/// A host whose daemon accepts `access` (per-person tokens).
pub(crate) async fn host_build(
    kind: SlackKind,
    live_plans: bool,
    incident_channels: bool,
    access: quench::daemon::access::Access,
) -> Host {
    host_over(kind, live_plans, incident_channels, access, None, true).await
}

/// `host_build` over `store` (a shared one, say) when given, else a
/// fresh sled store; `start`: start the daemon (a standby does not).
pub(crate) async fn host_over(
    kind: SlackKind,
    live_plans: bool,
    incident_channels: bool,
    access: quench::daemon::access::Access,
    store: Option<quench::store::Store>,
    start: bool,
) -> Host {
    let with_slack = kind != SlackKind::Off;
    let platform = Mock::start().await;
    platform.on("/grants/ChatGPT", vec![Reply::status(204)]);
    platform.on("/after", vec![Reply::json(200, json!({"ok": true}))]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/contain.yaml"), RUNBOOK).unwrap();
    let clock = quench::engine::FakeClock::new(crate::support::start_time());
    let (engine, store, _) = match store {
        Some(store) => crate::support::build_engine_over(
            dir.path(),
            &platform.url,
            std::sync::Arc::new(clock),
            false,
            store,
        ),
        None => build_engine(dir.path(), &platform.url, clock, false),
    };
    let slack_mock = if with_slack {
        Some(SlackApi::start().await)
    } else {
        None
    };
    let slack = slack_mock.as_ref().map(|m| {
        Slack::new(SlackSettings {
            api_url: format!("{}/api", m.url),
            signing_secret: (kind == SlackKind::Http).then(|| SIGNING.into()),
            app_token: (kind == SlackKind::Socket).then(|| "xapp-1-A0QUENCH-SEKRET".into()),
            bot_token: Some(BOT.into()),
            channel: None,
            public_url: Some("https://quench.acme.example".into()),
            incident_channels,
            channel_name: quench::slack::CHANNEL_NAME.into(),
            hooks_url: m.url.clone(),
        })
        .unwrap()
    });
    let daemon = Daemon::new(DaemonParts {
        store,
        live: engine,
        drill: None,
        access,
        channel: slack
            .clone()
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn quench::daemon::Channel>),
        // Plans "on the simulator" read the mock platform here.
        planners: {
            let planner = crate::support::mock_executor(
                &crate::support::library(dir.path()),
                &platform.url,
                true,
            );
            quench::daemon::Planners {
                live: live_plans.then(|| planner.clone()),
                simulated: Some(planner),
            }
        },
    });
    if start {
        daemon.start().unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let d = daemon.clone();
    let routes = quench::slack::routes(slack.clone());
    tokio::spawn(async move {
        quench::server::serve(d, routes, listener, std::future::pending())
            .await
            .unwrap();
    });
    Host {
        url,
        daemon,
        platform,
        slack: slack_mock,
        adapter: slack,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Host {
    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Json>) -> (u16, Json) {
        self.call_as(TOKEN, method, path, body).await
    }

    /// `call` with another bearer token.
    pub(crate) async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Json>,
    ) -> (u16, Json) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Json::String(text)),
        )
    }

    /// Calls and expects an error: `status`, and a message containing `needle`.
    async fn refused(&self, method: &str, path: &str, body: Json, status: u16, needle: &str) {
        let (s, b) = self.call(method, path, Some(body)).await;
        assert_eq!(s, status, "{b}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{msg}");
    }

    /// Declares through the API and waits until the incident parks or ends.
    pub(crate) async fn declare_and_settle(&self, inputs: Json) -> String {
        let mut rx = self.daemon.engine().subscribe();
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/incidents",
                Some(json!({"runbook": "contain", "inputs": inputs, "severity": "sev1", "by": "U0RESP01"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        settle(&mut rx, &id).await;
        id
    }
}

type Feed = tokio::sync::broadcast::Receiver<(String, quench::store::TimelineEvent)>;

/// Waits for the incident's next parked/ended event (the timeout only
/// guards against a hang; nothing is timed).
pub(crate) async fn settle(rx: &mut Feed, id: &str) -> String {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (i, ev) = rx.recv().await.unwrap();
            if i == id
                && matches!(
                    ev.kind.as_str(),
                    "incident.waiting" | "incident.completed" | "incident.failed"
                )
            {
                return ev.kind;
            }
        }
    })
    .await
    .expect("the incident settles")
}

pub(crate) fn sign(ts: &str, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SIGNING.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v0={hex}")
}

/// A button press as Slack sends it (the `payload` of an interaction).
/// The ts of the request message whose button carries `value`, once
/// posted (a button counts only on its own message).
pub(crate) async fn ask_ts(slack: &SlackApi, value: &str) -> String {
    let find = |s: &SlackApi| {
        s.asks()
            .into_iter()
            .find(|m| {
                m.blocks
                    .to_string()
                    .contains(&format!("\"value\":\"{value}\""))
            })
            .map(|m| m.ts)
    };
    slack
        .until(&format!("the request for {value:?} posted"), |s| {
            find(s).is_some()
        })
        .await;
    find(slack).unwrap()
}

pub(crate) fn block_actions(
    user: &str,
    action: &str,
    value: &str,
    response_url: &str,
    message_ts: &str,
) -> Json {
    json!({
        "type": "block_actions",
        "team": {"id": "T0ACME", "domain": "acme"},
        "user": {"id": user, "username": "someone", "team_id": "T0ACME"},
        "api_app_id": "A0QUENCH",
        "token": "legacy-unused",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C0INC", "is_ephemeral": false},
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "channel": {"id": "C0INC", "name": "incidents"},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action, "block_id": "b1",
                     "text": {"type": "plain_text", "text": "Approve"},
                     "value": value, "action_ts": "1764406801.000300"}]
    })
}

/// A slash command's form body, as Slack sends it.
pub(crate) fn command_body(user: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "legacy-unused"),
        ("team_id", "T0ACME"),
        ("team_domain", "acme"),
        ("channel_id", "C0INC"),
        ("channel_name", "incidents"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/quench"),
        ("text", text),
        ("api_app_id", "A0QUENCH"),
        (
            "response_url",
            "https://hooks.slack.com/commands/T0ACME/1/x",
        ),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ])
    .unwrap()
}

pub(crate) fn now_ts() -> String {
    chrono::Utc::now().timestamp().to_string()
}

impl Host {
    pub(crate) async fn slack_post(
        &self,
        path: &str,
        body: String,
        ts: &str,
        sig: &str,
    ) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub(crate) async fn command(&self, user: &str, text: &str) -> (u16, String) {
        let body = command_body(user, text);
        let ts = now_ts();
        let sig = sign(&ts, &body);
        self.slack_post("/slack/commands", body, &ts, &sig).await
    }

    /// Sends an interaction payload, signed as Slack signs it.
    pub(crate) async fn interact(&self, payload: &Json) -> (u16, String) {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = now_ts();
        let sig = sign(&ts, &body);
        self.slack_post("/slack/interactions", body, &ts, &sig)
            .await
    }

    /// Presses a button of the request message carrying `value`.
    pub(crate) async fn press(&self, user: &str, action: &str, value: &str) -> u16 {
        let ts = ask_ts(self.slack.as_ref().unwrap(), value).await;
        self.press_on(user, action, value, &ts).await
    }

    /// Presses a button whose payload says it came from message `ts`.
    pub(crate) async fn press_on(&self, user: &str, action: &str, value: &str, ts: &str) -> u16 {
        let slack = self.slack.as_ref().unwrap();
        let payload = block_actions(user, action, value, &format!("{}/respond/1", slack.url), ts);
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        let ts = now_ts();
        let sig = sign(&ts, &body);
        self.slack_post("/slack/interactions", body, &ts, &sig)
            .await
            .0
    }

    pub(crate) async fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.url)).send().await;
        r.unwrap().text().await.unwrap()
    }

    /// The `n`th (1-based) reply posted to the interaction's response_url.
    pub(crate) async fn response(&self, n: usize) -> Json {
        let slack = self.slack.as_ref().unwrap();
        slack
            .until("a response_url reply", |s| s.responses().len() >= n)
            .await;
        slack.responses()[n - 1].clone()
    }

    fn slack_posts(&self) -> Vec<Json> {
        self.slack.as_ref().unwrap().calls("chat.postMessage")
    }
}
