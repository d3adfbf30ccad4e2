//! Slack through a daemon in this process: signatures, slash commands,
//! buttons, the thread, Socket Mode, and the sample payloads.

use super::*;

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
