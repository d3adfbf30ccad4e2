//! The HTTP executor against mock vendors: auth kinds, OAuth2 token cache
//! and refresh, response rules for errors inside 200s, pagination.

use std::collections::HashMap;

use quench::integrations::{CallError, Executor, Routing, Secrets};
use quench::library::{Folders, Library};
use serde_json::{json, Value as Json};

use crate::support::{tls, Mock, Reply};

/// An executor for one manifest, pointed at the mock.
fn executor(
    manifest: &str,
    mock: &Mock,
    secrets: &[(&str, &str)],
    token_url: Option<String>,
) -> (Executor, tempfile::TempDir) {
    executor_at(manifest, &mock.url, secrets, token_url)
}

/// An executor for one manifest, pointed at `url`.
pub(crate) fn executor_at(
    manifest: &str,
    url: &str,
    secrets: &[(&str, &str)],
    token_url: Option<String>,
) -> (Executor, tempfile::TempDir) {
    tls();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("integrations")).unwrap();
    let name = manifest
        .lines()
        .find_map(|l| l.strip_prefix("name: "))
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(
        dir.path().join(format!("integrations/{name}.yaml")),
        manifest,
    )
    .unwrap();
    let lib = Library::load(&Folders {
        runbooks: None,
        integrations: Some(dir.path().join("integrations")),
    })
    .unwrap_or_else(|d| panic!("manifest invalid:\n{d}"));
    let mut s = Secrets::default();
    for (k, v) in secrets {
        s.insert(k, v);
    }
    let routing = Routing {
        base_urls: HashMap::from([(name.clone(), url.to_string())]),
        token_urls: token_url
            .map(|u| HashMap::from([(name, u)]))
            .unwrap_or_default(),
        secrets: s,
        simulated: false,
        read_only: false,
    };
    (Executor::new(&lib.catalog, routing).unwrap(), dir)
}

#[tokio::test]
async fn basic_and_header_auth_are_sent_as_vendors_expect() {
    let mock = Mock::start().await;
    mock.on("/3.0/campaigns/c1/actions/pause", vec![Reply::status(204)]);
    mock.on("/api/flows/f1", vec![Reply::json(200, json!({"data": {}}))]);
    let (mc, _d1) = executor(
        "name: mc\nbase_url: https://x.invalid\nauth: { basic: { username: quench, password: \"{{secrets.MC_KEY}}\" } }\nactions:\n  pause: { method: POST, path: \"/3.0/campaigns/{{with.id}}/actions/pause\", ok: [204] }\n",
        &mock,
        &[("MC_KEY", "mc-key-123456-us21")],
        None,
    );
    mc.call("mc", "pause", &json!({"id": "c1"}), "k", None)
        .await
        .unwrap();
    let (kl, _d2) = executor(
        r#"name: kl
base_url: https://x.invalid
auth: { header: { name: Authorization, value: "Klaviyo-API-Key {{secrets.KL_KEY}}" } }
actions:
  pause:
    method: PATCH
    path: "/api/flows/{{with.id}}"
    headers: { revision: "2026-07-15", Content-Type: application/vnd.api+json }
    body: { data: { type: flow, id: "{{with.id}}", attributes: { status: manual } } }
"#,
        &mock,
        &[("KL_KEY", "pk_live_abcdef")],
        None,
    );
    kl.call("kl", "pause", &json!({"id": "f1"}), "k", None)
        .await
        .unwrap();
    let seen = mock.seen();
    // "quench:mc-key-123456-us21" in base64
    assert_eq!(
        seen[0].headers["authorization"],
        "Basic cXVlbmNoOm1jLWtleS0xMjM0NTYtdXMyMQ=="
    );
    assert_eq!(
        seen[1].headers["authorization"],
        "Klaviyo-API-Key pk_live_abcdef"
    );
    assert_eq!(seen[1].headers["revision"], "2026-07-15");
    assert_eq!(seen[1].headers["content-type"], "application/vnd.api+json");
    let body: Json = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(
        body,
        json!({"data": {"type": "flow", "id": "f1", "attributes": {"status": "manual"}}})
    );
}

const OAUTH: &str = r#"name: oa
base_url: https://x.invalid
auth:
  oauth2:
    token_url: https://login.invalid/token
    params: { grant_type: refresh_token, refresh_token: "{{secrets.OA_REFRESH}}", client_id: "{{secrets.OA_ID}}" }
actions:
  get: { method: GET, path: /thing }
"#;

#[tokio::test]
async fn oauth2_token_is_cached_then_refreshed_on_401() {
    let mock = Mock::start().await;
    mock.on(
        "/token",
        vec![
            Reply::json(
                200,
                json!({"access_token": "at-first-0001", "expires_in": 3600}),
            ),
            Reply::json(
                200,
                json!({"access_token": "at-second-0002", "expires_in": 3600}),
            ),
        ],
    );
    mock.on(
        "/thing",
        vec![
            Reply::json(200, json!({"n": 1})),
            Reply::json(200, json!({"n": 2})),
            Reply::json(401, json!({"error": "expired"})),
            Reply::json(200, json!({"n": 3})),
        ],
    );
    let (ex, _d) = executor(
        OAUTH,
        &mock,
        &[("OA_REFRESH", "rt-secret-98765"), ("OA_ID", "client-1")],
        Some(format!("{}/token", mock.url)),
    );
    for n in 1..=3 {
        let r = ex.call("oa", "get", &json!({}), "k", None).await.unwrap();
        assert_eq!(r.output, json!({"n": n}));
    }
    let seen = mock.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/token", "/thing", "/thing", "/thing", "/token", "/thing"],
        "one token for two calls, a new one after the 401"
    );
    assert_eq!(
        seen[0].body,
        "client_id=client-1&grant_type=refresh_token&refresh_token=rt-secret-98765"
    );
    assert_eq!(
        seen[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen[1].headers["authorization"], "Bearer at-first-0001");
    assert_eq!(seen[5].headers["authorization"], "Bearer at-second-0002");
}

#[tokio::test]
async fn oauth2_token_failures_are_clear_and_redacted() {
    let mock = Mock::start().await;
    mock.on(
        "/token",
        vec![Reply::json(
            400,
            json!({"error": "invalid_grant", "echo": "rt-secret-98765"}),
        )],
    );
    let (ex, _d) = executor(
        OAUTH,
        &mock,
        &[("OA_REFRESH", "rt-secret-98765"), ("OA_ID", "client-1")],
        Some(format!("{}/token", mock.url)),
    );
    let err = ex
        .call("oa", "get", &json!({}), "k", None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(
        err,
        CallError::Fatal {
            status: Some(400),
            ..
        }
    ));
    assert!(
        msg.contains("oauth2 token request")
            && msg.contains("invalid_grant")
            && msg.contains("[REDACTED:OA_REFRESH]"),
        "{msg}"
    );
    assert!(!msg.contains("rt-secret-98765"));
}

#[tokio::test]
async fn response_rules_read_errors_inside_200s() {
    let mock = Mock::start().await;
    let (ex, _d) = executor(
        r#"name: sl
base_url: https://x.invalid
auth: { bearer: "{{secrets.SL_TOKEN}}" }
responses:
  - { body: { ok: false, error: [token_revoked, invalid_auth] }, means: already_done }
  - { body: { ok: false, error: ratelimited }, means: retry }
  - { body: { ok: false }, means: fail }
actions:
  revoke: { method: POST, path: /auth.revoke, ok: [200] }
  mk:
    method: POST
    path: /mk
    responses:
      - { body: { success: false, "errors.0.code": ["606", "615"] }, means: retry }
      - { body: { success: false }, means: fail }
  meta:
    method: POST
    path: /meta
    responses:
      - { status: 400, body: { "error.code": [17, 613, 80004] }, means: retry }
"#,
        &mock,
        &[("SL_TOKEN", "xoxp-1234567")],
        None,
    );
    mock.on(
        "/auth.revoke",
        vec![
            Reply::json(200, json!({"ok": true, "revoked": true})),
            Reply::json(200, json!({"ok": false, "error": "token_revoked"})),
            Reply::json(200, json!({"ok": false, "error": "ratelimited"}))
                .header("Retry-After", "30"),
            Reply::json(200, json!({"ok": false, "error": "not_allowed_token_type"})),
        ],
    );
    let none = json!({});
    let call = |a: &'static str| ex.call("sl", a, &none, "k", None);
    assert!(!call("revoke").await.unwrap().already_done);
    assert!(
        call("revoke").await.unwrap().already_done,
        "token_revoked means the effect holds"
    );
    match call("revoke").await.unwrap_err() {
        CallError::Retriable { retry_after, .. } => {
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(30)))
        }
        other => panic!("{other:?}"),
    }
    let e = call("revoke").await.unwrap_err();
    assert!(
        matches!(e, CallError::Fatal { .. }) && e.to_string().contains("not_allowed_token_type"),
        "{e}"
    );

    mock.on(
        "/mk",
        vec![
            Reply::json(200, json!({"success": false, "errors": [{"code": "606", "message": "Max rate limit exceeded"}]})),
            Reply::json(200, json!({"success": false, "errors": [{"code": "1013", "message": "Campaign not found"}]})),
        ],
    );
    assert!(matches!(
        call("mk").await.unwrap_err(),
        CallError::Retriable { .. }
    ));
    assert!(matches!(
        call("mk").await.unwrap_err(),
        CallError::Fatal { .. }
    ));
    mock.on(
        "/meta",
        vec![Reply::json(
            400,
            json!({"error": {"code": 17, "message": "User request limit reached"}}),
        )],
    );
    assert!(
        matches!(
            call("meta").await.unwrap_err(),
            CallError::Retriable {
                status: Some(400),
                ..
            }
        ),
        "Meta throttles inside a 400"
    );
}

#[tokio::test]
async fn pagination_merges_every_page() {
    let mock = Mock::start().await;
    let (ex, _d) = executor(
        r#"name: pg
base_url: https://x.invalid
actions:
  cursor:
    method: GET
    path: /cursor
    query: { limit: "2" }
    paginate: { items: results, cursor: paging.next.after, cursor_param: after }
  nexturl:
    method: GET
    path: /odata
    paginate: { items: value, next_url: "@odata.nextLink" }
  link:
    method: GET
    path: /link
    paginate: { items: items, link_header: true }
  offset:
    method: GET
    path: /offset
    query: { count: "2" }
    paginate: { items: campaigns, offset_param: offset }
  total:
    method: GET
    path: /total
    paginate: { items: campaigns, offset_param: offset, total: total_items }
  pages:
    method: GET
    path: /pages
    query: { page: "0", size: "2" }
    paginate: { items: campaigns, page_param: page, first_page: 0 }
  stuck:
    method: GET
    path: /stuck
    paginate: { items: r, cursor: next, cursor_param: after }
  hasmore:
    method: GET
    path: /hasmore
    paginate: { items: data, cursor: last_id, cursor_param: after, has_more: has_more }
"#,
        &mock,
        &[],
        None,
    );
    mock.on(
        "/cursor",
        vec![
            Reply::json(
                200,
                json!({"results": [1, 2], "paging": {"next": {"after": "c2"}}}),
            ),
            Reply::json(200, json!({"results": [3]})),
        ],
    );
    mock.on(
        "/odata",
        vec![
            Reply::json(200, json!({"value": ["a"], "@odata.nextLink": format!("{}/odata?$skiptoken=X", mock.url)})),
            Reply::json(200, json!({"value": ["b"]})),
        ],
    );
    mock.on(
        "/link",
        vec![
            Reply::json(200, json!({"items": [1]})).header(
                "Link",
                "</link?page=2>; rel=\"next\", </link?page=9>; rel=\"last\"",
            ),
            Reply::json(200, json!({"items": [2]})),
        ],
    );
    mock.on(
        "/offset",
        vec![
            Reply::json(200, json!({"campaigns": [1, 2]})),
            Reply::json(200, json!({"campaigns": [3]})),
            Reply::json(200, json!({"campaigns": []})),
        ],
    );
    mock.on(
        "/hasmore",
        vec![
            Reply::json(200, json!({"data": [1], "has_more": true, "last_id": "k1"})),
            Reply::json(
                200,
                json!({"data": [2], "has_more": false, "last_id": "k2"}),
            ),
        ],
    );
    let none = json!({});
    let ex = &ex;
    let none = &none;
    let out =
        |a: &'static str| async move { ex.call("pg", a, none, "k", None).await.unwrap().output };
    assert_eq!(out("cursor").await, json!([1, 2, 3]));
    assert_eq!(out("nexturl").await, json!(["a", "b"]));
    assert_eq!(out("link").await, json!([1, 2]));
    assert_eq!(out("offset").await, json!([1, 2, 3]));
    assert_eq!(out("hasmore").await, json!([1, 2]));
    let q: Vec<(String, String)> = mock
        .seen()
        .iter()
        .map(|s| (s.path.clone(), s.query.clone()))
        .collect();
    let expect: [(&str, &str); 11] = [
        ("/cursor", "limit=2"),
        ("/cursor", "limit=2&after=c2"),
        ("/odata", ""),
        ("/odata", "$skiptoken=X"),
        ("/link", ""),
        ("/link", "page=2"),
        ("/offset", "count=2"),
        ("/offset", "count=2&offset=2"),
        ("/offset", "count=2&offset=3"),
        ("/hasmore", ""),
        ("/hasmore", "after=k1"),
    ];
    assert_eq!(
        q,
        expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn service_account_jwt_bearer_grant_sends_a_signed_assertion() {
    use quench::integrations::simulator::SIM_JWT_KEY;
    let mock = Mock::start().await;
    mock.on(
        "/token",
        vec![Reply::json(
            200,
            json!({"access_token": "ya29.test-token", "expires_in": 3600}),
        )],
    );
    mock.on("/users", vec![Reply::json(200, json!({"users": []}))]);
    let (ex, _d) = executor(
        r#"name: gw
base_url: https://x.invalid
auth:
  oauth2:
    token_url: https://oauth2.googleapis.com/token
    params: { grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer" }
    jwt:
      key: "{{secrets.GW_KEY}}"
      claims: { iss: "{{secrets.GW_EMAIL}}", sub: admin@acme.example, scope: "https://www.googleapis.com/auth/admin.directory.user.security", aud: "https://oauth2.googleapis.com/token" }
actions:
  users: { method: GET, path: /users, output: users }
"#,
        &mock,
        // As service-account JSON files hold it: newlines escaped.
        &[
            ("GW_KEY", &SIM_JWT_KEY.replace('\n', "\\n")),
            ("GW_EMAIL", "quench@acme-ir.iam.gserviceaccount.com"),
        ],
        Some(format!("{}/token", mock.url)),
    );
    ex.call("gw", "users", &json!({}), "k", None).await.unwrap();
    let seen = mock.seen();
    let form: HashMap<String, String> = seen[0]
        .body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":")))
        .collect();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let claims = quench::integrations::jwt::verify(SIM_JWT_KEY, &form["assertion"])
        .expect("a valid RS256 signature");
    assert_eq!(claims["iss"], "quench@acme-ir.iam.gserviceaccount.com");
    assert_eq!(claims["sub"], "admin@acme.example");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(seen[1].headers["authorization"], "Bearer ya29.test-token");
}

#[tokio::test]
async fn the_simulator_tells_apart_actions_sharing_a_path_by_their_query() {
    tls();
    let lib = Library::load(&Folders::default()).unwrap();
    let sim = quench::integrations::Simulator::start(&lib.catalog)
        .await
        .unwrap();
    let ex = Executor::new(&lib.catalog, sim.routing(&lib.catalog.secret_names())).unwrap();
    let status = |out: Json| {
        out.as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let sending = ex
        .call("mailchimp", "list_sending_campaigns", &json!({}), "k", None)
        .await
        .unwrap();
    let scheduled = ex
        .call(
            "mailchimp",
            "list_scheduled_campaigns",
            &json!({}),
            "k",
            None,
        )
        .await
        .unwrap();
    assert!(status(sending.output).iter().all(|s| s == "sending"));
    assert!(status(scheduled.output).iter().all(|s| s == "schedule"));
}

#[tokio::test]
async fn an_action_can_carry_its_own_auth_and_optional_query_params() {
    let mock = Mock::start().await;
    mock.on("/auth.revoke", vec![Reply::json(200, json!({"ok": true}))]);
    mock.on("/list", vec![Reply::json(200, json!({"ok": true}))]);
    let (ex, _d) = executor(
        r#"name: sl
base_url: https://x.invalid
auth: { bearer: "{{secrets.SL_ADMIN}}" }
actions:
  list:
    method: GET
    path: /list
    query: { limit: "10", team_id: "{{#if with.team}}{{with.team}}{{/if}}" }
  revoke:
    method: POST
    path: /auth.revoke
    auth: { bearer: "{{with.token}}" }
"#,
        &mock,
        &[("SL_ADMIN", "xoxp-admin-123456")],
        None,
    );
    ex.call("sl", "list", &json!({}), "k", None).await.unwrap();
    ex.call("sl", "list", &json!({"team": "T1"}), "k", None)
        .await
        .unwrap();
    ex.call(
        "sl",
        "revoke",
        &json!({"token": "xoxb-leaked-999"}),
        "k",
        None,
    )
    .await
    .unwrap();
    let seen = mock.seen();
    assert_eq!(
        seen[0].query, "limit=10",
        "an optional parameter that renders empty is not sent"
    );
    assert_eq!(seen[1].query, "limit=10&team_id=T1");
    assert_eq!(seen[0].headers["authorization"], "Bearer xoxp-admin-123456");
    assert_eq!(
        seen[2].headers["authorization"], "Bearer xoxb-leaked-999",
        "the action's own auth wins"
    );
}

// Paused (virtual) time: the runtime jumps the clock while it waits on the
// limiter, so this measures the spacing without a wall-clock assertion.
#[tokio::test(start_paused = true)]
async fn an_endpoint_limit_applies_on_top_of_the_manifest_limit() {
    let mock = Mock::start().await;
    mock.on("/keys", vec![Reply::json(200, json!({}))]);
    mock.on("/flows", vec![Reply::json(200, json!({}))]);
    let (ex, _d) = executor(
        r#"name: kl
base_url: https://x.invalid
rate_limit: { per_second: 10, burst: 10 }
actions:
  keys: { method: GET, path: /keys, rate_limit: { per_second: 1, burst: 1 } }
  flows: { method: GET, path: /flows }
"#,
        &mock,
        &[],
        None,
    );
    let t0 = tokio::time::Instant::now();
    for _ in 0..3 {
        ex.call("kl", "keys", &json!({}), "k", None).await.unwrap();
    }
    let keys = t0.elapsed();
    let t1 = tokio::time::Instant::now();
    for _ in 0..3 {
        ex.call("kl", "flows", &json!({}), "k", None).await.unwrap();
    }
    let flows = t1.elapsed();
    assert!(
        keys >= std::time::Duration::from_secs(2),
        "3 calls at 1/s take 2 s: {keys:?}"
    );
    assert!(
        flows < std::time::Duration::from_millis(500),
        "the other endpoint is not held back: {flows:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_may_have_a_burst_and_a_steady_window_and_both_hold() {
    // Klaviyo's api-keys: burst 1/s, steady 15/min.
    let mock = Mock::start().await;
    mock.on("/keys", vec![Reply::json(200, json!({}))]);
    let (ex, _d) = executor(
        r#"name: kl
base_url: https://x.invalid
actions:
  keys: { method: GET, path: /keys, rate_limit: [{ per_second: 1, burst: 1 }, { per_second: 0.25, burst: 15 }] }
"#,
        &mock,
        &[],
        None,
    );
    let t0 = tokio::time::Instant::now();
    let mut at = vec![];
    for _ in 0..24 {
        ex.call("kl", "keys", &json!({}), "k", None).await.unwrap();
        at.push(t0.elapsed().as_secs_f64());
    }
    // One a second (the burst window) while the steady window's 15 last
    // (refilled at 0.25/s meanwhile), then one every 4 s.
    assert!(at.windows(2).all(|w| w[1] - w[0] >= 0.99), "{at:?}");
    assert!(at[18] < 19.5, "{at:?}");
    assert!(at[23] - at[22] >= 3.9, "{at:?}");
}
