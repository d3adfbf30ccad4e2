//! The built-in simulator: an HTTP server on loopback that answers every
//! manifest action from its `simulate` block, so drills exercise the real
//! request path (rendering, auth headers, rate limits, retries) without
//! touching a real platform.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::task::JoinHandle;

use super::manifest::{Auth, Manifest};
use super::Catalog;

/// The access token the simulator's OAuth2 token endpoint hands out.
pub const SIM_ACCESS_TOKEN: &str = "sim-access-token";

/// A throwaway RSA key generated for the simulator, so drills sign real
/// JWT assertions (service-account grants) and the simulator verifies
/// them. It has never been registered with any platform.
pub const SIM_JWT_KEY: &str = include_str!("simulator-rsa-key.pem");

struct Route {
    integration: String,
    action: String,
    method: Method,
    /// Path segments; `None` matches any one segment (a templated id).
    segments: Vec<Option<String>>,
    /// Fixed (untemplated) query pairs, which tell apart actions sharing a
    /// path (Mailchimp `status=schedule` vs `status=sending`).
    query: Vec<(String, String)>,
}

struct Sim {
    routes: Vec<Route>,
    manifests: BTreeMap<String, Arc<Manifest>>,
    calls: Mutex<BTreeMap<String, u64>>,
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    sim: Arc<Sim>,
    task: JoinHandle<()>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start(catalog: &Catalog) -> std::io::Result<Simulator> {
        let mut routes = Vec::new();
        let mut manifests = BTreeMap::new();
        for m in catalog.manifests() {
            manifests.insert(m.name.clone(), m.clone());
            for (name, a) in &m.actions {
                if a.manual.is_some() {
                    continue;
                }
                routes.push(Route {
                    integration: m.name.clone(),
                    action: name.clone(),
                    method: a.method.as_str().parse().unwrap_or(Method::GET),
                    segments: path_pattern(&a.path),
                    query: a
                        .query
                        .iter()
                        // Paging parameters change from page to page.
                        .filter(|(k, v)| {
                            !v.contains("{{")
                                && a.paginate.as_ref().is_none_or(|pg| {
                                    ![&pg.cursor_param, &pg.offset_param, &pg.page_param]
                                        .iter()
                                        .any(|p| p.as_deref() == Some(k.as_str()))
                                })
                        })
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                });
            }
        }
        let sim = Arc::new(Sim {
            routes,
            manifests,
            calls: Mutex::new(BTreeMap::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new().fallback(answer).with_state(sim.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Simulator { addr, sim, task })
    }

    /// The base URL that stands in for `integration`'s real one.
    pub fn base_url(&self, integration: &str) -> String {
        format!("http://{}/{}", self.addr, integration)
    }

    pub fn base_urls(&self) -> std::collections::HashMap<String, String> {
        self.sim
            .manifests
            .keys()
            .map(|n| (n.clone(), self.base_url(n)))
            .collect()
    }

    /// Token endpoints for the OAuth2 integrations.
    pub fn token_urls(&self) -> std::collections::HashMap<String, String> {
        self.sim
            .manifests
            .values()
            .filter(|m| matches!(m.auth, Auth::OAuth2(_)))
            .map(|m| {
                (
                    m.name.clone(),
                    format!("{}/__oauth2/token", self.base_url(&m.name)),
                )
            })
            .collect()
    }

    /// Everything a drill's executor needs to call the simulator.
    pub fn routing(&self, secret_names: &std::collections::BTreeSet<String>) -> super::Routing {
        let mut secrets = super::Secrets::simulated(secret_names);
        // A JWT signing key must be a real key for the grant to be exercised.
        for m in self.sim.manifests.values() {
            if let Auth::OAuth2(super::manifest::OAuth2 { jwt: Some(j), .. }) = &m.auth {
                if let Some(name) = j
                    .key
                    .trim()
                    .strip_prefix("{{secrets.")
                    .and_then(|r| r.strip_suffix("}}"))
                {
                    secrets.insert(name.trim(), SIM_JWT_KEY);
                }
            }
        }
        super::Routing {
            base_urls: self.base_urls(),
            token_urls: self.token_urls(),
            secrets,
        }
    }

    /// Requests answered so far, by `integration.action`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.sim.calls.lock().expect("simulator call log").clone()
    }
}

fn path_pattern(path: &str) -> Vec<Option<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains("{{") {
                None
            } else {
                Some(s.to_string())
            }
        })
        .collect()
}

/// Decoded `key=value` pairs of a query string.
fn url_pairs(q: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{q}"))
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `{"a": {"b": []}}` for the items path `a.b`: an empty later page.
fn empty_page(items: &str) -> serde_json::Value {
    items.rsplit('.').fold(
        serde_json::json!([]),
        |inner, key| serde_json::json!({ key: inner }),
    )
}

async fn answer(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut segs = uri.path().split('/').filter(|s| !s.is_empty());
    let Some(integration) = segs.next() else {
        return (
            StatusCode::NOT_FOUND,
            "quench simulator: no integration in path",
        )
            .into_response();
    };
    let rest: Vec<&str> = segs.collect();
    if rest == ["__oauth2", "token"] {
        // Every OAuth2 integration's token endpoint, for drills. A JWT-bearer
        // assertion must verify against the simulator's key.
        let form = String::from_utf8_lossy(&body).into_owned() + "&" + uri.query().unwrap_or("");
        let assertion = form.split('&').find_map(|kv| kv.strip_prefix("assertion="));
        if let Some(a) = assertion {
            if super::jwt::verify(SIM_JWT_KEY, a).is_none() {
                return (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))).into_response();
            }
        }
        return axum::Json(serde_json::json!({"access_token": SIM_ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600})).into_response();
    }
    // Among the actions on this path, the one whose fixed query pairs the
    // request carries (most of them wins; ties keep manifest order).
    let sent: Vec<(String, String)> = uri.query().map(url_pairs).unwrap_or_default();
    // Ranked: all fixed query pairs present (more is better), then manifest
    // order; a request without them still reaches the path's first action.
    let Some((_, _, route)) = sim
        .routes
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.integration == integration
                && r.method == method
                && r.segments.len() == rest.len()
                && r.segments
                    .iter()
                    .zip(&rest)
                    .all(|(p, s)| p.as_deref().is_none_or(|p| p == *s))
        })
        .map(|(i, r)| (r.query.iter().all(|kv| sent.contains(kv)), i, r))
        .max_by_key(|(all, i, r)| {
            (
                *all,
                if *all { r.query.len() } else { 0 },
                std::cmp::Reverse(*i),
            )
        })
    else {
        let msg = format!(
            "quench simulator: no {integration} action for {method} /{}",
            rest.join("/")
        );
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let manifest = &sim.manifests[&route.integration];
    let auth = manifest.actions[&route.action]
        .auth
        .as_ref()
        .unwrap_or(&manifest.auth);
    if !auth_present(auth, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            "quench simulator: credentials missing",
        )
            .into_response();
    }
    let action = &manifest.actions[&route.action];
    *sim.calls
        .lock()
        .expect("simulator call log")
        .entry(format!("{}.{}", route.integration, route.action))
        .or_default() += 1;

    let status = StatusCode::from_u16(action.simulate.status).unwrap_or(StatusCode::OK);
    // One page of data, then an empty page: a simulated list always ends.
    if let Some(pg) = &action.paginate {
        let query = uri.query().unwrap_or("");
        // The query value a parameter has on this request (percent-encoding
        // is irrelevant for the names and numbers compared here).
        let value = |name: &Option<String>| {
            let name = name.as_deref()?;
            query.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name || k == crate::render::encode_segment(name)).then(|| v.to_string())
            })
        };
        let first_page = pg.first_page.to_string();
        let later = value(&pg.cursor_param).is_some_and(|v| !v.is_empty())
            || value(&pg.offset_param).is_some_and(|v| v != "0")
            || value(&pg.page_param).is_some_and(|v| v != first_page);
        if later {
            return (status, axum::Json(empty_page(&pg.items))).into_response();
        }
    }
    let mut resp = match &action.simulate.body {
        Some(b) => (status, axum::Json(b.clone())).into_response(),
        None => status.into_response(),
    };
    for (k, v) in &action.simulate.headers {
        if let (Ok(k), Ok(v)) = (k.parse::<axum::http::HeaderName>(), v.parse()) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// The simulator checks that credentials are sent the way the vendor
/// expects, which catches a manifest whose auth block is wrong.
fn auth_present(auth: &Auth, headers: &HeaderMap) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    match auth {
        Auth::None => true,
        Auth::Bearer(_) => get("authorization")
            .strip_prefix("Bearer ")
            .is_some_and(|t| !t.is_empty()),
        Auth::Basic { .. } => get("authorization").starts_with("Basic "),
        Auth::Header { name, .. } => !get(name).is_empty(),
        Auth::OAuth2(_) => get("authorization")
            .strip_prefix("Bearer ")
            .is_some_and(|t| t == SIM_ACCESS_TOKEN),
    }
}
