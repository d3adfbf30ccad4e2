//! The REST API and pages through a daemon in this process: tokens and
//! scopes, declarations, plans, bad requests, notes, notices.

use super::*;

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
    // serde reads an array into a struct field by field: `[.., true]` was
    // once a declaration with `drill: true`. Only objects are bodies.
    for (path, body) in [
        ("/api/v1/incidents", json!(["", null, null, "", true])),
        ("/api/v1/incidents", json!(["contain", {"tool": "x"}])),
        ("/api/v1/plans", json!(["contain", {"tool": "x"}, true])),
        ("/api/v1/incidents/INC-1/notes", json!(["text", "U0RESP01"])),
        ("/api/v1/incidents", json!("contain")),
    ] {
        let (s, b) = h.call("POST", path, Some(body)).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("bad_request")),
            "{path}: {b}"
        );
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("must be a JSON object"),
            "{b}"
        );
    }

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

/// `/metrics` read as Prometheus reads it: every series a histogram or
/// counter of the right type, and the work of one declaration in them.
#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_hold_a_runs_latencies() {
    // With Slack and a channel per incident, so Slack's series have
    // samples too (a series with none is not written at all).
    let h = host_opts(SlackKind::Http, false, true).await;
    // One refusal, then the revocation: a retry with a cause, two calls.
    h.platform.on(
        "/grants/Gemini",
        vec![Reply::status(503), Reply::status(204)],
    );
    let before = scrape(&h.metrics().await);

    let id = h.declare_and_settle(json!({"tool": "Gemini"})).await;
    assert_eq!(h.platform.hits("/grants/Gemini"), 2, "{id}");
    let slack = h.slack.as_ref().unwrap();
    slack
        .until("a post about the incident", |s| {
            !s.calls("chat.postMessage").is_empty()
        })
        .await;
    let text = h.metrics().await;
    let after = scrape(&text);

    for s in &after.samples {
        assert!(s.metric.starts_with("quench_"), "{}", s.metric);
        if let prometheus_parse::Value::Histogram(buckets) = &s.value {
            let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
            assert!(
                counts.windows(2).all(|w| w[0] <= w[1]),
                "{}: buckets are cumulative: {counts:?}",
                s.metric
            );
            assert_eq!(
                buckets.last().map(|b| b.less_than),
                Some(f64::INFINITY),
                "{}",
                s.metric
            );
        }
    }
    // Other tests in this process use the same mock integration, so the
    // figures are compared as "at least this run's share".
    let grew = |name: &str, labels: &[(&str, &str)]| {
        observations(&after, name, labels) - observations(&before, name, labels)
    };
    let call = "quench_integration_call_seconds";
    let revoke = [("integration", "mockp"), ("action", "revoke")];
    assert!(
        grew(call, &[revoke[0], revoke[1], ("status_class", "5xx")]) >= 1.0,
        "{text}"
    );
    assert!(
        grew(call, &[revoke[0], revoke[1], ("status_class", "2xx")]) >= 1.0,
        "{text}"
    );
    let retries = [("integration", "mockp"), ("cause", "server_error")];
    assert!(
        grew("quench_integration_retries_total", &retries) >= 1.0,
        "{text}"
    );
    assert!(
        grew(
            "quench_rate_limit_wait_seconds",
            &[("integration", "mockp")]
        ) >= 2.0
    );
    let contain = [
        ("runbook", "contain"),
        ("phase", "contain"),
        ("status", "succeeded"),
    ];
    assert!(grew("quench_step_seconds", &contain) >= 1.0, "{text}");
    assert!(grew("quench_store_flush_seconds", &[]) >= 1.0, "{text}");
    assert!(grew("quench_store_flush_writes", &[]) >= 1.0, "{text}");
    // Each regulatory clock with a due time, as the API shows it.
    let (_, inc) = h
        .call("GET", &format!("/api/v1/incidents/{id}"), None)
        .await;
    let due: Vec<&Json> = inc["clocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["due"].is_string())
        .collect();
    assert!(!due.is_empty(), "{inc}");
    let now = h.daemon.engine().now();
    for c in due {
        let at: chrono::DateTime<chrono::Utc> = c["due"].as_str().unwrap().parse().unwrap();
        let rule = c["rule"].as_str().unwrap();
        let labels = [("incident", id.as_str()), ("rule", rule)];
        assert_eq!(
            observations(&after, "quench_deadline_seconds_left", &labels),
            (at - now).num_milliseconds() as f64 / 1000.0,
            "{rule}"
        );
    }
    // The Grafana dashboard asks only for series that exist.
    let dashboard: Json = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/grafana-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut asked = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("quench_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[at + name.len()..];
                asked.push(name);
            }
        }
    }
    assert!(asked.len() >= 14, "{asked:?}");
    for name in asked {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            text.contains(&format!("# TYPE {base} ")),
            "the dashboard asks for {name}, which /metrics does not have"
        );
    }
    let slack = [("method", "chat.postMessage"), ("outcome", "ok")];
    assert!(grew("quench_slack_post_seconds", &slack) >= 1.0, "{text}");
    assert!(text.contains("# TYPE quench_integration_call_seconds histogram"));
    assert!(text.contains("# TYPE quench_integration_retries_total counter"));
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("/metrics is Prometheus text")
}

/// A histogram's number of observations (its +Inf bucket), or a counter's
/// or gauge's value, summed over the series whose labels include `labels`.
fn observations(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Histogram(b) => b.last().map_or(0.0, |b| b.count),
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}
