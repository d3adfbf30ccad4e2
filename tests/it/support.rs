//! Shared test rig: a scriptable mock platform (axum on port 0), and an
//! engine wired to it with a fake clock and a temp store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::TimeZone;
use quench::engine::{Declaration, Engine, FakeClock, Settings};
use quench::integrations::{Executor, Routing, Secrets};
use quench::library::{Folders, Library};
use quench::store::Store;
use serde_json::{json, Value as Json};
use tokio::sync::Notify;

/// One scripted answer.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Json,
    pub headers: Vec<(String, String)>,
    /// Never answer (until the client gives up).
    pub hang: bool,
    /// Answer after this long: a platform's latency.
    pub latency: Option<std::time::Duration>,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Reply {
            status,
            body: Json::Null,
            headers: vec![],
            hang: false,
            latency: None,
        }
    }
    pub(crate) fn json(status: u16, body: Json) -> Self {
        Reply {
            status,
            body,
            headers: vec![],
            hang: false,
            latency: None,
        }
    }
    /// The same reply, `latency` after the request arrived.
    pub(crate) fn after(mut self, latency: std::time::Duration) -> Self {
        self.latency = Some(latency);
        self
    }

    pub(crate) fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub(crate) fn hang() -> Self {
        Reply {
            status: 200,
            body: Json::Null,
            headers: vec![],
            hang: true,
            latency: None,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

#[derive(Default)]
struct MockState {
    /// path -> queued replies (the last one repeats)
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// The answer to a path with no script (404 when unset).
    otherwise: Mutex<Option<Reply>>,
    seen: Mutex<Vec<Seen>>,
    in_flight: Mutex<(usize, usize)>,
    arrived: Notify,
}

#[derive(Clone)]
pub(crate) struct Mock {
    pub url: String,
    state: Arc<MockState>,
}

impl Mock {
    pub(crate) async fn start() -> Mock {
        let state = Arc::new(MockState::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(state.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Mock { url, state }
    }

    /// Answers `path` with `replies` in order; the last one repeats.
    pub(crate) fn on(&self, path: &str, replies: Vec<Reply>) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(path.to_string(), replies.into());
    }

    /// Answers every path without a script with `reply`.
    pub(crate) fn otherwise(&self, reply: Reply) {
        *self.state.otherwise.lock().unwrap() = Some(reply);
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }

    /// Highest number of requests in flight at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.state.in_flight.lock().unwrap().1
    }

    /// Waits until a request for `path` has arrived.
    pub(crate) async fn wait_for(&self, path: &str) {
        self.wait_hits(path, 1).await
    }

    /// Waits until `n` requests in all have arrived.
    pub(crate) async fn wait_total(&self, n: usize) {
        loop {
            let notified = self.state.arrived.notified();
            if self.state.seen.lock().unwrap().len() >= n {
                return;
            }
            notified.await;
        }
    }

    /// Waits until `n` requests for `path` have arrived.
    pub(crate) async fn wait_hits(&self, path: &str, n: usize) {
        loop {
            let notified = self.state.arrived.notified();
            if self.hits(path) >= n {
                return;
            }
            notified.await;
        }
    }
}

async fn handle(
    State(st): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    st.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    {
        let mut f = st.in_flight.lock().unwrap();
        f.0 += 1;
        f.1 = f.1.max(f.0);
    }
    st.arrived.notify_waiters();
    let reply = {
        let mut script = st.script.lock().unwrap();
        match script.get_mut(&path) {
            Some(q) if q.len() > 1 => q.pop_front().unwrap(),
            Some(q) => q.front().cloned().unwrap(),
            None => st.otherwise.lock().unwrap().clone().unwrap_or_else(|| {
                Reply::json(404, json!({"error": format!("mock: no script for {path}")}))
            }),
        }
    };
    if reply.hang {
        std::future::pending::<()>().await;
    }
    if let Some(l) = reply.latency {
        tokio::time::sleep(l).await;
    }
    // Let concurrent requests overlap so the in-flight high-water mark means something.
    tokio::task::yield_now().await;
    st.in_flight.lock().unwrap().0 -= 1;
    let mut resp = if reply.body.is_null() {
        StatusCode::from_u16(reply.status).unwrap().into_response()
    } else {
        (
            StatusCode::from_u16(reply.status).unwrap(),
            axum::Json(reply.body),
        )
            .into_response()
    };
    for (k, v) in reply.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

/// The test platform: every kind of call the engine tests need.
pub(crate) const MOCK_MANIFEST: &str = r#"
name: mockp
title: Mock platform
base_url: "https://mock.invalid"
auth: { bearer: "{{secrets.MOCKP_TOKEN}}" }
actions:
  get:
    method: GET
    path: "/{{{with.path}}}"
    headers: { Idempotency-Key: "{{run.idempotency_key}}" }
  list:
    method: GET
    path: "/{{{with.path}}}"
    output: items
  post:
    method: POST
    path: "/{{{with.path}}}"
    headers: { Idempotency-Key: "{{run.idempotency_key}}" }
    body: { value: "{{with.value}}" }
  revoke:
    method: DELETE
    path: "/{{{with.path}}}"
    ok: [204]
    already_done: [404]
  tagged:
    method: POST
    path: "/{{{with.path}}}"
    headers: { X-Tag: "{{with.tag}}" }
"#;

pub(crate) const SECRET: &str = "tok-SEKRET-7f3a9c";

/// After a kill during step `b` of runbook `a -> b` and a resume: `a` ran
/// once, and `b` was retried with the idempotency key of its first attempt.
pub(crate) fn assert_resumed_without_repeats(mock: &Mock) {
    assert_eq!(
        mock.hits("/a"),
        1,
        "a finished before the kill and is not redone"
    );
    let keys: Vec<String> = mock
        .seen()
        .iter()
        .filter(|s| s.path == "/b")
        .map(|s| s.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys[0], keys[1],
        "the interrupted call is retried with the same idempotency key"
    );
}

pub(crate) fn tls() {
    quench::install_tls_provider();
}

pub(crate) struct Rig {
    pub engine: Engine,
    pub clock: FakeClock,
    pub store: Store,
    pub lib: Arc<Library>,
    pub dir: tempfile::TempDir,
}

pub(crate) fn write_manifest(dir: &Path) {
    std::fs::create_dir_all(dir.join("integrations")).unwrap();
    std::fs::write(dir.join("integrations/mockp.yaml"), MOCK_MANIFEST).unwrap();
}

pub(crate) fn library(dir: &Path) -> Arc<Library> {
    write_manifest(dir);
    Arc::new(
        Library::load(&Folders {
            // Tests that need runbooks by name (the daemon's) put them here.
            runbooks: dir.join("runbooks").is_dir().then(|| dir.join("runbooks")),
            integrations: Some(dir.join("integrations")),
        })
        .unwrap(),
    )
}

/// An executor whose `mockp` calls go to `mock_url`; `read_only` for plans.
pub(crate) fn mock_executor(lib: &Library, mock_url: &str, read_only: bool) -> Arc<Executor> {
    let mut secrets = Secrets::default();
    secrets.insert("MOCKP_TOKEN", SECRET);
    let routing = Routing {
        base_urls: BTreeMap::from([("mockp".to_string(), mock_url.to_string())])
            .into_iter()
            .collect(),
        token_urls: Default::default(),
        secrets,
        simulated: false,
        read_only,
    };
    Arc::new(Executor::new(&lib.catalog, routing).unwrap())
}

pub(crate) fn build_engine(
    dir: &Path,
    mock_url: &str,
    clock: FakeClock,
    drill: bool,
) -> (Engine, Store, Arc<Library>) {
    build_engine_on(dir, mock_url, Arc::new(clock), drill)
}

/// `build_engine` with any clock (one that misbehaves, say).
pub(crate) fn build_engine_on(
    dir: &Path,
    mock_url: &str,
    clock: Arc<dyn quench::engine::Clock>,
    drill: bool,
) -> (Engine, Store, Arc<Library>) {
    let store = Store::open(&dir.join("store")).unwrap();
    build_engine_over(dir, mock_url, clock, drill, store)
}

/// `build_engine_on` over a store already open (the shared one, say).
pub(crate) fn build_engine_over(
    dir: &Path,
    mock_url: &str,
    clock: Arc<dyn quench::engine::Clock>,
    drill: bool,
    store: Store,
) -> (Engine, Store, Arc<Library>) {
    tls();
    let lib = library(dir);
    let exec = Arc::new(
        Arc::try_unwrap(mock_executor(&lib, mock_url, false))
            .ok()
            .expect("a fresh executor")
            .with_clock(clock.clone()),
    );
    let settings = Settings {
        drill,
        max_wait: std::time::Duration::from_secs(5),
        organization: json!({"name": "Acme", "dpo": {"name": "D", "email": "d@acme.example", "phone": "1"}, "website": "https://acme.example"}),
        roles: BTreeMap::from([
            ("legal".to_string(), vec!["U0LEGAL1".to_string()]),
            ("responder".to_string(), vec!["U0RESP01".to_string()]),
        ]),
        registry: quench::registry::Registry::parse(
            "approved-tools.yaml",
            "tools:\n  - { name: Approved CRM, match: [approved crm] }\n  - { name: Jasper, status: unapproved }\n",
        )
        .unwrap(),
        plan: false,
        zone: chrono_tz::Tz::UTC,
    };
    let engine = Engine::new(Arc::new(store.clone()), exec, clock, lib.clone(), settings);
    (engine, store, lib)
}

pub(crate) fn start_time() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap()
}

impl Rig {
    pub(crate) fn new(mock: &Mock, drill: bool) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        Rig::over(mock, drill, dir, store)
    }

    /// A rig over `store` (the shared one, say), with its files in `dir`.
    pub(crate) fn over(mock: &Mock, drill: bool, dir: tempfile::TempDir, store: Store) -> Rig {
        let clock = FakeClock::new(start_time());
        let (engine, store, lib) =
            build_engine_over(dir.path(), &mock.url, Arc::new(clock.clone()), drill, store);
        Rig {
            engine,
            clock,
            store,
            lib,
            dir,
        }
    }

    /// Declares an incident of `runbook_src` with `inputs` and runs it.
    pub(crate) async fn run(
        &self,
        runbook_src: &str,
        inputs: Json,
    ) -> (String, quench::store::IncidentStatus) {
        let id = self.declare(runbook_src, inputs).await;
        let status = self.engine.run(&id).await.unwrap();
        (id, status)
    }

    pub(crate) async fn declare(&self, runbook_src: &str, inputs: Json) -> String {
        let rb = quench::runbook::load("test.yaml", runbook_src, &self.lib.known())
            .unwrap_or_else(|d| panic!("test runbook invalid:\n{d}"));
        let pairs: Vec<String> = inputs
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| match v {
                        Json::String(s) => format!("{k}={s}"),
                        Json::Array(a) => format!(
                            "{k}={}",
                            a.iter()
                                .map(|x| x.as_str().unwrap_or_default().to_string())
                                .collect::<Vec<_>>()
                                .join(",")
                        ),
                        other => format!("{k}={other}"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let inputs = quench::runbook::inputs::parse(&rb, &pairs);
        self.engine
            .declare(
                &rb,
                Declaration {
                    runbook_file: "test.yaml".into(),
                    runbook_source: runbook_src.into(),
                    inputs: inputs.unwrap(),
                    declared_by: "tester".into(),
                    token: None,
                    severity: quench::store::Severity::Sev2,
                    channel: None,
                },
            )
            .await
            .unwrap()
    }

    pub(crate) fn step(&self, id: &str, step: &str) -> quench::store::StepRun {
        self.store.step_run(id, step).unwrap()
    }

    pub(crate) fn kinds(&self, id: &str) -> Vec<String> {
        self.store
            .events(id)
            .unwrap()
            .into_iter()
            .map(|e| format!("{} {}", e.kind, e.step.unwrap_or_default()))
            .collect()
    }
}

/// A person's decision on `step`, as the CLI makes it.
pub(crate) fn by_person(
    step: &str,
    decision: quench::engine::Decision,
    by: &str,
) -> quench::engine::Resolution {
    quench::engine::Resolution {
        step: step.into(),
        decision,
        by: by.into(),
        via: None,
        token: None,
        note: None,
    }
}
