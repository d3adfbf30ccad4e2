//! A hostile platform on loopback: it never answers, redirects elsewhere,
//! streams a gigabyte, answers HTML with 200, echoes credentials, asks to
//! wait for days, leaves lists out. Each ends in a bounded, explained
//! outcome, and no credential leaves the integration's origin or reaches
//! the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use quench::integrations::CallError;
use quench::store::{IncidentStatus, StepStatus};
use serde_json::json;

use crate::integrations::executor_at;
use crate::support::{Mock, Reply, Rig, SECRET};

const KEY: &str = "sk-ant-admin01-H0STILE/key+9=";
const DEV: &str = "devtok-H0STILE-42";

/// Every request a server saw: path, query and headers.
type Log = Arc<Mutex<Vec<(String, String, HeaderMap)>>>;

struct Server {
    url: String,
    log: Log,
}

impl Server {
    /// The other host of a redirect or link: it must see no request at all.
    fn assert_untouched(&self) {
        assert!(
            self.paths().is_empty(),
            "the other host saw {:?}",
            self.paths()
        );
    }

    fn paths(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _, _)| p.clone())
            .collect()
    }
}

/// 64 KiB of JSON-ish filler, streamed 16,384 times: a 1 GiB answer that
/// costs the server nothing to produce.
static CHUNK: [u8; 65536] = [b'7'; 65536];

async fn serve(other_origin: Option<String>) -> Server {
    let log: Log = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = log.clone();
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let seen = seen.clone();
        let other = other_origin.clone();
        async move {
            let path = uri.path().to_string();
            let query = uri.query().unwrap_or("").to_string();
            seen.lock()
                .unwrap()
                .push((path.clone(), query.clone(), headers.clone()));
            answer(&path, &query, &headers, other.as_deref()).await
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { url, log }
}

async fn answer(path: &str, query: &str, headers: &HeaderMap, other: Option<&str>) -> Response {
    let echo = || {
        json!({
            "authorization": headers.get("authorization").and_then(|v| v.to_str().ok()),
            "x-api-key": headers.get("x-api-key").and_then(|v| v.to_str().ok()),
            "query": query,
            "items": [{"id": "k1", "note": format!("your key is {KEY}")}],
        })
    };
    match path {
        "/hang" => std::future::pending().await,
        "/away" => (
            StatusCode::TEMPORARY_REDIRECT,
            [("location", format!("{}/steal?from=quench", other.unwrap()))],
        )
            .into_response(),
        "/moved" => (StatusCode::FOUND, [("location", "/here")]).into_response(),
        "/here" => axum::Json(json!({"items": [], "referer": headers.get("referer").is_some()}))
            .into_response(),
        "/huge" => Body::from_stream(futures_util::stream::iter(
            (0..16_384).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(&CHUNK))),
        ))
        .into_response(),
        "/html" => (
            [("content-type", "text/html")],
            "<html><body>Please sign in to the corporate proxy</body></html>",
        )
            .into_response(),
        "/truncated" => (
            [("content-type", "application/json")],
            r#"{"items": [{"id": 1"#,
        )
            .into_response(),
        "/echo" => axum::Json(echo()).into_response(),
        "/echo-error" => (StatusCode::BAD_REQUEST, axum::Json(echo())).into_response(),
        "/no-list" => {
            axum::Json(json!({"kind": "admin#directory#tokenList", "etag": "x"})).into_response()
        }
        "/empty" => StatusCode::OK.into_response(),
        // A next-page link to another host: followed, it would carry the key.
        "/next-away" => {
            axum::Json(json!({"items": [{"id": 1}], "next": format!("{}/steal", other.unwrap())}))
                .into_response()
        }
        // Pages that never end.
        "/endless" => {
            let n: u32 = query.trim_start_matches("n=").parse().unwrap_or(0);
            axum::Json(json!({"items": [{"id": n}], "next": format!("/endless?n={}", n + 1)}))
                .into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The platform's manifest: credentials in a header the HTTP client does not
/// know are secret, a vendor header, and a key in the query.
const MANIFEST: &str = r#"
name: hostile
base_url: "https://hostile.invalid"
auth: { header: { name: x-api-key, value: "{{secrets.HOSTILE_KEY}}" } }
timeout: 300ms
max_response_bytes: 1048576
actions:
  get:
    method: GET
    path: "/{{{with.path}}}"
    headers: { developer-token: "{{secrets.HOSTILE_DEV}}" }
    query: { api_key: "{{secrets.HOSTILE_KEY}}" }
  list:
    method: GET
    path: "/{{{with.path}}}"
    output: items
  list_omitted_when_empty:
    method: GET
    path: "/{{{with.path}}}"
    output: items
    omit_empty: true
  pages:
    method: GET
    path: "/{{{with.path}}}"
    paginate: { items: items, cursor: next, cursor_param: cursor }
  linked:
    method: GET
    path: "/{{{with.path}}}"
    paginate: { items: items, next_url: next, max_pages: 3 }
  slow:
    method: GET
    path: "/hang"
    timeout: 100ms
  basic:
    method: GET
    path: "/{{{with.path}}}"
    auth: { basic: { username: quench, password: "{{secrets.HOSTILE_KEY}}" } }
"#;

fn hostile(server: &Server) -> (quench::integrations::Executor, tempfile::TempDir) {
    executor_at(
        MANIFEST,
        &server.url,
        &[("HOSTILE_KEY", KEY), ("HOSTILE_DEV", DEV)],
        None,
    )
}

async fn call(
    server: &Server,
    action: &str,
    path: &str,
    timeout: Option<Duration>,
) -> Result<quench::integrations::Success, CallError> {
    let (ex, _dir) = hostile(server);
    ex.call("hostile", action, &json!({"path": path}), "k-1", timeout)
        .await
}

/// Every form a credential travels in.
fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret.to_string(),
        quench::template::encode_segment(secret),
        serde_urlencoded::to_string([("k", secret)]).unwrap()[2..].to_string(),
        b64.encode(secret),
        b64.encode(format!("quench:{secret}")),
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for s in [KEY, DEV] {
        for f in forms(s) {
            assert!(!text.contains(&f), "{what} holds {f:?}: {text}");
        }
    }
}

#[tokio::test]
async fn a_platform_that_never_answers_fails_the_attempt_at_the_timeout() {
    let s = serve(None).await;
    // The manifest's 300ms, then the action's own 100ms, then the step's 50ms.
    let e = call(&s, "get", "hang", None).await.unwrap_err();
    assert!(
        matches!(e, CallError::Retriable { .. }) && e.to_string().contains("timed out after 300ms"),
        "{e}"
    );
    let e = call(&s, "slow", "", None).await.unwrap_err();
    assert!(e.to_string().contains("timed out after 100ms"), "{e}");
    let e = call(&s, "get", "hang", Some(Duration::from_millis(50)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timed out after 50ms"), "{e}");
    assert_no_secret("error", &e.to_string());
}

#[tokio::test]
async fn a_redirect_off_the_origin_is_a_failure_and_nothing_reaches_the_other_host() {
    let thief = serve(None).await;
    let s = serve(Some(thief.url.clone())).await;
    let e = call(&s, "get", "away", None).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            CallError::Fatal {
                status: Some(307),
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("redirected to {}", thief.url)) && msg.contains("not followed"),
        "{msg}"
    );
    thief.assert_untouched();
    assert_no_secret("error", &msg);

    // Within the origin a redirect is followed, credentials kept, no Referer.
    let ok = call(&s, "get", "moved", None).await.unwrap();
    assert_eq!(ok.output["referer"], json!(false));
    let log = s.log.lock().unwrap();
    let (_, _, here) = log.iter().find(|(p, _, _)| p == "/here").unwrap();
    assert_eq!(here.get("x-api-key").unwrap(), KEY);
    assert!(here.get("referer").is_none());
}

#[tokio::test]
async fn a_next_page_link_off_the_origin_is_not_followed() {
    let thief = serve(None).await;
    let s = serve(Some(thief.url.clone())).await;
    let e = call(&s, "linked", "next-away", None).await.unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("links its next page to {}", thief.url))
            && msg.contains("outside the integration's origin"),
        "{msg}"
    );
    thief.assert_untouched();
    assert_no_secret("error", &msg);
}

#[tokio::test]
async fn a_list_longer_than_max_pages_fails_rather_than_stopping_short() {
    let s = serve(None).await;
    let e = call(&s, "linked", "endless", None).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("more than 3 pages (paginate.max_pages)"),
        "{e}"
    );
}

#[tokio::test]
async fn omit_empty_does_not_read_an_empty_answer_as_no_items() {
    let s = serve(None).await;
    let e = call(&s, "list_omitted_when_empty", "empty", None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the answer has no `items`"), "{e}");
}

#[tokio::test]
async fn a_gigabyte_answer_is_cut_at_the_cap() {
    let s = serve(None).await;
    let e = call(&s, "get", "huge", Some(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, CallError::Fatal { .. })
            && e.to_string().contains("response over 1048576 bytes"),
        "{e}"
    );
}

#[tokio::test]
async fn a_200_that_is_not_json_fails_the_attempt() {
    let s = serve(None).await;
    for path in ["html", "truncated"] {
        let e = call(&s, "list", path, None).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, CallError::Retriable { .. }) && msg.contains("response is not JSON"),
            "{path}: {msg}"
        );
    }
    let e = call(&s, "list", "html", None).await.unwrap_err();
    assert!(e.to_string().contains("(text/html)"), "{e}");
}

#[tokio::test]
async fn a_missing_list_is_a_failure_unless_the_vendor_omits_it_when_empty() {
    let s = serve(None).await;
    for action in ["list", "pages"] {
        let e = call(&s, action, "no-list", None).await.unwrap_err();
        let msg = e.to_string();
        assert!(
            // The vendor's keys, in the order it sent them.
            msg.contains("the answer has no `items` (it has: kind, etag)")
                && msg.contains("omit_empty"),
            "{action}: {msg}"
        );
    }
    let ok = call(&s, "list_omitted_when_empty", "no-list", None)
        .await
        .unwrap();
    assert_eq!(ok.output, json!([]));
}

#[tokio::test]
async fn credentials_echoed_by_the_vendor_are_redacted_in_every_encoding() {
    let s = serve(None).await;
    for action in ["get", "basic"] {
        let ok = call(&s, action, "echo", None).await.unwrap();
        let out = ok.output.to_string();
        assert_no_secret("output", &out);
        assert!(out.contains("[REDACTED:"), "{out}");
        let e = call(&s, action, "echo-error", None).await.unwrap_err();
        assert_no_secret("error", &e.to_string());
    }
}

#[tokio::test]
async fn a_retry_after_beyond_the_steps_cap_waits_the_cap_and_says_so() {
    let mock = Mock::start().await;
    mock.on(
        "/busy",
        vec![
            Reply::json(429, json!({"error": "come back next week"}))
                .header("Retry-After", "999999"),
            Reply::json(200, json!({"ok": true})),
        ],
    );
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            r#"
version: 1
name: test
steps:
  - id: call
    action: mockp.get
    with: { path: busy }
    retry: { attempts: 2, backoff: 100ms, max_backoff: 1s }
"#,
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    assert_eq!(rig.clock.sleeps(), vec![Duration::from_secs(1)]);
    let retry = rig
        .store
        .events(&id)
        .unwrap()
        .into_iter()
        .find(|e| e.kind == "item.retry")
        .unwrap();
    assert!(
        retry.message.contains(
            "the vendor asked for 999999s with Retry-After; capped at the step's max_backoff 1s"
        ),
        "{}",
        retry.message
    );
}

#[tokio::test]
async fn a_secret_in_a_200_body_never_reaches_the_store() {
    let mock = Mock::start().await;
    mock.on(
        "/echo",
        vec![Reply::json(
            200,
            json!({"token": SECRET, "items": [{"note": format!("Bearer {SECRET}")}]}),
        )],
    );
    let rig = Rig::new(&mock, true);
    let (id, status) = rig
        .run(
            "version: 1\nname: test\nsteps:\n  - id: call\n    action: mockp.get\n    with: { path: echo }\n",
            json!({}),
        )
        .await;
    assert_eq!(status, IncidentStatus::Completed);
    let run = rig.step(&id, "call");
    assert_eq!(run.status, StepStatus::Succeeded);
    assert_eq!(run.output["token"], json!("[REDACTED:MOCKP_TOKEN]"));
    rig.store.flush().await;
    for f in crate::engine::walk(rig.dir.path()) {
        let hay = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!hay.contains(SECRET), "secret on disk in {}", f.display());
    }
}
