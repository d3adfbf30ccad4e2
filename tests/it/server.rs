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
    let with_slack = kind != SlackKind::Off;
    let platform = Mock::start().await;
    platform.on("/grants/ChatGPT", vec![Reply::status(204)]);
    platform.on("/after", vec![Reply::json(200, json!({"ok": true}))]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(dir.path().join("runbooks/contain.yaml"), RUNBOOK).unwrap();
    let clock = quench::engine::FakeClock::new(crate::support::start_time());
    let (engine, store, _) = build_engine(dir.path(), &platform.url, clock, false);
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
    daemon.start().unwrap();
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

#[tokio::test]
async fn tokens_guard_the_api_and_pages_but_not_health_or_metrics() {
    let h = host(false).await;
    let r = h
        .http
        .get(format!("{}/api/v1/incidents", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"quench\"");
    let body: Json = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = h
        .http
        .get(format!("{}/api/v1/incidents", h.url))
        .bearer_auth("api-token-0123456789abcdeX")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (s, body) = h.call("GET", "/api/v1/incidents", None).await;
    assert_eq!((s, body), (200, json!({"incidents": []})));

    // Pages: a browser gets a Basic challenge, then signs in with the token.
    let r = h.http.get(format!("{}/", h.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic realm=\"quench\""));
    let r = h
        .http
        .get(format!("{}/", h.url))
        .basic_auth("anyone", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<h1>Incidents</h1>"));
    let r = h
        .http
        .get(format!("{}/", h.url))
        .basic_auth("anyone", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = h
        .http
        .get(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Json>().await.unwrap()["status"], "ok");
    let text = h
        .http
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("# TYPE quench_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"quench_http_requests_total{method="GET",route="/api/v1/incidents",status="401"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"quench_incidents{status="running"} 0"#),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            line.starts_with("quench_"),
            "metric not named quench_*: {line}"
        );
    }

    // Slack is off without a signing secret.
    let r = h
        .http
        .post(format!("{}/slack/commands", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn an_incident_declared_over_the_api_waits_for_the_right_people() {
    let h = host(false).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    assert_eq!(h.platform.hits("/grants/ChatGPT"), 1);

    let (s, inc) = h
        .call("GET", &format!("/api/v1/incidents/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(inc["id"], id.as_str());
    assert_eq!(inc["runbook"], "contain");
    assert_eq!(inc["status"], "waiting");
    assert_eq!(inc["severity"], "sev1");
    assert_eq!(inc["declared_by"], "U0RESP01");
    let step = |inc: &Json, sid: &str| {
        inc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == sid)
            .cloned()
            .unwrap_or(Json::Null)
    };
    assert_eq!(step(&inc, "revoke")["status"], "succeeded");
    assert_eq!(step(&inc, "legal")["status"], "waiting");
    assert_eq!(step(&inc, "vendor")["status"], "waiting");
    // GDPR's 72 hours from declaration (the default "aware"), on the fake clock.
    let eu = &inc["clocks"][0];
    assert_eq!(eu["rule"], "eu-gdpr-authority");
    assert_eq!(eu["left"], "3d 0h");

    // Someone without the legal role: 403, and the attempt is on the record.
    let (s, body) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0INTERN"})),
        )
        .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (_, tl) = h
        .call("GET", &format!("/api/v1/incidents/{id}/timeline"), None)
        .await;
    let refused: Vec<&Json> = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "approval.refused")
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], "U0INTERN");

    // Wrong kind of decision for the step: 409 with the right verb.
    let (s, body) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/steps/legal/done"),
            Some(json!({"by": "U0LEGAL1"})),
        )
        .await;
    assert_eq!(s, 409, "{body}");

    let mut rx = h.daemon.engine().subscribe();
    let (s, body) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0LEGAL1", "note": "notify"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["decision"], "approved");
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");
    // Deciding twice is a conflict, not a second approval.
    let (s, _) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0LEGAL1"})),
        )
        .await;
    assert_eq!(s, 409);

    let (s, body) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/steps/vendor/done"),
            Some(json!({"by": "mops-lead", "note": "vendor confirmed deletion"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(settle(&mut rx, &id).await, "incident.completed");
    assert_eq!(h.platform.hits("/after"), 1);

    let (_, tl) = h
        .call("GET", &format!("/api/v1/incidents/{id}/timeline"), None)
        .await;
    assert_eq!(tl["incident"], id.as_str());
    let events = tl["events"].as_array().unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let granted = events
        .iter()
        .find(|e| e["kind"] == "approval.granted")
        .unwrap();
    assert_eq!(granted["actor"], "U0LEGAL1");
    assert_eq!(granted["step"], "legal");

    let (_, list) = h.call("GET", "/api/v1/incidents", None).await;
    assert_eq!(list["incidents"][0]["status"], "completed");
    let (s, audit) = h
        .call("GET", &format!("/api/v1/incidents/{id}/audit"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(audit["intact"], true, "{audit}");
    let r = h
        .http
        .get(format!(
            "{}/api/v1/incidents/{id}/timeline?format=markdown",
            h.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/markdown; charset=utf-8");
    assert!(r.text().await.unwrap().contains("approval.granted"));
    let (s, _) = h
        .call(
            "GET",
            &format!("/api/v1/incidents/{id}/timeline?format=pdf"),
            None,
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(audit["report"]["events"], events.len());

    // KPIs: contained and drafted at declaration on the fake clock.
    let (s, k) = h.call("GET", "/api/v1/kpis?since=2026-11-01", None).await;
    assert_eq!(s, 200, "{k}");
    assert_eq!(k["incidents"]["incidents"], 1);
    assert_eq!(k["incidents"]["completed"], 1);
    assert_eq!(k["incidents"]["time_to_contain"]["median_ms"], 0);
    assert_eq!(k["incidents"]["time_to_notify"]["median_ms"], 0);
    assert_eq!(k["drills"]["incidents"], 0);
    let (_, k) = h.call("GET", "/api/v1/kpis?since=2026-12-01", None).await;
    assert_eq!(k["incidents"]["incidents"], 0);
    let (s, _) = h.call("GET", "/api/v1/kpis?since=yesterday", None).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_plan_through_the_daemon_sends_nothing_and_shows_what_it_would_change() {
    let h = host(false).await;
    let body = json!({"runbook": "contain", "inputs": {"tool": "ChatGPT"}, "simulated": true, "by": "U0RESP01"});
    let resp = h
        .http
        .post(format!("{}/api/v1/plans", h.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    h.refused(
        "POST",
        "/api/v1/plans",
        json!({"runbook": "nope", "simulated": true}),
        404,
        "no runbook named \"nope\"",
    )
    .await;
    h.refused(
        "POST",
        "/api/v1/plans",
        json!({"runbook": "contain", "inputs": {"tool": "ChatGPT"}}),
        503,
        "no live plans",
    )
    .await;
    let (status, started) = h.call("POST", "/api/v1/plans", Some(body)).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("PLAN-"), "{id}");
    h.daemon.plan_finished(&id).await;
    let (status, r) = h.call("GET", &format!("/api/v1/plans/{id}"), None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], "complete", "{r}");
    assert_eq!(r["planned_by"], "U0RESP01");
    assert_eq!(r["inputs"]["tool"], "ChatGPT");
    let mockp = &r["platforms"][0];
    assert_eq!(mockp["platform"], "mockp");
    assert_eq!(mockp["would_change"][0]["method"], "DELETE");
    assert_eq!(
        mockp["would_change"][0]["url"],
        "https://mock.invalid/grants/ChatGPT"
    );
    // The write was recorded, not sent: the platform saw nothing.
    assert!(h.platform.seen().is_empty(), "{:?}", h.platform.seen());
    // And no incident was declared.
    let (_, list) = h.call("GET", "/api/v1/incidents", None).await;
    assert_eq!(list["incidents"], json!([]));
    let page = h
        .http
        .get(format!("{}/plans/{id}", h.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for want in [
        "Would change",
        "https://mock.invalid/grants/ChatGPT",
        "Would run after a write",
        "Nothing was changed",
    ] {
        assert!(html.contains(want), "page lacks {want:?}:\n{html}");
    }
    let (status, _) = h
        .call("GET", "/api/v1/plans/PLAN-19990101-0001", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_record_nothing() {
    let h = host(false).await;
    let post = |body: Json| h.call("POST", "/api/v1/incidents", Some(body));
    let (s, b) = post(json!({"runbook": "contian", "inputs": {"tool": "x"}})).await;
    assert_eq!(s, 404, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `contain`?"),
        "{b}"
    );
    // A path is not a runbook name over the API.
    let (s, _) = post(json!({"runbook": "/etc/passwd"})).await;
    assert_eq!(s, 404);
    let (s, b) = post(json!({"runbook": "contain", "inputs": {"records": "many"}})).await;
    assert_eq!(s, 422, "{b}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(msg.contains("`records` must be an integer"), "{msg}");
    assert!(msg.contains("missing required input `tool`"), "{msg}");
    let (s, b) =
        post(json!({"runbook": "contain", "inputs": {"tool": "x", "jurisdictions": "EU,US-CAL"}}))
            .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("did you mean `US-CA`?"));
    let (s, b) =
        post(json!({"runbook": "contain", "inputs": {"tool": "x"}, "severity": "sev9"})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (422, Some("invalid")));
    let (s, b) = post(json!({"runbook": "contain", "surprise": 1})).await;
    assert_eq!(s, 422, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown field `surprise`"));

    let r = h
        .http
        .post(format!("{}/api/v1/incidents", h.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"runbook\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Json>().await.unwrap()["error"]["code"],
        "bad_request"
    );

    let big = json!({"runbook": "contain", "inputs": {"tool": "x".repeat(1 << 20)}});
    let (s, b) = post(big).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["error"]["code"], "too_large");

    let (s, b) = h.call("GET", "/api/v1/incidents/INC-404", None).await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("not_found")));
    let (s, _) = h.call("GET", "/api/v1/nothing", None).await;
    assert_eq!(s, 404);
    assert_eq!(h.daemon.store().incidents().unwrap().len(), 0);
}

#[tokio::test]
async fn notes_are_stored_before_201_and_feed_the_clocks() {
    let h = host(false).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let path = format!("/api/v1/incidents/{id}/notes");
    let (s, b) = h
        .call(
            "POST",
            &path,
            Some(json!({"text": "Vendor called back", "by": "U0RESP01"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let seq = b["seq"].as_u64().unwrap();
    let stored = h.daemon.store().events(&id).unwrap();
    let note = stored.iter().find(|e| e.seq == seq).unwrap();
    assert_eq!(
        (note.kind.as_str(), note.actor.as_str()),
        ("note", "U0RESP01")
    );

    // We became aware a day before declaring: GDPR's clock moves back.
    let (s, b) = h
        .call(
            "POST",
            &path,
            Some(json!({"text": "Found the upload in logs", "by": "U0RESP01",
                        "moment": "aware=2026-11-28T09:00:00Z"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, inc) = h
        .call("GET", &format!("/api/v1/incidents/{id}"), None)
        .await;
    assert_eq!(inc["clocks"][0]["left"], "2d 0h");

    h.refused(
        "POST",
        &path,
        json!({"text": "x", "by": "U", "moment": "guessed"}),
        422,
        "unknown moment \"guessed\"",
    )
    .await;
    let (s, _) = h
        .call(
            "POST",
            "/api/v1/incidents/INC-404/notes",
            Some(json!({"text": "x", "by": "U"})),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_timeline_page_shows_steps_clocks_and_escapes_input() {
    let h = host(false).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    h.call(
        "POST",
        &format!("/api/v1/incidents/{id}/notes"),
        Some(json!({"text": "<script>alert(1)</script>", "by": "U0RESP01"})),
    )
    .await;
    let r = h
        .http
        .get(format!("{}/incidents/{id}", h.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("<h2>Regulatory clocks</h2>"), "{page}");
    assert!(page.contains("GDPR Art. 33 notification to the lead supervisory authority"));
    // Due in the jurisdiction's own zone, the exact instant in the title.
    assert!(
        page.contains("<time datetime=\"2026-12-02T09:00:00Z\" title=\"2026-12-02T09:00:00Z\">2026-12-02 10:00:00 CET</time>"),
        "{page}"
    );
    assert!(page.contains("<td>3d 0h</td>"), "{page}");
    assert!(
        page.contains("<tr data-step=\"legal\" class=\"overdue\"><td>legal (approval)"),
        "{page}"
    );
    assert!(
        page.contains("<td>regulator</td><td>EU</td><td>v1 (regulator-EU)</td>"),
        "{page}"
    );
    assert!(page.contains("<td>draft, not approved</td>"), "{page}");
    assert!(
        page.contains("data-refresh=\"on\"") && page.contains("http-equiv=\"refresh\""),
        "an open incident's page refreshes (in place, or by reloading without JavaScript)"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>alert"));
}

// ---------------------------------------------------------------- Slack

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

#[tokio::test]
async fn slack_requests_without_a_valid_signature_get_401() {
    let h = host(true).await;
    let body = "command=%2Fquench&text=incidents".to_string();
    let ts = now_ts();
    // Forged: signed with another secret.
    let (s, _) = h
        .slack_post("/slack/commands", body.clone(), &ts, "v0=00ff")
        .await;
    assert_eq!(s, 401);
    // Replayed: a valid signature on a timestamp ten minutes old.
    let old = (chrono::Utc::now().timestamp() - 600).to_string();
    let (s, _) = h
        .slack_post("/slack/commands", body.clone(), &old, &sign(&old, &body))
        .await;
    assert_eq!(s, 401);
    // Tampered: the body changed after signing.
    let (s, _) = h
        .slack_post(
            "/slack/commands",
            body.replace("incidents", "declare"),
            &ts,
            &sign(&ts, &body),
        )
        .await;
    assert_eq!(s, 401);
    let r = h
        .http
        .post(format!("{}/slack/interactions", h.url))
        .body("payload=%7B%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Events API URL verification, signed.
    let ev = json!({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let r = h
        .http
        .post(format!("{}/slack/events", h.url))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(&ts, &ev))
        .body(ev)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Json>().await.unwrap()["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    assert_eq!(h.daemon.store().incidents().unwrap().len(), 0);
    let m = h.metrics().await;
    assert!(
        m.contains(r#"quench_slack_requests_total{endpoint="commands",outcome="rejected"} 3"#),
        "{m}"
    );
    assert!(m.contains(r#"quench_slack_requests_total{endpoint="events",outcome="accepted"} 1"#));
}

#[tokio::test]
async fn an_incident_declared_after_a_plan_is_shown_beside_it() {
    let h = host_full(SlackKind::Off, true).await;
    let (status, started) = h
        .call(
            "POST",
            "/api/v1/plans",
            Some(json!({"runbook": "contain", "inputs": {"tool": "ChatGPT"}, "by": "U0RESP01"})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let plan = started["id"].as_str().unwrap().to_string();
    h.daemon.plan_finished(&plan).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let (_, inc) = h
        .call("GET", &format!("/api/v1/incidents/{id}"), None)
        .await;
    assert_eq!(inc["plan"]["plan"], plan.as_str(), "{inc}");
    // The plan counted one revocation and the incident made it.
    assert_eq!(inc["plan"]["same"], true, "{}", inc["plan"]);
    // The list stays cheap: no comparison per incident.
    let (_, list) = h.call("GET", "/api/v1/incidents", None).await;
    assert!(list["incidents"][0].get("plan").is_none());
}

#[tokio::test]
async fn slack_starts_a_plan_for_responders_only() {
    let h = host(true).await;
    let (s, reply) = h
        .command("U0RESP01", "plan contain simulated tool=ChatGPT")
        .await;
    assert_eq!(s, 200, "{reply}");
    let reply: Json = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["response_type"], "ephemeral");
    let text = reply["text"].as_str().unwrap();
    let id = h.daemon.store().plans().unwrap()[0]["plan"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("Plan *{id}* started: reads only")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "<https://quench.acme.example/plans/{id}|The report>"
        )),
        "{text}"
    );
    h.daemon.plan_finished(&id).await;
    let plan = h.daemon.store().plan(&id).unwrap().unwrap();
    assert_eq!(plan["status"], "complete", "{plan}");
    assert_eq!(plan["planned_by"], "U0RESP01");
    assert!(h.platform.seen().is_empty());
    // Someone outside the responder role: refused, nothing planned.
    let (_, reply) = h
        .command("U0INTERN", "plan contain simulated tool=ChatGPT")
        .await;
    assert!(
        reply.contains("only members of the responder role may plan"),
        "{reply}"
    );
    assert_eq!(h.daemon.store().plans().unwrap().len(), 1);
}

#[tokio::test]
async fn slack_declares_posts_the_thread_and_takes_decisions_from_buttons() {
    let h = host(true).await;
    let slack = h.slack.clone().unwrap();
    let mut rx = h.daemon.engine().subscribe();
    let (s, reply) = h
        .command(
            "U0RESP01",
            "declare contain sev1 tool=\u{201c}ChatGPT\u{201d} jurisdictions=EU,UK",
        )
        .await;
    assert_eq!(s, 200, "{reply}");
    let reply: Json = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["response_type"], "ephemeral");
    let text = reply["text"].as_str().unwrap();
    let id = h.daemon.store().incidents().unwrap()[0].id.clone();
    assert!(text.contains(&id), "{text}");
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");

    // The thread: its root is the live status, posted in the channel it
    // was declared from; then the decisions asked for, with buttons.
    slack
        .until("two decisions asked", |s| {
            s.messages().iter().filter(|m| m.blocks.is_array()).count() == 2
        })
        .await;
    let posts = h.slack_posts();
    assert_eq!(posts[0]["channel"], "C0INC");
    assert!(posts[0].get("thread_ts").is_none());
    let root = slack.messages()[0].ts.clone();
    let asks: Vec<&Json> = posts
        .iter()
        .filter(|p| p["blocks"][1]["type"] == "actions")
        .collect();
    assert_eq!(asks.len(), 2, "{posts:#?}");
    for a in &asks {
        assert_eq!(a["thread_ts"], root.as_str());
        assert_eq!(a["reply_broadcast"], true);
        assert_eq!(a["metadata"]["event_type"], "quench_event");
    }
    // The status is edited in place as the incident parks: clocks with
    // their time left, who is waited on, the page.
    slack
        .until("the status shows the wait", |s| {
            s.messages()[0].text.contains("*Waiting*")
        })
        .await;
    let head = slack.messages()[0].text.clone();
    assert!(head.contains("Regulatory clocks"), "{head}");
    assert!(head.contains("*EU* authority"), "{head}");
    assert!(head.contains("*UK* authority"), "{head}");
    assert!(head.contains("3d 0h left"), "{head}");
    assert!(head.contains("`legal` on legal since"), "{head}");
    assert!(
        head.contains("*Progress* contain 1/1 · notify 1/1"),
        "{head}"
    );
    assert!(
        head.contains("<https://quench.acme.example/incidents/"),
        "{head}"
    );
    let legal = asks
        .iter()
        .find(|a| a["text"].as_str().unwrap().contains("`legal`"))
        .unwrap();
    let buttons = legal["blocks"][1]["elements"].as_array().unwrap();
    assert_eq!(buttons[0]["action_id"], "quench_approve");
    assert_eq!(buttons[0]["value"], format!("{id} legal"));
    assert_eq!(buttons[1]["action_id"], "quench_reject");
    let auth = &slack.auth_of("chat.postMessage")[0];
    assert_eq!(auth, &format!("Bearer {BOT}"));

    // /quench status shows the clocks with their time left.
    let (_, status) = h.command("U0RESP01", &format!("status {id}")).await;
    let status: Json = serde_json::from_str(&status).unwrap();
    let st = status["text"].as_str().unwrap();
    assert!(st.contains("*Waiting* `legal` on legal since"), "{st}");
    assert!(st.contains("`vendor` on mops since"), "{st}");
    assert!(st.contains("GDPR Art. 33"), "{st}");
    assert!(st.contains("left, due"), "{st}");

    // An intern presses Approve: refused, shown to them, recorded.
    assert_eq!(
        h.press("U0INTERN", "quench_approve", &format!("{id} legal"))
            .await,
        200
    );
    let refusal = h.response(1).await;
    assert!(
        refusal["text"]
            .as_str()
            .unwrap()
            .contains("U0INTERN may not decide \"legal\""),
        "{refusal}"
    );
    assert_eq!(refusal["replace_original"], false);

    // Legal approves; the buttons are replaced; the manual task is done by command.
    assert_eq!(
        h.press("U0LEGAL1", "quench_approve", &format!("{id} legal"))
            .await,
        200
    );
    let answer = h.response(2).await;
    assert_eq!(answer["replace_original"], true);
    assert!(answer["text"]
        .as_str()
        .unwrap()
        .contains("Approved by <@U0LEGAL1>"));
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");
    let (_, done) = h
        .command(
            "U0MOPS",
            &format!("done {id} vendor   Vendor <!channel> confirmed"),
        )
        .await;
    assert!(done.contains("Recorded: done"), "{done}");
    assert_eq!(settle(&mut rx, &id).await, "incident.completed");

    let events = h.daemon.store().events(&id).unwrap();
    let granted = events
        .iter()
        .find(|e| e.kind == "approval.granted")
        .unwrap();
    assert_eq!(granted.actor, "U0LEGAL1");
    let manual = events.iter().find(|e| e.kind == "manual.done").unwrap();
    assert_eq!(
        manual.message,
        "Done by U0MOPS: Vendor <!channel> confirmed"
    );

    // The completion is posted to the thread (and the channel), and user
    // text is escaped so it cannot ping the channel.
    let want = posts_containing(&h, "Completed").await;
    assert_eq!(want["thread_ts"], root.as_str());
    assert_eq!(want["reply_broadcast"], true);
    let head = h.daemon.store().audit_head(&id).unwrap();
    assert!(
        want["text"]
            .as_str()
            .unwrap()
            .contains(&format!("Audit chain head: `sha256:{head}`")),
        "{want}"
    );
    // One status message, edited to the end; the request's buttons gave
    // way to who decided.
    slack
        .until("the final status", |s| {
            s.messages()[0].text.contains("*completed*")
        })
        .await;
    let roots = slack.roots();
    assert_eq!(roots.len(), 1, "{roots:#?}");
    slack
        .until("the buttons replaced", |s| {
            s.messages().iter().any(|m| {
                m.text.contains("`legal`")
                    && m.text.contains("Approved by <@U0LEGAL1> at")
                    && !m.blocks.to_string().contains("\"actions\"")
            })
        })
        .await;
    let all: Vec<String> = h
        .slack_posts()
        .iter()
        .map(|p| p["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        all.iter().any(|t| t.contains("&lt;!channel&gt;")),
        "{all:#?}"
    );
    assert!(!all.iter().any(|t| t.contains("<!channel>")));
    // The bot token never appears in what quench stored.
    let stored = serde_json::to_string(&events).unwrap();
    assert!(!stored.contains(BOT));
    let m = h.metrics().await;
    let ok = posts_counted(&m);
    assert!(ok >= 6, "{m}");
}

/// Successful Slack posts the metrics count.
fn posts_counted(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"quench_slack_messages_total{outcome="ok"} "#))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Waits for a post whose text contains `needle`.
async fn posts_containing(h: &Host, needle: &str) -> Json {
    let slack = h.slack.as_ref().unwrap();
    let has = |s: &SlackApi| {
        s.calls("chat.postMessage")
            .into_iter()
            .find(|p| p["text"].as_str().unwrap_or_default().contains(needle))
    };
    slack
        .until(&format!("a post with {needle:?}"), |s| has(s).is_some())
        .await;
    has(slack).unwrap()
}

// ------------------------------------------------------- the binary

/// A project whose `mockp` points at `mock`, with runbook `two`: a, then b.
pub(crate) fn project(mock: &Mock) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_manifest(dir.path());
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(
        dir.path().join("runbooks/two.yaml"),
        "version: 1\nname: two\nsteps:\n  - id: a\n    action: mockp.get\n    with: { path: a }\n  - id: b\n    action: mockp.get\n    needs: [a]\n    with: { path: b }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        format!("integrations:\n  mockp: {{ base_url: \"{}\" }}\n", mock.url),
    )
    .unwrap();
    dir
}

/// Starts `quench serve` on port 0, its log appended to `dir/serve.log` (a
/// file, not a pipe nobody reads, which would block it); returns it and the
/// URL from its first line.
async fn spawn_serve(dir: &std::path::Path) -> (std::process::Child, String) {
    spawn_serve_with(dir, &[]).await
}

/// `spawn_serve` with these environment variables (Slack's secrets).
pub(crate) async fn spawn_serve_with(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("serve.log"))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir)
        .args([
            "--data-dir",
            "store",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("QUENCH_API_TOKEN", TOKEN)
        .env("MOCKP_TOKEN", crate::support::SECRET)
        // Everything quench and its libraries log, so a leaked secret shows.
        .env("QUENCH_LOG", "trace")
        .env_remove("SLACK_SIGNING_SECRET")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = listening(&mut child).await;
    (child, url)
}

/// The URL a spawned `quench serve` prints on its first line.
pub(crate) async fn listening(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    })
    .await
    .unwrap();
    line.trim()
        .strip_prefix("quench serve: listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string()
}

/// GET `path` from a daemon process with the API token, as JSON.
async fn get_json(http: &reqwest::Client, url: &str, path: &str) -> Json {
    http.get(format!("{url}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn incident_status(http: &reqwest::Client, url: &str, id: &str) -> String {
    let j = get_json(http, url, &format!("/api/v1/incidents/{id}")).await;
    j["status"].as_str().unwrap_or_default().to_string()
}

/// The incident's status once it stops running (a daemon in another
/// process: its record is polled, bounded).
async fn completed(http: &reqwest::Client, url: &str, id: &str) -> String {
    let mut status = incident_status(http, url, id).await;
    for _ in 0..500 {
        if status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        status = incident_status(http, url, id).await;
    }
    status
}

#[tokio::test]
async fn a_killed_daemon_resumes_its_incidents_without_repeating_effects() {
    crate::support::tls();
    let mock = Mock::start().await;
    mock.on("/a", vec![Reply::json(200, json!({"ok": true}))]);
    mock.on(
        "/b",
        vec![Reply::hang(), Reply::json(200, json!({"ok": true}))],
    );
    let dir = project(&mock);
    let (mut daemon, url) = spawn_serve(dir.path()).await;

    // The CLI declares through the daemon, which holds the store.
    let dir_path = dir.path().to_path_buf();
    let u = url.clone();
    let o = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(dir_path)
            .args(["declare", "two", "--server", &u])
            .env("QUENCH_API_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    assert!(out.contains(&format!("{url}/incidents/{id}")), "{out}");

    mock.wait_for("/b").await;
    daemon.kill().unwrap(); // SIGKILL with the call to b in flight
    daemon.wait().unwrap();

    let (daemon, url) = spawn_serve(dir.path()).await;
    mock.wait_hits("/b", 2).await;
    let http = reqwest::Client::new();
    // The run records its end right after b answers: wait for that.
    assert_eq!(completed(&http, &url, &id).await, "completed");
    crate::support::assert_resumed_without_repeats(&mock);
    let tl = get_json(&http, &url, &format!("/api/v1/incidents/{id}/timeline")).await;
    assert!(tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "incident.resumed"
            && e["message"]
                .as_str()
                .unwrap()
                .ends_with("with their idempotency keys: b")));

    // While the daemon holds the store, the CLI goes through it.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
            .current_dir(dir.path())
            .args(["--data-dir", "store"])
            .args(args)
            .env("QUENCH_API_TOKEN", TOKEN)
            .env("QUENCH_SERVER", &url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A drill declared on the daemon runs on its simulator, never the platform.
    let out = cli(&["drill", "two", "--server", &url]);
    let drill_id = out.split_whitespace().next().unwrap().to_string();
    assert_eq!(completed(&http, &url, &drill_id).await, "completed");
    assert_eq!(mock.hits("/a"), 1, "the drill did not call the platform");
    let d = get_json(&http, &url, &format!("/api/v1/incidents/{drill_id}")).await;
    assert_eq!(d["drill"], true);
    let out = cli(&["notices", &id]);
    assert!(out.contains("no notices drafted"), "{out}");
    let out = cli(&["status", &id]);
    assert!(out.contains("· two · sev2 · completed"), "{out}");
    assert!(out.contains("  b "), "{out}");
    let list: Json = serde_json::from_str(&cli(&["--json", "incidents"])).unwrap();
    assert_eq!(list["incidents"][0]["id"], id.as_str());
    let out = cli(&["note", &id, "Reviewed by the DPO", "--by", "dpo"]);
    assert!(out.contains("note #"), "{out}");
    let md = cli(&["timeline", &id, "--format", "markdown"]);
    assert!(md.contains("Reviewed by the DPO"), "{md}");
    assert!(cli(&["audit", "verify", &id]).contains(": intact"));
    let k: Json = serde_json::from_str(&cli(&["--json", "kpis"])).unwrap();
    assert_eq!(k["incidents"]["completed"], 1);
    // Decisions go through the daemon too; its refusal comes back as is.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args([
            "--data-dir",
            "store",
            "approve",
            &id,
            "b",
            "--by",
            "U0LEGAL1",
        ])
        .env("QUENCH_API_TOKEN", TOKEN)
        .env("QUENCH_SERVER", &url)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("answered 409 Conflict: step \"b\" is action"),
        "{err}"
    );
    // Without the token the CLI says what to set.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args(["--data-dir", "store", "status", &id])
        .env_remove("QUENCH_API_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("set QUENCH_TOKEN"), "{err}");

    // SIGTERM: a clean stop, logged as JSON lines without the token.
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let o = tokio::task::spawn_blocking(move || daemon.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    // Both daemons' logs, at trace level.
    let err = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        err.contains("\"daemon stopped\""),
        "{}",
        &err[err.len().saturating_sub(2000)..]
    );
    for line in err.lines() {
        serde_json::from_str::<Json>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(!err.contains(TOKEN), "the API token reached the log");
    assert!(
        !err.contains(crate::support::SECRET),
        "a platform secret reached the log"
    );
}

#[test]
fn serve_refuses_to_start_without_an_api_token() {
    let dir = tempfile::tempdir().unwrap();
    // `serve` with this token (none: unset), its exit code and stderr.
    let serve = |token: Option<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_quench"));
        cmd.current_dir(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0"]);
        match token {
            Some(t) => cmd.env("QUENCH_API_TOKEN", t),
            None => cmd.env_remove("QUENCH_API_TOKEN"),
        };
        let o = cmd.output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = serve(None);
    assert_eq!(code, Some(2));
    assert!(err.contains("export QUENCH_API_TOKEN="), "{err}");
    // A token padded with a newline could never be presented: refused.
    let (code, err) = serve(Some(format!("{TOKEN}\n")));
    assert_eq!(code, Some(2));
    assert!(err.contains("starts or ends with whitespace"), "{err}");
    // A malformed `access:` entry is named with the fix.
    std::fs::write(
        dir.path().join("quench.yaml"),
        "access:\n  - { user: U0LEGAL1, token_sha256: \"abc\", can: [read] }\n",
    )
    .unwrap();
    let (code, err) = serve(None);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("access[0] (U0LEGAL1): `token_sha256` must be 64 hex characters"),
        "{err}"
    );
}

#[test]
fn the_sample_slack_payloads_fit_slack_morphisms_models() {
    use slack_morphism::prelude::*;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/slack");
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap();
    let cmd: SlackCommandEvent = serde_urlencoded::from_str(&read("command.txt")).unwrap();
    assert_eq!(cmd.command.0, "/quench");
    assert!(cmd.text.unwrap().starts_with("declare shadow-ai-exposure"));
    let ev: SlackInteractionEvent = serde_json::from_str(&read("block_actions.json")).unwrap();
    assert!(matches!(ev, SlackInteractionEvent::BlockActions(_)));
    let ev: SlackPushEvent = serde_json::from_str(&read("url_verification.json")).unwrap();
    assert!(matches!(ev, SlackPushEvent::UrlVerification(_)));
}

#[test]
fn the_sample_config_loads_with_its_slack_section() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quench.yaml");
    let cfg = quench::config::Config::load(Some(&p)).unwrap();
    let slack = cfg.slack.unwrap();
    assert_eq!(slack.channel.as_deref(), Some("C0INCIDENTS"));
    assert!(!slack.socket_mode);
    assert_eq!(cfg.roles["legal"], ["U0LEGAL1"]);
}

// ------------------------------------------------------- Socket Mode

#[tokio::test]
async fn socket_mode_takes_commands_and_buttons_over_the_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let h = host_with(SlackKind::Socket).await;
    let slack = h.slack.clone().unwrap();
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}/link", ws.local_addr().unwrap());
    slack.reply("apps.connections.open", json!({"ok": true, "url": ws_url}));
    // The fake Slack end of the socket: hello, a slash command, then
    // (when told) a button press; every ack goes back to the test.
    let (acks_tx, mut acks) = tokio::sync::mpsc::channel::<Json>(8);
    let (press_tx, press) = tokio::sync::mpsc::channel::<Json>(1);
    tokio::spawn(async move {
        let (stream, _) = ws.accept().await.unwrap();
        let mut sock = tokio_tungstenite::accept_async(stream).await.unwrap();
        let hello = json!({"type": "hello", "num_connections": 1,
            "connection_info": {"app_id": "A0QUENCH"}, "debug_info": {"host": "local"}});
        sock.send(Message::text(hello.to_string())).await.unwrap();
        let cmd = json!({"type": "slash_commands", "envelope_id": "env-1", "accepts_response_payload": true,
            "payload": {"team_id": "T0ACME", "channel_id": "C0INC", "user_id": "U0RESP01",
                        "command": "/quench", "text": "declare contain tool=ChatGPT",
                        "response_url": "https://hooks.slack.com/commands/T0ACME/1/x",
                        "trigger_id": "13345224609.738474920.8088930838d88f008e0"}});
        sock.send(Message::text(cmd.to_string())).await.unwrap();
        let mut pending = Some(press);
        let mut sent = 1;
        loop {
            tokio::select! {
                msg = sock.next() => {
                    let Some(Ok(msg)) = msg else { break };
                    if let Message::Text(t) = msg {
                        let j: Json = serde_json::from_str(&t).unwrap();
                        if j.get("envelope_id").is_some() {
                            acks_tx.send(j).await.unwrap();
                        }
                    }
                }
                p = async { pending.as_mut().unwrap().recv().await }, if pending.is_some() => {
                    let Some(p) = p else { pending = None; continue };
                    sent += 1;
                    // A form submission may be answered in the ack (its errors).
                    let env = json!({"type": "interactive", "envelope_id": format!("env-{sent}"),
                        "accepts_response_payload": p["type"] == "view_submission", "payload": p});
                    sock.send(Message::text(env.to_string())).await.unwrap();
                }
            }
        }
    });
    let mut rx = h.daemon.engine().subscribe();
    h.daemon.connect_channel().await.unwrap();

    let ack = acks.recv().await.unwrap();
    assert_eq!(ack["envelope_id"], "env-1");
    let text = ack["payload"]["text"].as_str().unwrap();
    assert!(text.contains("declared"), "{ack}");
    let id = h.daemon.store().incidents().unwrap()[0].id.clone();
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");
    assert_eq!(
        slack.auth_of("apps.connections.open")[0],
        "Bearer xapp-1-A0QUENCH-SEKRET"
    );

    // Legal presses Approve in the thread.
    let value = format!("{id} legal");
    let payload = block_actions(
        "U0LEGAL1",
        "quench_approve",
        &value,
        &format!("{}/respond/1", slack.url),
        &ask_ts(&slack, &value).await,
    );
    press_tx.send(payload).await.unwrap();
    let ack = acks.recv().await.unwrap();
    assert_eq!(ack["envelope_id"], "env-2");
    slack
        .until("a response_url reply", |s| !s.responses().is_empty())
        .await;
    assert_eq!(
        h.daemon.store().step_run(&id, "legal").unwrap().status,
        quench::store::StepStatus::Succeeded
    );
    let granted = h
        .daemon
        .store()
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "approval.granted")
        .unwrap();
    assert_eq!(granted.actor, "U0LEGAL1");
    // A form submitted with no runbook: the errors ride on the ack.
    let form = json!({"type": "view_submission", "team": {"id": "T0ACME", "domain": "acme"},
        "user": {"id": "U0RESP01", "username": "resp", "team_id": "T0ACME"},
        "api_app_id": "A0QUENCH", "token": "legacy-unused",
        "view": {"id": "V0FORM9", "team_id": "T0ACME", "hash": "h9", "type": "modal",
                 "callback_id": "quench_declare", "title": {"type": "plain_text", "text": "Declare an incident"},
                 "blocks": [], "private_metadata": "{\"channel\":\"C0INC\"}",
                 "state": {"values": {}}}});
    press_tx.send(form).await.unwrap();
    let ack = acks.recv().await.unwrap();
    assert_eq!(ack["envelope_id"], "env-3");
    assert_eq!(ack["payload"]["response_action"], "errors", "{ack}");
    assert_eq!(
        ack["payload"]["errors"]["runbook"], "pick a runbook",
        "{ack}"
    );
    // Socket Mode only: the HTTP endpoints stay off (no signing secret).
    let r = h
        .http
        .post(format!("{}/slack/commands", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    h.daemon.stop().await;
}

#[test]
fn socket_mode_without_an_app_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        "slack:\n  socket_mode: true\n",
    )
    .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_quench"))
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("QUENCH_API_TOKEN", TOKEN)
        .env_remove("SLACK_APP_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("SLACK_APP_TOKEN (app_token_env) is not set"),
        "{err}"
    );
}

#[tokio::test]
async fn notices_are_edited_approved_and_sent_through_the_daemon() {
    let h = host(false).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let path = format!("/api/v1/incidents/{id}/notices");
    let (s, n) = h.call("GET", &path, None).await;
    assert_eq!(s, 200);
    let notices = n["notices"].as_array().unwrap();
    assert_eq!(notices.len(), 1, "{n}");
    assert_eq!(notices[0]["audience"], "regulator");
    assert_eq!(notices[0]["jurisdiction"], "EU");
    assert_eq!(notices[0]["version"], 1);
    assert!(notices[0]["body"].as_str().unwrap().contains("ChatGPT"));
    assert!(notices[0]["approved_by"].is_null());

    // Not approved: cannot be sent.
    let sent = format!("{path}/regulator-EU/sent");
    h.refused("POST", &sent, json!({"by": "dpo"}), 409, "is not approved")
        .await;
    let unknown = format!("{path}/regulator-XX/sent");
    h.refused(
        "POST",
        &unknown,
        json!({"by": "dpo"}),
        404,
        "this incident has: regulator-EU",
    )
    .await;

    // Counsel rewords it: version 2, which legal's approval then covers.
    let (s, b) = h
        .call(
            "POST",
            &format!("{path}/regulator-EU"),
            Some(json!({"body": "Reworded by counsel.", "by": "counsel"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (b["version"].as_u64(), b["replaces"].as_u64()),
        (Some(2), Some(1))
    );
    let mut rx = h.daemon.engine().subscribe();
    h.call(
        "POST",
        &format!("/api/v1/incidents/{id}/approvals/legal"),
        Some(json!({"approve": true, "by": "U0LEGAL1"})),
    )
    .await;
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");
    let (_, n) = h.call("GET", &path, None).await;
    assert_eq!(n["notices"][0]["version"], 2);
    assert_eq!(n["notices"][0]["approved_by"], "U0LEGAL1");
    assert_eq!(n["notices"][0]["body"], "Reworded by counsel.");

    let (s, b) = h
        .call(
            "POST",
            &format!("{path}/regulator-EU/sent"),
            Some(json!({"by": "dpo"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["message"],
        "regulator-EU v2 sent by dpo (approved by U0LEGAL1)"
    );
    let (_, audit) = h
        .call("GET", &format!("/api/v1/incidents/{id}/audit"), None)
        .await;
    assert_eq!(audit["intact"], true, "{audit}");
    assert_eq!(audit["report"]["notices"], 2);
}
