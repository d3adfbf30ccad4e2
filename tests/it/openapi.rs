//! The OpenAPI description against the daemon itself: every route the
//! router serves is described, every described route answers, and every
//! status a route gives for a bad request is among those it documents.

use std::collections::BTreeSet;

use serde_json::{json, Value as Json};

use crate::server::{host_build, host_over, SlackKind, TOKEN};
use quench::daemon::access::{hex, sha256, Access, AccessEntry, Scope};

const READER: &str = "qnch_reader_0123456789abcdef";

/// (method, path) of every route in the router's source, for the paths
/// the description covers.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/server/mod.rs");
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let Some(path) = chunk
            .trim_start()
            .strip_prefix('"')
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        // The handler chain up to the closing parenthesis of `.route(`.
        let mut depth = 1;
        let end = chunk
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap_or(chunk.len());
        let chain = &chunk[..end];
        for m in ["get", "post", "put", "patch", "delete"] {
            if chain.contains(&format!(" {m}("))
                || chain.contains(&format!(".{m}("))
                || chain.contains(&format!("\n{m}("))
            {
                out.insert((m.to_string(), path.to_string()));
            }
        }
    }
    out.retain(|(_, p)| p.starts_with("/api/") || p == "/healthz" || p == "/metrics");
    out
}

fn documented(spec: &Json) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for m in ops.as_object().unwrap().keys() {
            out.insert((m.clone(), path.clone()));
        }
    }
    out
}

fn statuses(spec: &Json, method: &str, path: &str) -> BTreeSet<u16> {
    spec["paths"][path][method]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn every_route_and_every_status_it_answers_is_in_the_description() {
    let access = Access::new(
        &[AccessEntry {
            user: "mops-dashboard".into(),
            name: None,
            token_sha256: hex(&sha256(READER)),
            can: vec![Scope::Read],
        }],
        Some(("QUENCH_API_TOKEN", TOKEN)),
    )
    .unwrap();
    let h = host_build(SlackKind::Off, false, false, access).await;
    let id = h.declare_and_settle(json!({"tool": "ChatGPT"})).await;
    let (s, spec) = h.call_as(READER, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    assert_eq!(spec["openapi"], "3.1.0");

    let served = routes_in_source();
    assert!(served.len() >= 16, "{served:?}");
    assert_eq!(
        documented(&spec),
        served,
        "the description and the router differ"
    );

    let (_, n) = h
        .call("GET", &format!("/api/v1/incidents/{id}/notices"), None)
        .await;
    let key = n["notices"][0]["key"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| "draft.regulator.EU".into());
    let real = |path: &str| {
        path.replace("{id}", &id)
            .replace("{step}", "legal")
            .replace("{key}", &key)
    };
    let http = reqwest::Client::new();
    for (method, path) in &served {
        let doc = statuses(&spec, method, path);
        let url = format!("{}{}", h.url, real(path));
        let m: reqwest::Method = method.to_uppercase().parse().unwrap();
        let open = path == "/healthz" || path == "/metrics";
        // It is served: neither "no such endpoint" nor a wrong method.
        let r = http
            .request(m.clone(), &url)
            .bearer_auth(TOKEN)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(
            status != 405 && !text.contains("no such endpoint"),
            "{method} {path} is described but not served: {status} {text}"
        );
        let mut seen = vec![status];
        if !open {
            // No token, and a token without the scope.
            seen.push(
                http.request(m.clone(), &url)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
            if method != "get" {
                let r = http
                    .request(m.clone(), &url)
                    .bearer_auth(READER)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                seen.push(r.status().as_u16());
                // Not JSON, too large, not JSON at all.
                for body in [b"{not json".to_vec(), vec![b' '; (1 << 20) + 1]] {
                    let r = http
                        .request(m.clone(), &url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    seen.push(r.status().as_u16());
                }
                let r = http
                    .request(m.clone(), &url)
                    .bearer_auth(TOKEN)
                    .body("x")
                    .send()
                    .await
                    .unwrap();
                seen.push(r.status().as_u16());
            }
        }
        // A method it does not take.
        seen.push(
            http.delete(&url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
        // An incident that does not exist.
        if path.contains("{id}") {
            let url = format!("{}{}", h.url, real(path).replace(&id, "INC-19990101-0001"));
            let r = http
                .request(m.clone(), &url)
                .bearer_auth(TOKEN)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            seen.push(r.status().as_u16());
        }
        assert!(open || seen.contains(&401), "{method} {path}: {seen:?}");
        for status in seen.into_iter().filter(|s| *s >= 300) {
            assert!(
                doc.contains(&status),
                "{method} {path} answered {status}, which its description lacks: {doc:?}"
            );
        }
    }
}

/// A standby of the shared store answers every write with the 503 its
/// description gives, naming the leader, and still serves reads.
#[tokio::test]
async fn a_standby_refuses_every_write_with_the_503_it_documents() {
    let url = crate::postgres::database().await;
    let _leader = quench::store::Store::open_leading(&url, "quench-a@host-1")
        .await
        .unwrap();
    let standby = quench::store::Store::open_shared(&url, None).await.unwrap();
    assert!(!standby.leads());
    let h = host_over(
        SlackKind::Http,
        false,
        false,
        Access::legacy_only(TOKEN),
        Some(standby),
        false,
    )
    .await;
    let spec = serde_json::from_str::<Json>(include_str!("../../src/server/openapi.json")).unwrap();
    let writes: Vec<_> = routes_in_source()
        .into_iter()
        .filter(|(m, _)| m != "get")
        .collect();
    assert!(writes.len() >= 7, "{writes:?}");
    for (method, path) in &writes {
        let real = path
            .replace("{id}", "INC-20261129-0001")
            .replace("{step}", "legal")
            .replace("{key}", "draft.regulator.EU");
        let (status, body) = h.call(&method.to_uppercase(), &real, Some(json!({}))).await;
        assert_eq!(status, 503, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "standby", "{method} {path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("quench-a@host-1"), "{message}");
        assert!(
            statuses(&spec, method, path).contains(&503),
            "{method} {path} answers 503 on a standby, which its description lacks"
        );
    }
    // Without a token: 401, and nothing said about who leads.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/incidents", h.url))
        .json(&json!({"tool": "ChatGPT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("quench-a"));
    // Slack's the same way: a forged request gets 401 and learns nothing,
    // a signed one the 503 naming the leader.
    let body = crate::server::command_body("U0RESP01", "declare contain tool=ChatGPT");
    let ts = crate::server::now_ts();
    let (status, text) = h
        .slack_post("/slack/commands", body.clone(), &ts, "v0=00")
        .await;
    assert_eq!(status, 401, "{text}");
    assert!(!text.contains("quench-a"), "{text}");
    let (status, text) = h
        .slack_post(
            "/slack/commands",
            body.clone(),
            &ts,
            &crate::server::sign(&ts, &body),
        )
        .await;
    assert_eq!(status, 503, "{text}");
    let answer: Json = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["error"]["code"], "standby", "{text}");
    assert!(text.contains("quench-a@host-1"), "{text}");
    let (status, health) = h.call("GET", "/healthz", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["role"], "standby", "{health}");
    let (status, list) = h.call("GET", "/api/v1/incidents", None).await;
    assert_eq!(status, 200, "{list}");
}
