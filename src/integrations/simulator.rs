//! The built-in simulator: an HTTP server on loopback that answers every
//! manifest action from its `simulate` block, so drills exercise the real
//! request path (rendering, auth headers, rate limits, retries) without
//! touching a real platform.
//!
//! A manifest with a `tenant` is simulated with state: each simulator
//! starts from the tenant's objects, lists serve what is there now (in
//! the vendor's paging style, leaving out empty lists where the vendor
//! does), and updates and deletes change it, so a drill's end state says
//! what the runbook really did (see [`tenant`](Simulator::tenant)).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::task::JoinHandle;

use serde_json::{json, Value as Json};

use super::manifest::{Action, Auth, Effect, Manifest, Op, Paginate, SimValue};
use super::Catalog;
use crate::template::lookup;

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
    /// `{{with.NAME}}` in a path segment: (segment index, text before it,
    /// NAME, text after it).
    vars: Vec<(usize, String, String, String)>,
    /// Untemplated leaves of the JSON body, which tell apart actions sharing
    /// a method and path (Klaviyo's send job `action: cancel` vs `revert`).
    body: Vec<(String, Json)>,
}

/// `(dotted path, value)` of every leaf of `v` that no template fills.
fn fixed_leaves(v: &Json, at: &str, out: &mut Vec<(String, Json)>) {
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match v {
        Json::Object(m) => m.iter().for_each(|(k, x)| fixed_leaves(x, &join(k), out)),
        Json::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| fixed_leaves(x, &join(&i.to_string()), out)),
        Json::String(s) if s.contains("{{") => {}
        leaf => out.push((at.to_string(), leaf.clone())),
    }
}

/// (drill, integration) -> collection -> objects. Each drill starts from
/// the manifests' tenants; requests naming no drill share the "" one.
type Tenants = BTreeMap<(String, String), BTreeMap<String, Vec<Json>>>;

struct Sim {
    routes: Vec<Route>,
    manifests: BTreeMap<String, Arc<Manifest>>,
    calls: Mutex<BTreeMap<String, u64>>,
    tenants: Mutex<Tenants>,
    keeper: Option<Arc<dyn TenantKeeper>>,
    addr: SocketAddr,
}

impl Sim {
    /// A platform's state as a drill finds it: what the keeper kept of it,
    /// or the manifest's tenant.
    fn seed(&self, drill: &str, integration: &str) -> Result<Platform, String> {
        if let Some(k) = &self.keeper {
            if let Some(kept) = k.load(drill, integration)? {
                return Ok(kept);
            }
        }
        Ok(self
            .manifests
            .get(integration)
            .map(|m| m.tenant.clone())
            .unwrap_or_default())
    }
}

/// One platform's state: collection -> objects.
pub type Platform = BTreeMap<String, Vec<Json>>;

/// Where simulated platforms' state outlives the process, so a drill
/// resumed after a crash or a restart finds its platforms as it left them
/// (a revoked grant stays revoked), not as they began.
pub trait TenantKeeper: Send + Sync {
    fn load(&self, drill: &str, integration: &str) -> Result<Option<Platform>, String>;
    fn save(&self, drill: &str, integration: &str, platform: &Platform) -> Result<(), String>;
}

/// Simulated platforms kept in the incident store, so `quench resume` and
/// a restarted daemon continue a drill against the state it left.
pub struct StoreKeeper(pub crate::store::Store);

impl TenantKeeper for StoreKeeper {
    fn load(&self, drill: &str, integration: &str) -> Result<Option<Platform>, String> {
        let why = |e: String| format!("reading drill {drill}'s {integration} from the store: {e}");
        match self.0.simulated_platform(drill, integration) {
            Ok(None) => Ok(None),
            Ok(Some(v)) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| why(e.to_string())),
            Err(e) => Err(why(e.to_string())),
        }
    }

    fn save(&self, drill: &str, integration: &str, platform: &Platform) -> Result<(), String> {
        let v = serde_json::to_value(platform).map_err(|e| e.to_string())?;
        self.0
            .put_simulated_platform(drill, integration, &v)
            .map_err(|e| format!("keeping drill {drill}'s {integration} in the store: {e}"))
    }
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
    /// Binds 127.0.0.1 on a free port and starts serving; platforms' state
    /// lives in memory for as long as the simulator runs.
    pub async fn start(catalog: &Catalog) -> std::io::Result<Simulator> {
        Self::start_keeping(catalog, None).await
    }

    /// As [`Simulator::start`], with platforms' state kept by `keeper`.
    pub async fn start_keeping(
        catalog: &Catalog,
        keeper: Option<Arc<dyn TenantKeeper>>,
    ) -> std::io::Result<Simulator> {
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
                    vars: path_vars(&a.path),
                    body: {
                        let mut leaves = vec![];
                        if let Some(b) = &a.body {
                            fixed_leaves(b, "", &mut leaves);
                        }
                        leaves
                    },
                });
            }
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let tenants = Tenants::new();
        let sim = Arc::new(Sim {
            routes,
            manifests,
            calls: Mutex::new(BTreeMap::new()),
            tenants: Mutex::new(tenants),
            keeper,
            addr,
        });
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
            simulated: true,
            read_only: false,
        }
    }

    /// Requests answered so far, by `integration.action`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.sim.calls.lock().expect("simulator call log").clone()
    }

    /// What a stateful platform holds now for requests naming no drill
    /// (inventory, checks), collection by collection.
    pub fn tenant(&self, integration: &str) -> BTreeMap<String, Vec<Json>> {
        self.tenant_of("", integration)
    }

    /// What a stateful platform holds now in one drill's tenant (empty for
    /// a platform simulated without a tenant).
    pub fn tenant_of(&self, drill: &str, integration: &str) -> Platform {
        let key = (drill.to_string(), integration.to_string());
        let held = self
            .sim
            .tenants
            .lock()
            .expect("simulator tenants")
            .get(&key)
            .cloned();
        held.or_else(|| self.sim.seed(drill, integration).ok())
            .unwrap_or_default()
    }
}

/// Every body the simulator can answer `action` with, from its tenant as
/// it starts: one list page holding every object of the collection, or
/// each object as an update answers it, or the static body. The spec
/// conformance test checks these against the vendor's response schema.
pub fn answers(manifest: &Manifest, action: &Action) -> Vec<Json> {
    let Some(e) = &action.simulate.effect else {
        return action.simulate.body.iter().cloned().collect();
    };
    let objects: Vec<Json> = manifest
        .tenant
        .get(&e.collection)
        .map(|c| c.iter().map(shown).collect())
        .unwrap_or_default();
    let listed = || {
        objects
            .iter()
            .map(|o| summary(o, &e.fields))
            .collect::<Vec<_>>()
    };
    match (e.op, &e.answer) {
        (Op::List, _) => {
            let items_at = action
                .paginate
                .as_ref()
                .map(|p| p.items.as_str())
                .or(action.output.as_deref());
            let mut body = action.simulate.body.clone().unwrap_or_else(|| json!({}));
            match items_at {
                Some(p) => set_path(&mut body, p, Json::Array(listed())),
                None => body = Json::Array(listed()),
            }
            vec![body]
        }
        (Op::Update, Some(p)) => objects
            .into_iter()
            .map(|o| {
                if p.is_empty() {
                    o
                } else {
                    let mut body = json!({});
                    set_path(&mut body, p, o);
                    body
                }
            })
            .collect(),
        _ => action.simulate.body.iter().cloned().collect(),
    }
}

/// Where `{{with.NAME}}` (or `{{{with.NAME}}}`) sits in a path template.
fn path_vars(path: &str) -> Vec<(usize, String, String, String)> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .enumerate()
        .filter_map(|(i, seg)| {
            let open = seg.find("{{")?;
            let close = seg.rfind("}}")? + 2;
            let inner = seg[open..close]
                .trim_matches(|c| c == '{' || c == '}')
                .trim();
            let name = inner.strip_prefix("with.")?.to_string();
            Some((i, seg[..open].to_string(), name, seg[close..].to_string()))
        })
        .collect()
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
    let sent_body: Option<Json> = serde_json::from_slice(&body).ok();
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
        .map(|(i, r)| {
            let all = r.query.iter().all(|kv| sent.contains(kv))
                && r.body.iter().all(|(p, v)| {
                    sent_body
                        .as_ref()
                        .and_then(|b| lookup(b, p))
                        .is_some_and(|got| got == v)
                });
            (all, i, r)
        })
        .max_by_key(|(all, i, r)| {
            (
                *all,
                if *all {
                    r.query.len() + r.body.len()
                } else {
                    0
                },
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

    if let Some(effect) = &action.simulate.effect {
        let drill = headers
            .get(super::executor::DRILL_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let req = Request {
            drill,
            route,
            segments: &rest,
            query: &sent,
            raw_query: uri.query().unwrap_or(""),
            body: &body,
        };
        return stateful(&sim, action, effect, &req);
    }
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
                (k == name || k == crate::template::encode_segment(name)).then(|| v.to_string())
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

/// The parts of a request a stateful answer reads.
struct Request<'a> {
    drill: &'a str,
    route: &'a Route,
    segments: &'a [&'a str],
    query: &'a [(String, String)],
    raw_query: &'a str,
    body: &'a [u8],
}

impl Request<'_> {
    fn value(&self, v: &SimValue) -> Json {
        let text = |s: Option<String>| s.map(Json::String).unwrap_or(Json::Null);
        match v {
            SimValue::Literal(j) => j.clone(),
            SimValue::Path(name) => text(
                self.route
                    .vars
                    .iter()
                    .find(|(_, _, n, _)| n == name)
                    .and_then(|(i, pre, _, post)| {
                        let seg = self.segments.get(*i)?;
                        let raw = seg
                            .strip_prefix(pre.as_str())?
                            .strip_suffix(post.as_str())?;
                        Some(url_pairs(&format!("v={raw}")).pop()?.1)
                    }),
            ),
            SimValue::Query(name) => text(
                self.query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone()),
            ),
            SimValue::Quoted(name) => text(self.query.iter().find(|(k, _)| k == name).and_then(
                |(_, v)| {
                    let (_, rest) = v.split_once('\'')?;
                    Some(rest.split_once('\'')?.0.to_string())
                },
            )),
            SimValue::Form(name) => text(
                url_pairs(&String::from_utf8_lossy(self.body))
                    .into_iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v),
            ),
            SimValue::Body(path) => serde_json::from_slice::<Json>(self.body)
                .ok()
                .and_then(|b| lookup(&b, path).cloned())
                .unwrap_or(Json::Null),
        }
    }
}

/// Where a tenant object keeps state the vendor shows only through which
/// list it appears in (Slack's approved vs restricted apps); never answered.
const HIDDEN: &str = "quench_sim";

/// Only `fields` of an object (all of it when none are named).
fn summary(o: &Json, fields: &[String]) -> Json {
    match o {
        Json::Object(m) if !fields.is_empty() => Json::Object(
            m.iter()
                .filter(|(k, _)| fields.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// An object as the vendor would answer it.
fn shown(o: &Json) -> Json {
    let mut o = o.clone();
    if let Json::Object(m) = &mut o {
        m.remove(HIDDEN);
    }
    o
}

/// `601` equals `"601"`; vendors disagree on whether ids are strings.
fn same(a: &Json, b: &Json) -> bool {
    let text = |v: &Json| match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    a == b || (!a.is_null() && !b.is_null() && text(a) == text(b))
}

fn set_path(obj: &mut Json, path: &str, v: Json) {
    let mut at = obj;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        if !at.is_object() {
            *at = json!({});
        }
        let m = at.as_object_mut().expect("made an object above");
        if parts.peek().is_none() {
            m.insert(p.to_string(), v);
            return;
        }
        at = m.entry(p.to_string()).or_insert_with(|| json!({}));
    }
}

fn remove_path(obj: &mut Json, path: &str) {
    match path.rsplit_once('.') {
        Some((head, last)) => {
            if let Some(Json::Object(m)) = obj.pointer_mut(&format!("/{}", head.replace('.', "/")))
            {
                m.remove(last);
            }
        }
        None => {
            if let Json::Object(m) = obj {
                m.remove(path);
            }
        }
    }
}

fn stateful(sim: &Sim, action: &Action, e: &Effect, req: &Request<'_>) -> Response {
    let key = (req.drill.to_string(), req.route.integration.clone());
    let mut tenants = sim.tenants.lock().expect("simulator tenants");
    let platform = match tenants.entry(key.clone()) {
        std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::btree_map::Entry::Vacant(v) => match sim.seed(&key.0, &key.1) {
            Ok(t) => v.insert(t),
            Err(why) => return unkept(&why),
        },
    };
    let (answer, changed) = apply(action, e, req, platform);
    if let Some(keeper) = &sim.keeper {
        // Kept before the answer goes out: the engine records the effect
        // only after it, and its commit flushes this write too.
        let kept = if changed {
            keeper.save(&key.0, &key.1, platform)
        } else {
            Ok(())
        };
        // The keeper holds it now: a long-running daemon's memory does not
        // grow with every drill it ever ran.
        tenants.remove(&key);
        if let Err(why) = kept {
            return unkept(&why);
        }
    }
    drop(tenants);
    match answer {
        Answer::Page(found, status) => list_page(sim, action, e, req, found, status),
        Answer::Done(r) => r,
    }
}

fn unkept(why: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(
            json!({"error": "tenant_unavailable", "message": format!("quench simulator: {why}")}),
        ),
    )
        .into_response()
}

enum Answer {
    /// The objects a list found, to be paged.
    Page(Vec<Json>, StatusCode),
    Done(Response),
}

/// Applies one request to a platform's state: what it answers, and whether
/// the state changed.
fn apply(
    action: &Action,
    e: &Effect,
    req: &Request<'_>,
    platform: &mut BTreeMap<String, Vec<Json>>,
) -> (Answer, bool) {
    let resolve = |filter: &[(String, Vec<SimValue>)]| -> Vec<(String, Vec<Json>)> {
        filter
            .iter()
            .map(|(f, vals)| (f.clone(), vals.iter().map(|v| req.value(v)).collect()))
            .collect()
    };
    let filter = resolve(&e.filter);
    let status = StatusCode::from_u16(action.simulate.status).unwrap_or(StatusCode::OK);
    let static_body = || match &action.simulate.body {
        Some(b) => (status, axum::Json(b.clone())).into_response(),
        None => status.into_response(),
    };
    let objects = platform.entry(e.collection.clone()).or_default();
    if e.op == Op::List {
        let found = objects
            .iter()
            .filter(|o| matches(o, &filter))
            .map(|o| summary(&shown(o), &e.fields))
            .collect();
        return (Answer::Page(found, status), false);
    }
    let id = e.id.as_ref().map(|v| req.value(v)).unwrap_or(Json::Null);
    let at = objects
        .iter()
        .position(|o| matches(o, &filter) && lookup(o, &e.key).is_some_and(|k| same(k, &id)));
    let Some(at) = at else {
        let code = StatusCode::from_u16(e.missing).unwrap_or(StatusCode::NOT_FOUND);
        let body = e.missing_body.clone().unwrap_or_else(|| {
            json!({"error": "not_found", "message": format!("quench simulator: no {} with {} {id} in this tenant", e.collection, e.key)})
        });
        return (
            Answer::Done((code, axum::Json(body)).into_response()),
            false,
        );
    };
    if e.op == Op::Delete {
        objects.remove(at);
        for c in &e.cascade {
            let cf = resolve(&c.filter);
            platform
                .entry(c.collection.clone())
                .or_default()
                .retain(|o| !matches(o, &cf));
        }
        return (Answer::Done(static_body()), true);
    }
    for (field, v) in &e.set {
        set_path(&mut objects[at], field, req.value(v));
    }
    let obj = shown(&objects[at]);
    for c in &e.cascade {
        let cf = resolve(&c.filter);
        for o in platform
            .entry(c.collection.clone())
            .or_default()
            .iter_mut()
            .filter(|o| matches(o, &cf))
        {
            for (field, v) in &c.set {
                set_path(o, field, req.value(v));
            }
        }
    }
    let answer = match &e.answer {
        None if status == StatusCode::NO_CONTENT => status.into_response(),
        None => static_body(),
        Some(p) if p.is_empty() => (status, axum::Json(obj)).into_response(),
        Some(p) => {
            let mut body = json!({});
            set_path(&mut body, p, obj);
            (status, axum::Json(body)).into_response()
        }
    };
    (Answer::Done(answer), true)
}

/// Whether an object's fields equal one of the values each filter allows.
fn matches(o: &Json, filter: &[(String, Vec<Json>)]) -> bool {
    filter.iter().all(|(f, vals)| {
        let got = lookup(o, f).unwrap_or(&Json::Null);
        vals.iter().any(|v| same(got, v))
    })
}

/// One page of `found`, enveloped as `simulate.body` and paged the way the
/// action's `paginate` reads pages.
fn list_page(
    sim: &Sim,
    action: &Action,
    e: &Effect,
    req: &Request<'_>,
    found: Vec<Json>,
    status: StatusCode,
) -> Response {
    let size = e.page_size.unwrap_or(usize::MAX).max(1);
    let pg: Option<&Paginate> = action.paginate.as_ref();
    let param = |name: &Option<String>| {
        let n = name.as_deref()?;
        req.query
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    // Where this page starts.
    let start = match pg {
        Some(p) if p.cursor.is_some() => param(&p.cursor_param)
            .and_then(|c| c.strip_prefix("sim-").and_then(|n| n.parse().ok()))
            .unwrap_or(0),
        Some(p) if p.offset_param.is_some() => param(&p.offset_param)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        Some(p) if p.page_param.is_some() => param(&p.page_param)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|n| (n.saturating_sub(p.first_page) as usize).saturating_mul(size))
            .unwrap_or(0),
        _ => param(&Some("__page".into()))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0),
    };
    let total = found.len();
    let end = start.saturating_add(size).min(total);
    let page: Vec<Json> = found
        .into_iter()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect();
    let more = end < total;
    let items_at = pg.map(|p| p.items.as_str()).or(action.output.as_deref());
    let mut body = action.simulate.body.clone().unwrap_or_else(|| json!({}));
    let empty = page.is_empty();
    match items_at {
        Some(p) => set_path(&mut body, p, Json::Array(page)),
        None => body = Json::Array(page),
    }
    if empty && action.omit_empty {
        if let Some(p) = items_at {
            remove_path(&mut body, p);
        }
    }
    let mut link = None;
    if let Some(p) = pg {
        let next_url = || {
            let keep: Vec<&str> = req
                .raw_query
                .split('&')
                .filter(|kv| !kv.is_empty() && !kv.starts_with("__page="))
                .collect();
            let mut q = keep.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            format!(
                "http://{}/{}/{}?{q}__page={end}",
                sim.addr,
                req.route.integration,
                req.segments.join("/")
            )
        };
        if let Some(c) = &p.cursor {
            set_path(
                &mut body,
                c,
                if more {
                    json!(format!("sim-{end}"))
                } else {
                    Json::Null
                },
            );
        }
        if let Some(n) = &p.next_url {
            set_path(
                &mut body,
                n,
                if more { json!(next_url()) } else { Json::Null },
            );
        }
        if let Some(h) = &p.has_more {
            set_path(&mut body, h, json!(more));
        }
        if let Some(t) = &p.total {
            set_path(&mut body, t, json!(total));
        }
        if p.link_header && more {
            link = Some(format!("<{}>; rel=\"next\"", next_url()));
        }
    }
    let mut resp = (status, axum::Json(body)).into_response();
    if let Some(l) = link.and_then(|l| l.parse().ok()) {
        resp.headers_mut().insert(axum::http::header::LINK, l);
    }
    resp
}
