//! Slack as the responders' room, against a stateful mock of the Web API:
//! an incident channel (named, topic, bookmark, members), one live status
//! message pinned and edited in place, the fallback to a thread, and
//! posts that follow the stored timeline through Slack outages and a
//! SIGKILL without loss or duplicates.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

use crate::server::{host_opts, settle, SlackKind};
use crate::slack_api::{Fault, SlackApi};

/// Declares `contain` from Slack and waits until it parks; its id.
async fn declare_from_slack(h: &crate::server::Host) -> String {
    let mut rx = h.daemon.engine().subscribe();
    let (s, reply) = h
        .command("U0RESP01", "declare contain sev1 tool=ChatGPT")
        .await;
    assert_eq!(s, 200, "{reply}");
    let id = h.daemon.store().incidents().unwrap()[0].id.clone();
    // The incident never waits on Slack.
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");
    id
}

/// The seq of each post quench made (its metadata), with how many times.
fn posts_per_event(slack: &SlackApi) -> BTreeMap<u64, usize> {
    let mut n = BTreeMap::new();
    for m in slack.messages() {
        if let Some(seq) = m.metadata["event_payload"]["seq"].as_str() {
            *n.entry(seq.parse().unwrap()).or_default() += 1;
        }
    }
    n
}

#[tokio::test]
async fn an_incident_gets_its_own_channel_with_one_live_status() {
    let h = host_opts(SlackKind::Http, false, true).await;
    let slack = h.slack.clone().unwrap();
    // The default name is taken: the next free suffix is used.
    slack.existing_channel("inc-inc-20261129-0001-contain");
    let id = declare_from_slack(&h).await;
    let link = format!("https://quench.acme.example/incidents/{id}");
    slack
        .until("the channel set up and the decisions asked", |s| {
            s.channel_named("inc-inc-20261129-0001-contain-2")
                .is_some_and(|c| !c.pins.is_empty() && !c.bookmarks.is_empty())
                && s.messages().iter().filter(|m| m.blocks.is_array()).count() == 2
        })
        .await;
    let ch = slack
        .channel_named("inc-inc-20261129-0001-contain-2")
        .unwrap();
    assert!(
        ch.topic.starts_with(&format!("{id} · sev1 · ")),
        "{}",
        ch.topic
    );
    assert!(ch.topic.ends_with(&link), "{}", ch.topic);
    assert_eq!(ch.bookmarks, [("Timeline".to_string(), link.clone())]);
    // The declarer and the legal role the runbook's approval names.
    for who in ["U0RESP01", "U0LEGAL1"] {
        assert!(
            ch.members.iter().any(|m| m == who),
            "{who}: {:?}",
            ch.members
        );
    }
    // The status is the channel's first message, and the pinned one.
    let msgs = slack.messages_in(&ch.id);
    assert_eq!(ch.pins, [msgs[0].ts.clone()]);
    assert_eq!(msgs[0].metadata["event_payload"]["seq"], "0");
    // Requests are top-level messages of the channel, with buttons.
    let asks: Vec<_> = msgs.iter().filter(|m| m.blocks.is_array()).collect();
    assert!(asks.iter().all(|m| m.thread_ts.is_none()), "{asks:#?}");
    // Announced where it was declared.
    let announce = slack.messages_in("C0INC");
    assert_eq!(announce.len(), 1, "{announce:#?}");
    assert!(
        announce[0]
            .text
            .contains(&format!("is followed in <#{}>", ch.id)),
        "{}",
        announce[0].text
    );

    // Decide both; the incident ends; the one status message says so.
    let (s, b) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0LEGAL1"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = h
        .call(
            "POST",
            &format!("/api/v1/incidents/{id}/steps/vendor/done"),
            Some(json!({"by": "U0MOPS", "note": "confirmed"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    slack
        .until("the final status", |s| {
            s.messages_in(&ch.id)[0].text.contains("*completed*")
        })
        .await;
    let msgs = slack.messages_in(&ch.id);
    let statuses: Vec<_> = msgs
        .iter()
        .filter(|m| m.metadata["event_payload"]["seq"] == "0")
        .collect();
    assert_eq!(statuses.len(), 1, "edited in place, never posted again");
    let status = statuses[0];
    assert!(
        status.text.contains("*Progress* contain 1/1 · notify 1/1"),
        "{}",
        status.text
    );
    assert!(
        status
            .text
            .contains("regulator-EU v1 approved by <@U0LEGAL1>"),
        "{}",
        status.text
    );
    // Edits are at least a second apart (coalesced), and there were some.
    assert!(!status.edits.is_empty());
    for w in status.edits.windows(2) {
        assert!(
            w[1] - w[0] >= std::time::Duration::from_millis(900),
            "{:?}",
            status.edits
        );
    }
    // Each event was posted at most once.
    assert!(posts_per_event(&slack).values().all(|n| *n == 1));
}

#[tokio::test]
async fn without_the_scope_for_channels_the_incident_is_followed_in_a_thread() {
    let h = host_opts(SlackKind::Http, false, true).await;
    let slack = h.slack.clone().unwrap();
    slack.without_scope("channels:manage");
    declare_from_slack(&h).await;
    slack
        .until("the fallback said", |s| {
            s.messages()
                .iter()
                .any(|m| m.text.contains("No channel of its own"))
        })
        .await;
    let msgs = slack.messages_in("C0INC");
    let root = &msgs[0];
    assert!(root.thread_ts.is_none());
    let why = msgs
        .iter()
        .find(|m| m.text.contains("No channel of its own"))
        .unwrap();
    assert_eq!(why.thread_ts.as_deref(), Some(root.ts.as_str()));
    assert!(
        why.text.contains("lacks the `channels:manage` scope"),
        "{}",
        why.text
    );
    assert!(slack.channels().is_empty());
}

#[tokio::test]
async fn a_slack_outage_delays_posts_and_loses_none() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let slack = h.slack.clone().unwrap();
    // The status goes up; then every post fails for a while: 500s, then
    // rate limits with Retry-After.
    slack.fail("chat.postMessage", 1, Fault::Pass);
    slack.fail("chat.postMessage", 3, Fault::Status(500, None));
    slack.fail("chat.postMessage", 2, Fault::Status(429, Some(1)));
    let id = declare_from_slack(&h).await;
    slack
        .until("both requests posted", |s| s.asks().len() == 2)
        .await;
    // Every event worth a post is there once, in timeline order.
    let events = h.daemon.store().events(&id).unwrap();
    let asked: Vec<u64> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "approval.requested" | "manual.requested"))
        .map(|e| e.seq)
        .collect();
    let posted = posts_per_event(&slack);
    for seq in &asked {
        assert_eq!(posted.get(seq), Some(&1), "seq {seq}: {posted:?}");
    }
    let order: Vec<u64> = posted.keys().copied().collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert!(slack.calls("chat.postMessage").len() >= 3 + 2 + 3);
}

#[tokio::test]
async fn a_request_stored_before_a_sigkill_is_posted_once_after_the_restart() {
    crate::support::tls();
    let slack = SlackApi::start().await;
    // The status goes up; the approval request's post never gets an answer.
    slack.fail("chat.postMessage", 1, Fault::Pass);
    slack.fail("chat.postMessage", 1, Fault::Hang);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runbooks")).unwrap();
    std::fs::write(
        dir.path().join("runbooks/ask.yaml"),
        "version: 1\nname: ask\nsteps:\n  - id: legal\n    approval: { approvers: [legal], prompt: \"Go?\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("quench.yaml"),
        format!(
            "slack:\n  api_url: {}/api\n  channel: C0INC\n  incident_channels: false\nroles:\n  legal: [U0LEGAL1]\n",
            slack.url
        ),
    )
    .unwrap();
    let env = [
        ("SLACK_SIGNING_SECRET", "slack-signing-secret-42"),
        ("SLACK_BOT_TOKEN", "xoxb-bot-token-SEKRET"),
    ];
    let (mut daemon, url) = crate::server::spawn_serve_with(dir.path(), &env).await;
    let http = reqwest::Client::new();
    let r: Json = http
        .post(format!("{url}/api/v1/incidents"))
        .bearer_auth(crate::server::TOKEN)
        .json(&json!({"runbook": "ask", "inputs": {}, "by": "U0RESP01"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["id"].as_str().unwrap().to_string();
    // Slack received the request's post (so it was stored) but answered nothing.
    slack
        .until("the request's post in flight", |s| {
            s.calls("chat.postMessage").len() >= 2
        })
        .await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(slack.messages().iter().all(|m| !m.blocks.is_array()));

    let (mut daemon, _) = crate::server::spawn_serve_with(dir.path(), &env).await;
    slack
        .until("the request posted", |s| {
            s.messages().iter().any(|m| m.blocks.is_array())
        })
        .await;
    let asks = slack.asks();
    assert_eq!(asks.len(), 1, "{asks:#?}");
    assert!(
        asks[0].text.contains(&format!("*{id}* `legal`")),
        "{}",
        asks[0].text
    );
    // The status was not posted again: it is edited.
    let roots = slack.roots();
    assert_eq!(roots.len(), 1, "{roots:#?}");
    assert!(posts_per_event(&slack).values().all(|n| *n == 1));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
}

#[tokio::test]
async fn of_two_decisions_at_once_exactly_one_wins_and_the_other_is_told_who() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let id = declare_from_slack(&h).await;
    // Legal presses Approve in Slack while a script rejects over the API.
    let path = format!("/api/v1/incidents/{id}/approvals/legal");
    let value = format!("{id} legal");
    let ts = crate::server::ask_ts(h.slack.as_ref().unwrap(), &value).await;
    let (_, (status, body)) = tokio::join!(
        h.press_on("U0LEGAL1", "quench_approve", &value, &ts),
        h.call(
            "POST",
            &path,
            Some(json!({"approve": false, "by": "U0LEGAL1"}))
        ),
    );
    let events = h.daemon.store().events(&id).unwrap();
    let decided: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "approval.granted" | "approval.rejected"))
        .collect();
    assert_eq!(decided.len(), 1, "{decided:#?}");
    let late: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "decision.late")
        .collect();
    assert_eq!(late.len(), 1, "{events:#?}");
    let reply = h.response(1).await;
    let reply = reply["text"].as_str().unwrap_or_default().to_string();
    if decided[0].kind == "approval.granted" {
        // The button won; the API caller hears who decided first.
        assert_eq!(status, 409, "{body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("already decided: Approved by U0LEGAL1"),
            "{msg}"
        );
        assert!(
            late[0].message.contains("tried to reject legal"),
            "{}",
            late[0].message
        );
    } else {
        assert_eq!(status, 200, "{body}");
        assert!(
            reply.contains("already decided: Rejected by U0LEGAL1"),
            "{reply}"
        );
        assert!(
            late[0].message.contains("tried to approve legal"),
            "{}",
            late[0].message
        );
    }
}

#[test]
fn the_slack_app_manifest_asks_for_the_scopes_quench_uses_and_its_routes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/slack-app-manifest.yaml"
    );
    let m: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let scopes: Vec<&str> = m["oauth_config"]["scopes"]["bot"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let used: Vec<&str> = quench::slack::SCOPES.iter().map(|(s, _)| *s).collect();
    assert_eq!(scopes, used);
    let cmd = &m["features"]["slash_commands"][0];
    assert_eq!(cmd["command"].as_str(), Some("/quench"));
    assert!(cmd["url"].as_str().unwrap().ends_with("/slack/commands"));
    let settings = &m["settings"];
    assert!(settings["interactivity"]["request_url"]
        .as_str()
        .unwrap()
        .ends_with("/slack/interactions"));
    assert!(settings["event_subscriptions"]["request_url"]
        .as_str()
        .unwrap()
        .ends_with("/slack/events"));
}

#[tokio::test]
async fn help_lists_the_runbooks_and_errors_name_the_value_at_fault() {
    let h = host_opts(SlackKind::Http, false, true).await;
    let (_, help) = h.command("U0RESP01", "help").await;
    assert!(help.contains("/quench declare RUNBOOK"), "{help}");
    assert!(
        help.contains("*Runbooks:*") && help.contains("`contain`"),
        "{help}"
    );
    let (_, err) = h.command("U0RESP01", "declare contian tool=ChatGPT").await;
    for want in [
        "contian",
        "known runbooks:",
        "contain",
        "did you mean `contain`?",
    ] {
        assert!(err.contains(want), "{want:?} missing: {err}");
    }
    assert!(h.daemon.store().incidents().unwrap().is_empty());
}

#[tokio::test]
async fn a_button_counts_only_on_its_own_request_message() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let id = declare_from_slack(&h).await;
    let slack = h.slack.clone().unwrap();
    let vendor_ts = crate::server::ask_ts(&slack, &format!("{id} vendor")).await;
    // Approve `legal` with a payload from the vendor task's message.
    h.press_on(
        "U0LEGAL1",
        "quench_approve",
        &format!("{id} legal"),
        &vendor_ts,
    )
    .await;
    let r = h.response(1).await;
    let text = r["text"].as_str().unwrap();
    assert!(text.contains("Refused: a button for"), "{text}");
    assert_eq!(r["replace_original"], false);
    // An action quench never offered.
    let legal_ts = crate::server::ask_ts(&slack, &format!("{id} legal")).await;
    h.press_on(
        "U0LEGAL1",
        "quench_delete_everything",
        &format!("{id} legal"),
        &legal_ts,
    )
    .await;
    let r = h.response(2).await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("unknown action `quench_delete_everything`"),
        "{r}"
    );
    // Nothing was decided; both refusals are in the timeline, with who.
    assert_eq!(
        h.daemon.store().step_run(&id, "legal").unwrap().status,
        quench::store::StepStatus::Waiting
    );
    let refused: Vec<_> = h
        .daemon
        .store()
        .events(&id)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "slack.refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert!(refused.iter().all(|e| e.actor == "U0LEGAL1"));
    // The real button still works.
    h.press_on(
        "U0LEGAL1",
        "quench_approve",
        &format!("{id} legal"),
        &legal_ts,
    )
    .await;
    let r = h.response(3).await;
    assert_eq!(r["replace_original"], true, "{r}");
}

/// A view_submission of form `view` with these field states.
fn submission(view: &Json, values: Json) -> Json {
    let mut v = view.clone();
    v["state"] = json!({"values": values});
    json!({"type": "view_submission", "team": {"id": "T0ACME", "domain": "acme"},
           "user": {"id": "U0RESP01", "username": "resp", "team_id": "T0ACME"},
           "api_app_id": "A0QUENCH", "token": "legacy-unused",
           "trigger_id": "13345224609.738474920.8088930838d88f008e1", "view": v})
}

fn selected(action: &str, kind: &str, value: &str) -> Json {
    json!({action: {"type": kind, "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}})
}

#[tokio::test]
async fn the_declare_form_types_its_fields_and_answers_errors_beside_them() {
    let h = host_opts(SlackKind::Http, false, true).await;
    let slack = h.slack.clone().unwrap();
    let (_, reply) = h.command("U0RESP01", "declare").await;
    assert!(reply.contains("Opening the declare form"), "{reply}");
    let form = slack.view("V0FORM1").expect("views.open was called");
    assert_eq!(form["callback_id"], "quench_declare");
    let blocks = form["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["block_id"], "runbook");
    assert_eq!(blocks[0]["dispatch_action"], true);
    assert_eq!(blocks[1]["element"]["initial_option"]["value"], "sev2");

    // Picking the runbook redraws the form with its inputs, typed.
    let pick = json!({
        "type": "block_actions", "team": {"id": "T0ACME", "domain": "acme"},
        "user": {"id": "U0RESP01", "username": "resp", "team_id": "T0ACME"},
        "api_app_id": "A0QUENCH", "token": "legacy-unused",
        "container": {"type": "view", "view_id": "V0FORM1"},
        "trigger_id": "13345224609.738474920.8088930838d88f008e2",
        "view": form,
        "actions": [{"type": "static_select", "action_id": "quench_pick_runbook", "block_id": "runbook",
                     "selected_option": {"text": {"type": "plain_text", "text": "contain"}, "value": "contain"},
                     "action_ts": "1764406801.000400"}]
    });
    let (s, _) = h.interact(&pick).await;
    assert_eq!(s, 200);
    slack
        .until("the form redrawn", |s| s.calls("views.update").len() == 1)
        .await;
    let form = slack.view("V0FORM1").unwrap();
    let field = |name: &str| {
        form["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["block_id"] == format!("input:{name}"))
            .cloned()
            .unwrap_or_else(|| panic!("no field {name}: {form:#}"))
    };
    assert_eq!(field("tool")["element"]["type"], "plain_text_input");
    assert_eq!(field("tool")["optional"], false, "required, no default");
    assert_eq!(field("records")["element"]["type"], "number_input");
    assert_eq!(
        field("jurisdictions")["element"]["type"],
        "multi_static_select"
    );
    assert_eq!(
        field("jurisdictions")["element"]["initial_options"][0]["value"],
        "EU"
    );
    assert_eq!(field("jurisdictions")["optional"], true, "it has a default");

    // A wrong type and a missing required input: errors beside the fields.
    let mut values = json!({"input:records": {"value": {"type": "number_input", "value": "12.5"}}});
    for (k, v) in [
        (
            "runbook",
            selected("quench_pick_runbook", "static_select", "contain"),
        ),
        ("severity", selected("value", "static_select", "sev1")),
    ] {
        values[k] = v;
    }
    let (s, body) = h.interact(&submission(&form, values.clone())).await;
    assert_eq!(s, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(body["response_action"], "errors", "{body}");
    let errors = &body["errors"];
    assert!(
        errors["input:tool"]
            .as_str()
            .unwrap()
            .contains("missing required input `tool`"),
        "{errors}"
    );
    assert!(
        errors["input:records"]
            .as_str()
            .unwrap()
            .contains("records"),
        "{errors}"
    );
    assert!(h.daemon.store().incidents().unwrap().is_empty());

    // Fixed: declared, with typed inputs, by who submitted.
    values["input:records"] = json!({"value": {"type": "number_input", "value": "1200"}});
    values["input:tool"] = json!({"value": {"type": "plain_text_input", "value": "ChatGPT"}});
    values["input:jurisdictions"] = json!({"value": {"type": "multi_static_select", "selected_options": [
        {"text": {"type": "plain_text", "text": "EU"}, "value": "EU"},
        {"text": {"type": "plain_text", "text": "UK"}, "value": "UK"}]}});
    let (s, body) = h.interact(&submission(&form, values)).await;
    assert_eq!(s, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({}), "an empty answer closes the form");
    let inc = h.daemon.store().incidents().unwrap().remove(0);
    assert_eq!(inc.declared_by, "U0RESP01");
    assert_eq!(inc.severity, quench::store::Severity::Sev1);
    assert_eq!(inc.inputs["records"], 1200);
    assert_eq!(inc.inputs["tool"], "ChatGPT");
    assert_eq!(inc.inputs["jurisdictions"], json!(["EU", "UK"]));
}

#[tokio::test]
async fn one_unknown_responder_does_not_keep_the_others_out() {
    let h = host_opts(SlackKind::Http, false, true).await;
    let slack = h.slack.clone().unwrap();
    slack.unknown_user("U0LEGAL1");
    declare_from_slack(&h).await;
    slack
        .until("the invite problem said", |s| {
            s.messages()
                .iter()
                .any(|m| m.text.contains("Could not invite"))
        })
        .await;
    let ch = slack
        .channel_named("inc-inc-20261129-0001-contain")
        .unwrap();
    assert!(
        ch.members.iter().any(|m| m == "U0RESP01"),
        "{:?}",
        ch.members
    );
    assert!(!ch.members.iter().any(|m| m == "U0LEGAL1"));
    let said = slack
        .messages_in(&ch.id)
        .into_iter()
        .find(|m| m.text.contains("Could not invite"))
        .unwrap();
    assert!(
        said.text.contains("not invited: U0LEGAL1 (user_not_found)"),
        "{}",
        said.text
    );
}

#[tokio::test]
async fn a_post_that_reached_slack_before_a_crash_is_found_not_sent_again() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let slack = h.slack.clone().unwrap();
    let id = declare_from_slack(&h).await;
    slack
        .until("both requests posted", |s| s.asks().len() == 2)
        .await;
    let quench_slack = h.adapter.clone().unwrap();
    quench_slack.disconnect().await;
    // As if the daemon died after Slack took the last request's post and
    // before its cursor moved: the cursor before it, the post in doubt.
    let events = h.daemon.store().events(&id).unwrap();
    let last = events
        .iter()
        .rev()
        .find(|e| e.kind.ends_with(".requested"))
        .unwrap();
    let key = format!("slack/{id}");
    let mut st = h.daemon.store().meta(&key).unwrap().unwrap();
    st["posted"] = json!(last.seq - 1);
    st["pending"] = json!(last.seq);
    h.daemon.store().put_meta(&key, &st).await.unwrap();
    let lookups = slack.calls("conversations.replies").len();

    quench_slack.follow(h.daemon.clone());
    slack
        .until("the post in doubt looked up", |s| {
            s.calls("conversations.replies").len() > lookups
        })
        .await;
    let asked = slack.calls("conversations.replies");
    assert_eq!(asked.last().unwrap()["include_all_metadata"], "true");
    // The courier has moved past it without posting it again.
    let store = h.daemon.store().clone();
    let moved = || {
        store.meta(&key).unwrap().unwrap()["posted"]
            .as_u64()
            .unwrap()
            >= last.seq
    };
    slack.until("the cursor past the post", |_| moved()).await;
    assert_eq!(slack.asks().len(), 2);
    assert!(
        posts_per_event(&slack).values().all(|n| *n == 1),
        "{:?}",
        posts_per_event(&slack)
    );
}

/// Signs `body` once, as Slack would, and posts it to `path` `times` times.
async fn post_signed(
    h: &crate::server::Host,
    path: &str,
    body: &str,
    times: usize,
) -> Vec<(u16, String)> {
    let ts = crate::server::now_ts();
    let sig = crate::server::sign(&ts, body);
    let mut out = vec![];
    for _ in 0..times {
        out.push(h.slack_post(path, body.to_string(), &ts, &sig).await);
    }
    out
}

fn interaction(payload: &Json) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
}

#[tokio::test]
async fn a_signed_command_or_click_replayed_inside_its_window_runs_once() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let mut rx = h.daemon.engine().subscribe();
    let body = crate::server::command_body("U0RESP01", "declare contain sev1 tool=ChatGPT");
    let answers = post_signed(&h, "/slack/commands", &body, 3).await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    for (_, again) in &answers[1..] {
        assert!(again.contains("already received"), "{again}");
    }
    let list = h.daemon.store().incidents().unwrap();
    assert_eq!(list.len(), 1, "one declaration, however often it came");
    let id = list[0].id.clone();
    assert_eq!(settle(&mut rx, &id).await, "incident.waiting");

    // The same click, captured and sent again: decided once, nothing late.
    let slack = h.slack.clone().unwrap();
    let legal_ts = crate::server::ask_ts(&slack, &format!("{id} legal")).await;
    let press = crate::server::block_actions(
        "U0LEGAL1",
        "quench_approve",
        &format!("{id} legal"),
        &format!("{}/respond/1", slack.url),
        &legal_ts,
    );
    let answers = post_signed(&h, "/slack/interactions", &interaction(&press), 2).await;
    assert_eq!(answers[0].0, 200);
    assert!(
        answers[1].1.contains("already received"),
        "{:?}",
        answers[1]
    );
    let kinds: Vec<String> = h
        .daemon
        .store()
        .events(&id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "approval.granted").count(), 1);
    assert!(!kinds.iter().any(|k| k == "decision.late"), "{kinds:?}");
    let m = h.metrics().await;
    assert!(
        m.contains(r#"quench_slack_requests_total{endpoint="commands",outcome="replayed"} 2"#),
        "{m}"
    );
}

#[tokio::test]
async fn a_click_replayed_onto_another_incidents_message_is_refused() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let a = declare_from_slack(&h).await;
    let mut rx = h.daemon.engine().subscribe();
    h.command("U0RESP01", "declare contain sev1 tool=Jasper")
        .await;
    let b = h
        .daemon
        .store()
        .incidents()
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .find(|i| *i != a)
        .unwrap();
    assert_eq!(settle(&mut rx, &b).await, "incident.waiting");
    let slack = h.slack.clone().unwrap();
    // B's legal request, with a payload rewritten to approve A's.
    let b_legal = crate::server::ask_ts(&slack, &format!("{b} legal")).await;
    h.press_on(
        "U0LEGAL1",
        "quench_approve",
        &format!("{a} legal"),
        &b_legal,
    )
    .await;
    let r = h.response(1).await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("Refused: a button for"),
        "{r}"
    );
    for id in [&a, &b] {
        assert_eq!(
            h.daemon.store().step_run(id, "legal").unwrap().status,
            quench::store::StepStatus::Waiting,
            "{id}"
        );
    }
    assert!(h
        .daemon
        .store()
        .events(&a)
        .unwrap()
        .iter()
        .any(|e| e.kind == "slack.refused" && e.actor == "U0LEGAL1"));
}

#[tokio::test]
async fn response_url_replies_go_only_to_slacks_hooks_host() {
    let h = host_opts(SlackKind::Http, false, false).await;
    let id = declare_from_slack(&h).await;
    let slack = h.slack.clone().unwrap();
    let vendor_ts = crate::server::ask_ts(&slack, &format!("{id} vendor")).await;
    // A signed click whose response_url points elsewhere (here: the
    // platform mock, standing in for any host a payload might name).
    let press = crate::server::block_actions(
        "U0MOPS",
        "quench_done",
        &format!("{id} vendor"),
        &format!("{}/steal", h.platform.url),
        &vendor_ts,
    );
    let (s, _) = post_signed(&h, "/slack/interactions", &interaction(&press), 1).await[0].clone();
    assert_eq!(s, 200);
    let m = h.metrics().await;
    assert!(
        m.contains(r#"quench_slack_messages_total{outcome="response_url_refused"} 1"#),
        "{m}"
    );
    // The click itself was Slack's and counts; only the reply was withheld.
    assert_eq!(
        h.daemon.store().step_run(&id, "vendor").unwrap().status,
        quench::store::StepStatus::Succeeded
    );
    assert_eq!(h.platform.hits("/steal"), 0);
    assert!(slack.responses().is_empty());
}
