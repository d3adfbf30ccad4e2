//! Per-person tokens: who a request is is the token's user, and what it
//! may do its scopes; `by` is only an admin's to set. Every decision in the
//! timeline names the person whose token made it.

use serde_json::{json, Value as Json};

use crate::server::{host_build, SlackKind, TOKEN};
use quench::daemon::access::{hex, sha256, Access, AccessEntry, Scope};

const LEGAL: &str = "qnch_legal_0123456789abcdef";
const DASHBOARD: &str = "qnch_dashboard_0123456789ab";
const ADMIN: &str = "qnch_admin_0123456789abcdef";
const BRIDGE: &str = "qnch_bridge_0123456789abcde";

fn entry(user: &str, token: &str, can: &[Scope]) -> AccessEntry {
    AccessEntry {
        user: user.into(),
        name: None,
        token_sha256: hex(&sha256(token)),
        can: can.to_vec(),
    }
}

async fn host() -> crate::server::Host {
    let access = Access::new(
        &[
            entry("U0LEGAL1", LEGAL, &[Scope::Read, Scope::Decide]),
            entry("mops-dashboard", DASHBOARD, &[Scope::Read]),
            entry("ops-admin", ADMIN, &[Scope::Admin]),
            entry("pagerduty-bridge", BRIDGE, &[Scope::Declare]),
        ],
        Some(("QUENCH_API_TOKEN", TOKEN)),
    )
    .unwrap();
    host_build(SlackKind::Off, false, false, access).await
}

async fn events(h: &crate::server::Host, id: &str) -> Vec<Json> {
    let (_, tl) = h
        .call("GET", &format!("/api/v1/incidents/{id}/timeline"), None)
        .await;
    tl["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_read_token_opens_pages_and_reads_but_every_write_is_403() {
    let h = host().await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let before = events(&h, &id).await.len();
    let writes = [
        (
            "/api/v1/incidents".to_string(),
            json!({"runbook": "contain", "inputs": {"tool": "X"}}),
        ),
        (
            "/api/v1/plans".to_string(),
            json!({"runbook": "contain", "inputs": {"tool": "X"}}),
        ),
        (
            format!("/api/v1/incidents/{id}/approvals/legal"),
            json!({"approve": true}),
        ),
        (
            format!("/api/v1/incidents/{id}/steps/vendor/done"),
            json!({}),
        ),
        (
            format!("/api/v1/incidents/{id}/notes"),
            json!({"text": "hi"}),
        ),
        (
            format!("/api/v1/incidents/{id}/notices/draft.regulator.EU"),
            json!({"body": "x"}),
        ),
        (
            format!("/api/v1/incidents/{id}/notices/draft.regulator.EU/sent"),
            json!({}),
        ),
    ];
    for (path, body) in &writes {
        let (s, b) = h.call_as(DASHBOARD, "POST", path, Some(body.clone())).await;
        assert_eq!(s, 403, "{path}: {b}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains("mops-dashboard may read but not"), "{msg}");
    }
    assert_eq!(events(&h, &id).await.len(), before, "nothing was recorded");
    let (s, _) = h
        .call_as(DASHBOARD, "GET", &format!("/api/v1/incidents/{id}"), None)
        .await;
    assert_eq!(s, 200);
    let page = reqwest::Client::new()
        .get(format!("{}/incidents/{id}", h.url))
        .basic_auth("dana", Some(DASHBOARD))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // A declare-only token (a paging bridge) may not read.
    let (s, _) = h.call_as(BRIDGE, "GET", "/api/v1/incidents", None).await;
    assert_eq!(s, 403);
    let (s, _) = h
        .call_as(
            "qnch_unknown_token_0000000",
            "GET",
            "/api/v1/incidents",
            None,
        )
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn a_decision_is_recorded_as_the_tokens_user_whatever_by_says() {
    let h = host().await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    // Claiming to be someone else is refused and records nothing.
    let (s, b) = h
        .call_as(
            LEGAL,
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0DPO"})),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap()
        .contains("may only name U0LEGAL1"));
    assert!(!events(&h, &id)
        .await
        .iter()
        .any(|e| e["kind"] == "approval.granted"));
    // Without `by`, the token's user decides, and the record says so.
    let (s, b) = h
        .call_as(
            LEGAL,
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["by"], "U0LEGAL1");
    let granted = events(&h, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "approval.granted")
        .unwrap();
    assert_eq!(granted["actor"], "U0LEGAL1");
    // With which token, by a label from its hash: never the token itself.
    let label = format!("sha256:{}", &hex(&sha256(LEGAL))[..12]);
    assert_eq!(granted["data"]["token"], label.as_str());
    let (s, n) = h
        .call_as(
            ADMIN,
            "POST",
            &format!("/api/v1/incidents/{id}/notes"),
            Some(json!({"text": "the DPO was told"})),
        )
        .await;
    assert_eq!(s, 201, "{n}");
    let note = events(&h, &id)
        .await
        .into_iter()
        .find(|e| e["seq"] == n["seq"])
        .unwrap();
    let admin = format!("sha256:{}", &hex(&sha256(ADMIN))[..12]);
    assert_eq!(
        (note["actor"].as_str(), note["data"]["token"].as_str()),
        (Some("ops-admin"), Some(admin.as_str()))
    );
    // The shared token is named by its variable.
    let declared = events(&h, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "incident.declared")
        .unwrap();
    assert_eq!(declared["data"]["token"], "QUENCH_API_TOKEN");
    let all = serde_json::to_string(&events(&h, &id).await).unwrap();
    assert!(!all.contains(LEGAL) && !all.contains(&hex(&sha256(LEGAL))));
}

#[tokio::test]
async fn an_admin_acting_for_a_user_is_recorded_as_both_and_held_to_their_role() {
    let h = host().await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    // For someone without the role: refused, and the refusal names both.
    let (s, _) = h
        .call_as(
            ADMIN,
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0INTERN"})),
        )
        .await;
    assert_eq!(s, 403);
    let refused = events(&h, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "approval.refused")
        .unwrap();
    assert_eq!(refused["actor"], "ops-admin for U0INTERN");
    let (s, b) = h
        .call_as(
            ADMIN,
            "POST",
            &format!("/api/v1/incidents/{id}/approvals/legal"),
            Some(json!({"approve": true, "by": "U0LEGAL1"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["by"].as_str(), b["via"].as_str()),
        (Some("U0LEGAL1"), Some("ops-admin"))
    );
    let granted = events(&h, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "approval.granted")
        .unwrap();
    assert_eq!(granted["actor"], "ops-admin for U0LEGAL1");
    assert_eq!(granted["message"], "Approved by ops-admin for U0LEGAL1");
    // A declaration names the token's user too.
    let (s, b) = h
        .call_as(
            BRIDGE,
            "POST",
            "/api/v1/incidents",
            Some(json!({"runbook": "contain", "inputs": {"tool": "Jasper"}})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (_, inc) = h
        .call(
            "GET",
            &format!("/api/v1/incidents/{}", b["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(inc["declared_by"], "pagerduty-bridge");
}

/// Runs the CLI in `dir` with `QUENCH_SERVER`, the given personal token
/// and no shared one.
async fn cli_at(
    dir: &std::path::Path,
    server: &str,
    token: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_quench"));
    cmd.current_dir(dir)
        .args(args)
        .env("QUENCH_SERVER", server)
        .env_remove("QUENCH_API_TOKEN")
        .env_remove("QUENCH_TOKEN");
    if let Some(t) = token {
        cmd.env("QUENCH_TOKEN", t);
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn the_cli_works_through_a_named_daemon_from_any_folder_as_its_tokens_user() {
    let h = host().await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    // A folder with no store and no config: everything comes from the daemon.
    let elsewhere = tempfile::tempdir().unwrap();
    let o = cli_at(
        elsewhere.path(),
        &h.url,
        Some(DASHBOARD),
        &["timeline", &id],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("approval.requested"),
        "{}",
        text(&o.stdout)
    );
    let o = cli_at(elsewhere.path(), &h.url, Some(DASHBOARD), &["status", &id]).await;
    assert!(
        text(&o.stdout).contains("· contain · "),
        "{}",
        text(&o.stdout)
    );

    // A read token cannot decide; the daemon's refusal names the scope.
    let o = cli_at(
        elsewhere.path(),
        &h.url,
        Some(DASHBOARD),
        &["approve", &id, "legal"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("403") && err.contains("not decide"), "{err}");
    // Claiming to be someone else is refused too, not rewritten.
    let o = cli_at(
        elsewhere.path(),
        &h.url,
        Some(LEGAL),
        &["approve", &id, "legal", "--by", "U0DPO"],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("may only name U0LEGAL1"),
        "{}",
        text(&o.stderr)
    );
    // Without --by the decision is the token's user's, not $USER's.
    let o = cli_at(
        elsewhere.path(),
        &h.url,
        Some(LEGAL),
        &["approve", &id, "legal"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("legal resolved by U0LEGAL1"),
        "{}",
        text(&o.stdout)
    );
    let granted = events(&h, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "approval.granted")
        .unwrap();
    assert_eq!(granted["actor"], "U0LEGAL1");

    // --server on the command line works the same, and wins over the variable.
    let o = cli_at(
        elsewhere.path(),
        "http://127.0.0.1:9",
        Some(DASHBOARD),
        &["--server", &h.url, "incidents"],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&id), "{}", text(&o.stdout));
    // A token it does not know, and none at all, say what to set.
    let o = cli_at(
        elsewhere.path(),
        &h.url,
        Some("qnch_nobody"),
        &["incidents"],
    )
    .await;
    let err = text(&o.stderr);
    assert!(err.contains("401") && err.contains("QUENCH_TOKEN"), "{err}");
    let o = cli_at(elsewhere.path(), &h.url, None, &["incidents"]).await;
    assert!(
        text(&o.stderr).contains("set QUENCH_TOKEN"),
        "{}",
        text(&o.stderr)
    );
    // Nothing was written where the CLI ran.
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn token_new_prints_a_token_once_and_the_line_that_lets_it_in() {
    let dir = tempfile::tempdir().unwrap();
    let o = crate::cli::quench(
        dir.path(),
        &[
            "--json",
            "token",
            "new",
            "U0LEGAL1",
            "--can",
            "read,decide",
            "--name",
            "Dana (Legal)",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out: Json = serde_json::from_slice(&o.stdout).unwrap();
    let token = out["token"].as_str().unwrap();
    assert!(token.len() >= 64, "{token}");
    assert_eq!(out["token_sha256"], hex(&sha256(token)));
    // The printed line is valid `access:` YAML that admits the token.
    let line = out["access_line"].as_str().unwrap();
    assert!(
        !line.contains(token),
        "the line holds the hash, not the token"
    );
    let entries: Vec<AccessEntry> = serde_yaml::from_str(line.trim_start()).unwrap();
    let access = Access::new(&entries, None).unwrap();
    let who = access.identify(token).unwrap();
    assert_eq!(
        (who.user.as_str(), who.name.as_deref()),
        ("U0LEGAL1", Some("Dana (Legal)"))
    );
    assert!(who.may(Scope::Decide) && !who.may(Scope::Declare));
    // Two tokens are never the same.
    let again = crate::cli::quench(dir.path(), &["--json", "token", "new", "U0LEGAL1"]);
    let again: Json = serde_json::from_slice(&again.stdout).unwrap();
    assert_ne!(again["token"], out["token"]);
    assert_eq!(again["can"], json!(["read"]));
    let bad = crate::cli::quench(
        dir.path(),
        &["token", "new", "U0LEGAL1", "--can", "approve"],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("unknown scope \"approve\": use read, declare, decide, note, admin"));
}
