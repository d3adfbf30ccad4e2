//! Integration manifests: one YAML file per platform describing auth, rate
//! limits and HTTP actions. Loaded with the same located diagnostics as
//! runbooks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::runbook::load::{is_id, yaml_to_json};
use crate::source::check::{kind_of, show, Checker};
use crate::source::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::source::yaml::{YPath, YamlDoc};
use crate::template;

#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub title: String,
    pub base_url: String,
    pub auth: Auth,
    pub rate_limit: RateLimit,
    pub actions: BTreeMap<String, Action>,
    /// Body rules every action shares (e.g. Slack's `ok: false`).
    pub responses: Vec<ResponseRule>,
    /// Every `secrets.NAME` the manifest's templates read.
    pub secrets: BTreeSet<String>,
    /// A harmless read for `quench integrations check`.
    pub check: Option<String>,
    /// Per-attempt limits for every action (body included); actions and
    /// steps may set their own. See [`Limits`].
    pub limits: Limits,
    /// What the simulated platform holds when a drill starts, collection by
    /// collection, each object shaped like the vendor's answers.
    pub tenant: BTreeMap<String, Vec<Json>>,
}

/// How long one attempt may take and how much of an answer is read. Unset
/// fields fall back: step, then action, then manifest, then the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub timeout: Option<std::time::Duration>,
    pub max_response_bytes: Option<u64>,
}

impl Limits {
    /// A vendor that never answers must not hold a step for ever.
    pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
    /// Far above any page the catalog's vendors document, far below what
    /// would hurt the daemon or the store.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;

    /// `self` where set, else `fallback`.
    pub fn or(self, fallback: Limits) -> Limits {
        Limits {
            timeout: self.timeout.or(fallback.timeout),
            max_response_bytes: self.max_response_bytes.or(fallback.max_response_bytes),
        }
    }

    pub fn timeout(&self) -> std::time::Duration {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT)
    }

    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
            .unwrap_or(Self::DEFAULT_MAX_RESPONSE_BYTES)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { username: String, password: String },
    Header { name: String, value: String },
    OAuth2(OAuth2),
}

/// OAuth2 token endpoint: client credentials or refresh-token grant. The
/// access token is cached until shortly before `expires_in` and fetched
/// again after a 401 (or a `reauth` response rule).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    pub token_url: String,
    pub method: reqwest::Method,
    /// How `params` travel: form body (RFC 6749), JSON body (SFMC) or query (Marketo).
    pub send_as: SendAs,
    pub params: BTreeMap<String, String>,
    /// JWT-bearer grant (RFC 7523): sign these claims and send them as
    /// `assertion` (Google service accounts with domain-wide delegation).
    pub jwt: Option<JwtSpec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtSpec {
    /// PKCS#8 PEM private key, usually `{{secrets.X}}`.
    pub key: String,
    /// Claims besides `iat`/`exp` (iss, sub, scope, aud), templated.
    pub claims: BTreeMap<String, String>,
    pub lifetime_secs: u64,
}

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendAs {
    Form,
    Json,
    Query,
}

/// What a response means, read from its status and body, for vendors that
/// answer 200 with an error inside or throttle with a 400.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseRule {
    pub status: Vec<u16>,
    /// body path -> accepted values (any of them)
    pub body: Vec<(String, Vec<Json>)>,
    pub means: Means,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Means {
    Ok,
    AlreadyDone,
    Retry,
    Fail,
    /// The access token is no longer good: fetch a new one and try again.
    Reauth,
}

/// How `quench inventory` reads a list action's items.
#[derive(Debug, Clone, PartialEq)]
pub struct InventorySpec {
    /// oauth_grant | api_key | connected_app | service_account
    pub kind: String,
    /// Item paths: display name, id, and the user it belongs to.
    pub name: String,
    pub id: String,
    pub user: Option<String>,
    /// Another action listing what to call this one for (users, projects),
    /// with `with` rendered per item of it.
    pub for_each: Option<String>,
    pub with: Json,
}

/// How a list action walks its pages; the merged `items` are its output.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Paginate {
    pub items: String,
    /// Body path of the next cursor, sent back as query `cursor_param`.
    pub cursor: Option<String>,
    pub cursor_param: Option<String>,
    /// Body path of the full URL of the next page.
    pub next_url: Option<String>,
    /// RFC 8288 `Link: <...>; rel="next"`.
    pub link_header: bool,
    /// Offset paging: query `offset_param` advanced by the items received.
    pub offset_param: Option<String>,
    /// Page-number paging (SFMC `$page`, Braze `page`), from `first_page`.
    pub page_param: Option<String>,
    pub first_page: u64,
    /// Body path that says more pages exist (OpenAI, Anthropic `has_more`).
    pub has_more: Option<String>,
    /// Body path of the total number of items (Mailchimp `total_items`):
    /// offset paging stops once that many arrived.
    pub total: Option<String>,
    pub max_pages: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateLimit {
    pub per_second: Option<f64>,
    pub burst: Option<u32>,
    pub concurrency: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub description: Option<String>,
    pub method: reqwest::Method,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub body: Option<Json>,
    pub form: BTreeMap<String, String>,
    pub ok: Vec<u16>,
    pub already_done: Vec<u16>,
    pub output: Option<String>,
    pub simulate: Simulate,
    pub responses: Vec<ResponseRule>,
    pub paginate: Option<Paginate>,
    /// This action's own credentials instead of the manifest's.
    pub auth: Option<Auth>,
    /// An endpoint's own limits (Klaviyo api-keys 1/s and 15/min, Slack
    /// method tiers), applied on top of the manifest's. Several limits all
    /// hold: a vendor's burst window beside its steady one.
    pub rate_limit: Vec<RateLimit>,
    /// Where the endpoint is documented, for operations newer than the saved specs.
    pub docs: Option<String>,
    /// The vendor's documented response body for a success (the `docs:`
    /// page's JSON representation or example response), for endpoints no
    /// saved spec describes. Only the conformance test reads it: what the
    /// action reads and what the simulator answers are checked against it.
    pub example: Option<Json>,
    /// Marks a list action whose items are apps, grants or keys, for
    /// `quench inventory`.
    pub inventory: Option<InventorySpec>,
    /// Set when the vendor has no API for this: the exact UI path instead.
    pub manual: Option<String>,
    pub limits: Limits,
    /// The vendor leaves the list (`output` or `paginate.items`) out of its
    /// answer when it is empty (Google's JSON convention). Without this, a
    /// missing list is a failure, never a silent "nothing found".
    pub omit_empty: bool,
    /// Changes nothing although the method is not GET (Google Ads
    /// `googleAds:search`): a plan may send it.
    pub read: bool,
    /// The permissions the vendor documents for this call (OAuth scopes,
    /// key scopes, admin roles), to name what a 401/403 lacks and what a
    /// real incident's credentials need.
    pub scopes: Vec<String>,
}

impl Action {
    /// Whether sending it changes nothing on the platform: GETs, and
    /// actions marked `read: true`.
    pub fn reads(&self) -> bool {
        self.method == reqwest::Method::GET || self.read
    }
}

#[derive(Debug, Clone, Default)]
pub struct Simulate {
    pub status: u16,
    pub body: Option<Json>,
    pub headers: BTreeMap<String, String>,
    /// What the call reads from or does to the simulated tenant; `None`:
    /// the static `body` answers every call.
    pub effect: Option<Effect>,
}

/// A stateful simulated answer: a list of, a change to or the removal of
/// objects of one of the manifest's `tenant` collections.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub op: Op,
    pub collection: String,
    /// The objects' id field (`id`, `clientId`, `app.id`).
    pub key: String,
    /// Which object an update or delete targets, from the request.
    pub id: Option<SimValue>,
    /// Only objects whose field equals one of the values are listed, changed
    /// or removed: the vendor's filter (`status=sending`), the parent in the
    /// path (a user's tokens).
    pub filter: Vec<(String, Vec<SimValue>)>,
    /// Fields an update sets, from literals or the request.
    pub set: Vec<(String, SimValue)>,
    /// Objects per page of a list, served in the action's `paginate` style.
    pub page_size: Option<usize>,
    /// What an update answers with: `None` only the status; `Some("")` the
    /// object; `Some(path)` the object under that path (`data`).
    pub answer: Option<String>,
    /// The status when no object matches (the vendor's not-found).
    pub missing: u16,
    /// The body of that answer, where the vendor says more than a status
    /// (Slack: 200 with `ok: false, error: app_not_found`; Salesforce: 400
    /// `invalid_token`), so response rules read it as they would live.
    pub missing_body: Option<Json>,
    /// What else the vendor changes with it (Klaviyo: a flow's status is
    /// set on every action of the flow).
    pub cascade: Vec<Cascade>,
    /// A list shows only these fields of each object (a summary, where the
    /// vendor's get answers the whole object: HubSpot flows).
    pub fields: Vec<String>,
}

/// A change an update makes to other objects too, or what a delete
/// removes with its object (an OpenAI service account's API key).
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    pub collection: String,
    pub filter: Vec<(String, Vec<SimValue>)>,
    pub set: Vec<(String, SimValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    List,
    Update,
    Delete,
}

/// A value in a simulated effect: a literal, or a part of the request.
#[derive(Debug, Clone, PartialEq)]
pub enum SimValue {
    Literal(Json),
    /// The path segment that renders `{{with.NAME}}`.
    Path(String),
    /// A dotted path into the JSON body.
    Body(String),
    Form(String),
    Query(String),
    /// The first '...' literal inside a query parameter: the value an
    /// OData `$filter` (`displayName eq 'ChatGPT'`) compares with.
    Quoted(String),
}

const TOP_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "docs",
    "base_url",
    "auth",
    "rate_limit",
    "actions",
    "responses",
    "check",
    "timeout",
    "max_response_bytes",
    "tenant",
];
const ACTION_KEYS: &[&str] = &[
    "description",
    "docs",
    "example",
    "method",
    "path",
    "headers",
    "query",
    "body",
    "form",
    "ok",
    "already_done",
    "output",
    "simulate",
    "manual",
    "responses",
    "paginate",
    "inventory",
    "auth",
    "rate_limit",
    "timeout",
    "max_response_bytes",
    "omit_empty",
    "read",
    "scopes",
];
const AUTH_KINDS: &[&str] = &["bearer", "basic", "header", "oauth2"];
const OAUTH_KEYS: &[&str] = &["token_url", "method", "send_as", "params", "jwt"];
const JWT_KEYS: &[&str] = &["key", "claims", "lifetime"];
const RULE_KEYS: &[&str] = &["status", "body", "means"];
const PAGINATE_KEYS: &[&str] = &[
    "items",
    "cursor",
    "cursor_param",
    "next_url",
    "link_header",
    "offset_param",
    "page_param",
    "first_page",
    "has_more",
    "total",
    "max_pages",
];
const RATE_KEYS: &[&str] = &["per_second", "burst", "concurrency"];
/// Keys of a stateful simulated answer (see [`Effect`]).
const EFFECT_KEYS: &[&str] = &[
    "list",
    "update",
    "delete",
    "key",
    "id",
    "where",
    "set",
    "page_size",
    "answer",
    "missing",
    "cascade",
    "fields",
];
const CASCADE_KEYS: &[&str] = &["collection", "where", "set"];
/// `status`, `body`, `headers`, then [`EFFECT_KEYS`].
fn simulate_keys() -> Vec<&'static str> {
    let mut keys = vec!["status", "body", "headers"];
    keys.extend_from_slice(EFFECT_KEYS);
    keys
}
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Loads and validates one manifest file.
pub fn load(file: &str, src: &str) -> Result<Manifest, Diagnostics> {
    let doc = YamlDoc::parse(file, src).map_err(|d| Diagnostics(vec![d]))?;
    let mut c = Checker::new(&doc);
    let m = read(&mut c, file);
    match m {
        Some(m) if c.diags.is_empty() => Ok(m),
        _ => Err(Diagnostics(c.diags).sorted()),
    }
}

fn read(c: &mut Checker, file: &str) -> Option<Manifest> {
    let root = YPath::root();
    let doc_value = c.doc.value.clone();
    let top = c
        .map(
            &root,
            &doc_value,
            "the manifest",
            TOP_KEYS,
            &["name", "base_url", "actions"],
        )?
        .clone();
    let mut secrets = BTreeSet::new();

    let name = top
        .get("name")
        .and_then(|v| c.string(&root.key("name"), v, "`name`"))
        .unwrap_or_default();
    if !name.is_empty() && !is_id(&name) {
        c.error(
            &root.key("name"),
            format!("integration name \"{name}\" must use only a-z, 0-9 and -"),
        );
    }
    let stem = std::path::Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if !name.is_empty() && file.ends_with(".yaml") && stem != name {
        c.error_hint(
            &root.key("name"),
            format!("integration name \"{name}\" does not match its file name \"{stem}.yaml\""),
            format!("rename the file to {name}.yaml"),
        );
    }
    let title = top
        .get("title")
        .and_then(|v| c.string(&root.key("title"), v, "`title`"))
        .unwrap_or_else(|| name.clone());
    let base_url = top
        .get("base_url")
        .and_then(|v| c.string(&root.key("base_url"), v, "`base_url`"))
        .unwrap_or_default();
    template_check(c, &root.key("base_url"), &base_url, &[], &mut secrets);

    let auth = match top.get("auth") {
        None => Auth::None,
        Some(v) => read_auth(c, &root.key("auth"), v, &[], &mut secrets).unwrap_or(Auth::None),
    };
    let rate_limit = match top.get("rate_limit") {
        None => RateLimit::default(),
        Some(v) => read_rate(c, &root.key("rate_limit"), v).unwrap_or_default(),
    };

    let mut actions = BTreeMap::new();
    if let Some(v) = top.get("actions") {
        let p = root.key("actions");
        match v {
            Value::Mapping(m) => {
                if m.is_empty() {
                    c.error(&p, "`actions` is empty");
                }
                for (k, v) in m {
                    let Value::String(an) = k else {
                        c.error(
                            &p,
                            format!("action names must be strings, found {}", show(k)),
                        );
                        continue;
                    };
                    if let Some(a) = read_action(c, &p.key(an), an, v, &mut secrets) {
                        actions.insert(an.clone(), a);
                    }
                }
            }
            other => c.error(
                &p,
                format!("`actions` must be a map, found {}", kind_of(other)),
            ),
        }
    }
    let responses = top
        .get("responses")
        .map(|v| read_rules(c, &root.key("responses"), v))
        .unwrap_or_default();
    let check = top
        .get("check")
        .and_then(|v| c.string(&root.key("check"), v, "`check`"));
    if let Some(ch) = &check {
        match actions.get(ch) {
            None if !actions.is_empty() => {
                let hint = did_you_mean(ch, actions.keys().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
                    .unwrap_or_else(|| "name one of this manifest's actions".into());
                c.error_hint(
                    &root.key("check"),
                    format!("`check` names unknown action \"{ch}\""),
                    hint,
                );
            }
            Some(a) if a.method != reqwest::Method::GET => {
                c.error_hint(
                    &root.key("check"),
                    format!(
                        "`check` action \"{ch}\" is a {}, not a harmless GET",
                        a.method
                    ),
                    "pick a read-only list or get action",
                );
            }
            _ => {}
        }
    }
    let tenant = read_tenant(c, &root, top.get("tenant"), &actions);
    for (an, a) in &actions {
        if let Some(fe) = a.inventory.as_ref().and_then(|i| i.for_each.as_ref()) {
            if !actions.contains_key(fe) {
                c.error(
                    &root.key("actions").key(an).key("inventory").key("for_each"),
                    format!("inventory `for_each` names unknown action \"{fe}\""),
                );
            }
        }
    }
    Some(Manifest {
        name,
        title,
        base_url,
        auth,
        rate_limit,
        actions,
        responses,
        secrets,
        check,
        limits: read_limits(c, &root, &top),
        tenant,
    })
}

/// `timeout` and `max_response_bytes` of a manifest or an action.
fn read_limits(c: &mut Checker, p: &YPath, m: &serde_yaml::Mapping) -> Limits {
    let timeout = m
        .get("timeout")
        .and_then(|v| c.duration(&p.key("timeout"), v, "`timeout`"));
    let max_response_bytes = m.get("max_response_bytes").and_then(|v| {
        let n = c.uint(&p.key("max_response_bytes"), v, "`max_response_bytes`")?;
        if n == 0 {
            c.error(
                &p.key("max_response_bytes"),
                "`max_response_bytes` must be above 0",
            );
            return None;
        }
        Some(n)
    });
    Limits {
        timeout,
        max_response_bytes,
    }
}

/// `roots` are what the auth templates may read: only secrets for the
/// manifest's auth; `with` too for an action's own (Slack's auth.revoke
/// authenticates with the token it revokes).
fn read_auth(
    c: &mut Checker,
    p: &YPath,
    v: &Value,
    roots: &[&str],
    secrets: &mut BTreeSet<String>,
) -> Option<Auth> {
    let m = c.map(p, v, "`auth`", AUTH_KINDS, &[])?.clone();
    if m.len() != 1 {
        c.error_hint(
            p,
            "`auth` must have exactly one kind",
            "use one of: bearer, basic, header",
        );
        return None;
    }
    let (k, v) = m.iter().next()?;
    let kind = k.as_str().unwrap_or_default();
    let kp = p.key(kind);
    let auth = match kind {
        "bearer" => Auth::Bearer(c.string(&kp, v, "`auth.bearer`")?),
        "basic" => {
            let b = c
                .map(
                    &kp,
                    v,
                    "`auth.basic`",
                    &["username", "password"],
                    &["username", "password"],
                )?
                .clone();
            Auth::Basic {
                username: b
                    .get("username")
                    .and_then(|v| c.string(&kp.key("username"), v, "`username`"))?,
                password: b
                    .get("password")
                    .and_then(|v| c.string(&kp.key("password"), v, "`password`"))?,
            }
        }
        "oauth2" => Auth::OAuth2(read_oauth2(c, &kp, v)?),
        "header" => {
            let h = c
                .map(
                    &kp,
                    v,
                    "`auth.header`",
                    &["name", "value"],
                    &["name", "value"],
                )?
                .clone();
            Auth::Header {
                name: h
                    .get("name")
                    .and_then(|v| c.string(&kp.key("name"), v, "`name`"))?,
                value: h
                    .get("value")
                    .and_then(|v| c.string(&kp.key("value"), v, "`value`"))?,
            }
        }
        _ => return None,
    };
    match &auth {
        Auth::Bearer(t) => template_check(c, &kp, t, roots, secrets),
        Auth::Basic { username, password } => {
            template_check(c, &kp.key("username"), username, roots, secrets);
            template_check(c, &kp.key("password"), password, roots, secrets);
        }
        Auth::Header { value, .. } => template_check(c, &kp.key("value"), value, roots, secrets),
        Auth::OAuth2(o) => {
            template_check(c, &kp.key("token_url"), &o.token_url, &[], secrets);
            for (k, v) in &o.params {
                template_check(c, &kp.key("params").key(k), v, &[], secrets);
            }
            if let Some(j) = &o.jwt {
                template_check(c, &kp.key("jwt").key("key"), &j.key, &[], secrets);
                for (k, v) in &j.claims {
                    template_check(c, &kp.key("jwt").key("claims").key(k), v, &[], secrets);
                }
            }
        }
        Auth::None => {}
    }
    Some(auth)
}

fn read_rate(c: &mut Checker, p: &YPath, v: &Value) -> Option<RateLimit> {
    let m = c.map(p, v, "`rate_limit`", RATE_KEYS, &[])?.clone();
    let mut r = RateLimit::default();
    if let Some(v) = m.get("per_second") {
        match v.as_f64() {
            Some(x) if x > 0.0 => r.per_second = Some(x),
            _ => c.error(
                &p.key("per_second"),
                format!("`per_second` must be a positive number, found {}", show(v)),
            ),
        }
    }
    if let Some(v) = m.get("burst") {
        r.burst = c
            .uint(&p.key("burst"), v, "`burst`")
            .map(|n| n.max(1) as u32);
    }
    if let Some(v) = m.get("concurrency") {
        r.concurrency = c
            .uint(&p.key("concurrency"), v, "`concurrency`")
            .map(|n| n.max(1) as usize);
    }
    Some(r)
}

fn string_map(c: &mut Checker, p: &YPath, v: &Value, what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Value::Mapping(m) = v else {
        c.error(p, format!("{what} must be a map, found {}", kind_of(v)));
        return out;
    };
    for (k, v) in m {
        let key = k.as_str().map(str::to_string).unwrap_or_else(|| show(k));
        if let Some(s) = c.string(&p.key(&key), v, what) {
            out.insert(key, s);
        }
    }
    out
}

fn status_list(c: &mut Checker, p: &YPath, v: &Value, what: &str) -> Vec<u16> {
    let Value::Sequence(items) = v else {
        c.error(
            p,
            format!(
                "{what} must be a list of HTTP statuses, found {}",
                kind_of(v)
            ),
        );
        return vec![];
    };
    let mut out = vec![];
    for (i, it) in items.iter().enumerate() {
        match it.as_u64() {
            Some(n) if (100..600).contains(&n) => out.push(n as u16),
            _ => c.error(
                &p.index(i),
                format!("{what} entry {} is not an HTTP status (100-599)", show(it)),
            ),
        }
    }
    out
}

const ACTION_ROOTS: &[&str] = &["with", "secrets", "run"];

fn read_action(
    c: &mut Checker,
    p: &YPath,
    name: &str,
    v: &Value,
    secrets: &mut BTreeSet<String>,
) -> Option<Action> {
    let m = c
        .map(p, v, &format!("action `{name}`"), ACTION_KEYS, &[])?
        .clone();
    let manual = m
        .get("manual")
        .and_then(|v| c.string(&p.key("manual"), v, "`manual`"));
    if manual.is_none() {
        for req in ["method", "path"] {
            if !m.contains_key(req) {
                c.error_hint(
                    p,
                    format!("action `{name}` is missing the required key `{req}`"),
                    "an action is either an HTTP call (method + path) or `manual: \"UI path\"`",
                );
            }
        }
    }
    let method = m
        .get("method")
        .and_then(|v| {
            let s = c.string(&p.key("method"), v, "`method`")?;
            let up = s.to_ascii_uppercase();
            if METHODS.contains(&up.as_str()) {
                up.parse().ok()
            } else {
                c.error_hint(
                    &p.key("method"),
                    format!("unknown HTTP method \"{s}\""),
                    format!("use one of: {}", METHODS.join(", ")),
                );
                None
            }
        })
        .unwrap_or(reqwest::Method::GET);
    let path = m
        .get("path")
        .and_then(|v| c.string(&p.key("path"), v, "`path`"))
        .unwrap_or_default();
    if !path.is_empty() && !path.starts_with('/') {
        c.error_hint(
            &p.key("path"),
            format!("path \"{path}\" must start with /"),
            "it is appended to base_url",
        );
    }
    template_check(c, &p.key("path"), &path, ACTION_ROOTS, secrets);
    let headers = m
        .get("headers")
        .map(|v| string_map(c, &p.key("headers"), v, "`headers`"))
        .unwrap_or_default();
    for (k, v) in &headers {
        template_check(c, &p.key("headers").key(k), v, ACTION_ROOTS, secrets);
    }
    let query = m
        .get("query")
        .map(|v| string_map(c, &p.key("query"), v, "`query`"))
        .unwrap_or_default();
    for (k, v) in &query {
        template_check(c, &p.key("query").key(k), v, ACTION_ROOTS, secrets);
    }
    let form = m
        .get("form")
        .map(|v| string_map(c, &p.key("form"), v, "`form`"))
        .unwrap_or_default();
    for (k, v) in &form {
        template_check(c, &p.key("form").key(k), v, ACTION_ROOTS, secrets);
    }
    let body = m.get("body").map(yaml_to_json);
    if let Some(b) = &body {
        let mut leaves = Vec::new();
        collect(b, &p.key("body"), &mut leaves);
        for (lp, s) in leaves {
            template_check(c, &lp, &s, ACTION_ROOTS, secrets);
        }
        if !form.is_empty() {
            c.error(
                &p.key("form"),
                "an action sends either `body` (JSON) or `form`, not both",
            );
        }
    }
    let ok = m
        .get("ok")
        .map(|v| status_list(c, &p.key("ok"), v, "`ok`"))
        .unwrap_or_else(|| vec![200, 201, 202, 204]);
    let already_done = m
        .get("already_done")
        .map(|v| status_list(c, &p.key("already_done"), v, "`already_done`"))
        .unwrap_or_default();
    let output = m
        .get("output")
        .and_then(|v| c.string(&p.key("output"), v, "`output`"));
    let omit_empty = m
        .get("omit_empty")
        .and_then(|v| c.boolean(&p.key("omit_empty"), v, "`omit_empty`"))
        .unwrap_or(false);
    if omit_empty && output.is_none() && !m.contains_key("paginate") {
        c.error_hint(
            &p.key("omit_empty"),
            "`omit_empty` needs a list to apply to",
            "name it with `output:` or `paginate.items`",
        );
    }
    let read = m
        .get("read")
        .and_then(|v| c.boolean(&p.key("read"), v, "`read`"))
        .unwrap_or(false);
    if read && method != reqwest::Method::POST {
        let (msg, hint) = if method == reqwest::Method::GET {
            (
                "`read: true` on a GET, which is a read already".to_string(),
                "remove `read: true`",
            )
        } else {
            (
                format!("`read: true` on a {method}, which changes state"),
                "only a POST the vendor documents as a read (a search, a query) may say `read: true`; a plan never sends this action",
            )
        };
        c.error_hint(&p.key("read"), msg, hint);
    }
    let read = read && method == reqwest::Method::POST;
    let scopes = m
        .get("scopes")
        .and_then(|v| c.string_list(&p.key("scopes"), v, "`scopes`"))
        .unwrap_or_default();
    let example = m.get("example").map(yaml_to_json);
    if example.is_some() && !m.contains_key("docs") {
        c.error_hint(
            &p.key("example"),
            format!("action `{name}` has an `example` but no `docs`"),
            "an example is the vendor's documented response: name the page it comes from with `docs: URL`",
        );
    }
    let simulate = match m.get("simulate") {
        None => Simulate {
            status: ok.first().copied().unwrap_or(200),
            ..Default::default()
        },
        Some(v) => read_simulate(
            c,
            &p.key("simulate"),
            v,
            &ok,
            &already_done,
            &Sent {
                path: &path,
                query: &query,
                form: &form,
                body: body.as_ref(),
            },
        ),
    };
    Some(Action {
        name: name.to_string(),
        description: m
            .get("description")
            .and_then(|v| c.string(&p.key("description"), v, "`description`")),
        method,
        path,
        headers,
        query,
        body,
        form,
        ok,
        already_done,
        output,
        simulate,
        responses: m
            .get("responses")
            .map(|v| read_rules(c, &p.key("responses"), v))
            .unwrap_or_default(),
        paginate: m
            .get("paginate")
            .and_then(|v| read_paginate(c, &p.key("paginate"), v)),
        docs: m
            .get("docs")
            .and_then(|v| c.string(&p.key("docs"), v, "`docs`")),
        example,
        rate_limit: match m.get("rate_limit") {
            None => vec![],
            Some(Value::Sequence(list)) => list
                .iter()
                .enumerate()
                .filter_map(|(i, v)| read_rate(c, &p.key("rate_limit").index(i), v))
                .collect(),
            Some(v) => read_rate(c, &p.key("rate_limit"), v).into_iter().collect(),
        },
        auth: m.get("auth").and_then(|v| {
            let auth = read_auth(c, &p.key("auth"), v, &["with", "secrets"], secrets)?;
            if matches!(auth, Auth::OAuth2(_)) {
                c.error_hint(
                    &p.key("auth"),
                    "an action cannot have its own oauth2",
                    "put oauth2 on the manifest",
                );
                return None;
            }
            Some(auth)
        }),
        inventory: m
            .get("inventory")
            .and_then(|v| read_inventory(c, &p.key("inventory"), v, secrets)),
        manual,
        limits: read_limits(c, p, &m),
        omit_empty,
        read,
        scopes,
    })
}

const INVENTORY_KEYS: &[&str] = &["kind", "name", "id", "user", "for_each", "with"];
const INVENTORY_KINDS: &[&str] = &["oauth_grant", "api_key", "connected_app", "service_account"];

fn read_inventory(
    c: &mut Checker,
    p: &YPath,
    v: &Value,
    secrets: &mut BTreeSet<String>,
) -> Option<InventorySpec> {
    let m = c
        .map(p, v, "`inventory`", INVENTORY_KEYS, &["kind", "name", "id"])?
        .clone();
    let kind = m
        .get("kind")
        .and_then(|v| c.string(&p.key("kind"), v, "`inventory.kind`"))?;
    if !INVENTORY_KINDS.contains(&kind.as_str()) {
        c.error_hint(
            &p.key("kind"),
            format!("unknown inventory kind \"{kind}\""),
            format!("one of: {}", INVENTORY_KINDS.join(", ")),
        );
    }
    let with = m.get("with").map(yaml_to_json).unwrap_or(Json::Null);
    let mut leaves = Vec::new();
    collect(&with, &p.key("with"), &mut leaves);
    for (lp, s) in leaves {
        template_check(c, &lp, &s, &["item", "secrets"], secrets);
    }
    Some(InventorySpec {
        kind,
        name: m
            .get("name")
            .and_then(|v| c.string(&p.key("name"), v, "`inventory.name`"))?,
        id: m
            .get("id")
            .and_then(|v| c.string(&p.key("id"), v, "`inventory.id`"))?,
        user: m
            .get("user")
            .and_then(|v| c.string(&p.key("user"), v, "`inventory.user`")),
        for_each: m
            .get("for_each")
            .and_then(|v| c.string(&p.key("for_each"), v, "`inventory.for_each`")),
        with,
    })
}

fn read_oauth2(c: &mut Checker, p: &YPath, v: &Value) -> Option<OAuth2> {
    let m = c
        .map(p, v, "`auth.oauth2`", OAUTH_KEYS, &["token_url", "params"])?
        .clone();
    let token_url = m
        .get("token_url")
        .and_then(|v| c.string(&p.key("token_url"), v, "`token_url`"))?;
    let method = match m.get("method") {
        None => reqwest::Method::POST,
        Some(v) => match c
            .string(&p.key("method"), v, "`method`")?
            .to_ascii_uppercase()
            .as_str()
        {
            "POST" => reqwest::Method::POST,
            "GET" => reqwest::Method::GET,
            other => {
                c.error_hint(
                    &p.key("method"),
                    format!("token requests use GET or POST, not \"{other}\""),
                    "most vendors use POST",
                );
                return None;
            }
        },
    };
    let send_as = match m.get("send_as") {
        None => SendAs::Form,
        Some(v) => match c.string(&p.key("send_as"), v, "`send_as`")?.as_str() {
            "form" => SendAs::Form,
            "json" => SendAs::Json,
            "query" => SendAs::Query,
            other => {
                c.error_hint(
                    &p.key("send_as"),
                    format!("unknown send_as \"{other}\""),
                    "use form (RFC 6749), json or query",
                );
                return None;
            }
        },
    };
    let params = m
        .get("params")
        .map(|v| string_map(c, &p.key("params"), v, "`params`"))
        .unwrap_or_default();
    if !params.contains_key("grant_type") {
        c.error_hint(
            &p.key("params"),
            "`params` has no grant_type",
            format!("client_credentials, refresh_token or {JWT_BEARER} (with `jwt:`)"),
        );
    }
    let jwt = match m.get("jwt") {
        None => None,
        Some(v) => {
            let jp = p.key("jwt");
            let j = c
                .map(&jp, v, "`auth.oauth2.jwt`", JWT_KEYS, &["key", "claims"])?
                .clone();
            let key = j
                .get("key")
                .and_then(|v| c.string(&jp.key("key"), v, "`jwt.key`"))?;
            let claims = j
                .get("claims")
                .map(|v| string_map(c, &jp.key("claims"), v, "`jwt.claims`"))
                .unwrap_or_default();
            let lifetime_secs = j
                .get("lifetime")
                .and_then(|v| c.duration(&jp.key("lifetime"), v, "`jwt.lifetime`"))
                .map(|d| d.as_secs().clamp(60, 3600))
                .unwrap_or(3600);
            if params.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
                c.error_hint(
                    &p.key("params"),
                    "`jwt` needs the JWT-bearer grant",
                    format!("set params.grant_type: {JWT_BEARER}"),
                );
            }
            Some(JwtSpec {
                key,
                claims,
                lifetime_secs,
            })
        }
    };
    Some(OAuth2 {
        token_url,
        method,
        send_as,
        params,
        jwt,
    })
}

fn read_rules(c: &mut Checker, p: &YPath, v: &Value) -> Vec<ResponseRule> {
    let Value::Sequence(items) = v else {
        c.error(
            p,
            format!("`responses` must be a list of rules, found {}", kind_of(v)),
        );
        return vec![];
    };
    let mut out = vec![];
    for (i, item) in items.iter().enumerate() {
        let rp = p.index(i);
        let Some(m) = c
            .map(&rp, item, "a response rule", RULE_KEYS, &["means"])
            .cloned()
        else {
            continue;
        };
        let status = match m.get("status") {
            None => vec![],
            Some(list @ Value::Sequence(_)) => status_list(c, &rp.key("status"), list, "`status`"),
            Some(one) => status_list(
                c,
                &rp.key("status"),
                &Value::Sequence(vec![one.clone()]),
                "`status`",
            ),
        };
        let mut body = vec![];
        if let Some(b) = m.get("body") {
            match b {
                Value::Mapping(bm) => {
                    for (k, v) in bm {
                        let key = k.as_str().map(str::to_string).unwrap_or_else(|| show(k));
                        let vals = match yaml_to_json(v) {
                            Json::Array(a) => a,
                            one => vec![one],
                        };
                        body.push((key, vals));
                    }
                }
                other => c.error(
                    &rp.key("body"),
                    format!(
                        "rule `body` must map body paths to values, found {}",
                        kind_of(other)
                    ),
                ),
            }
        }
        if status.is_empty() && body.is_empty() {
            c.error_hint(
                &rp,
                "this rule matches every response",
                "give it a `status` or a `body` to match",
            );
        }
        let means = m
            .get("means")
            .and_then(|v| c.string(&rp.key("means"), v, "`means`"))
            .and_then(|s| {
                Some(match s.as_str() {
                    "ok" => Means::Ok,
                    "already_done" => Means::AlreadyDone,
                    "retry" => Means::Retry,
                    "fail" => Means::Fail,
                    "reauth" => Means::Reauth,
                    other => {
                        let all = ["ok", "already_done", "retry", "fail", "reauth"];
                        let hint = did_you_mean(other, all)
                            .map(|m| format!("did you mean `{m}`?"))
                            .unwrap_or_else(|| format!("one of: {}", all.join(", ")));
                        c.error_hint(
                            &rp.key("means"),
                            format!("unknown meaning \"{other}\""),
                            hint,
                        );
                        return None;
                    }
                })
            });
        if let Some(means) = means {
            out.push(ResponseRule {
                status,
                body,
                means,
            });
        }
    }
    out
}

fn read_paginate(c: &mut Checker, p: &YPath, v: &Value) -> Option<Paginate> {
    let m = c
        .map(p, v, "`paginate`", PAGINATE_KEYS, &["items"])?
        .clone();
    let s = |c: &mut Checker, k: &str| {
        m.get(k)
            .and_then(|v| c.string(&p.key(k), v, &format!("`paginate.{k}`")))
    };
    let pg = Paginate {
        items: s(c, "items")?,
        cursor: s(c, "cursor"),
        cursor_param: s(c, "cursor_param"),
        next_url: s(c, "next_url"),
        link_header: m
            .get("link_header")
            .and_then(|v| c.boolean(&p.key("link_header"), v, "`paginate.link_header`"))
            .unwrap_or(false),
        offset_param: s(c, "offset_param"),
        page_param: s(c, "page_param"),
        first_page: m
            .get("first_page")
            .and_then(|v| c.uint(&p.key("first_page"), v, "`paginate.first_page`"))
            .unwrap_or(1),
        has_more: s(c, "has_more"),
        total: s(c, "total"),
        max_pages: m
            .get("max_pages")
            .and_then(|v| c.uint(&p.key("max_pages"), v, "`paginate.max_pages`"))
            .map(|n| n.clamp(1, 100_000) as u32)
            .unwrap_or(1000),
    };
    let styles = [
        pg.cursor.is_some(),
        pg.next_url.is_some(),
        pg.link_header,
        pg.offset_param.is_some(),
        pg.page_param.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if styles != 1 {
        c.error_hint(
            p,
            "`paginate` needs exactly one of cursor, next_url, link_header, offset_param, page_param",
            "pick how the vendor points at the next page",
        );
    }
    if pg.cursor.is_some() != pg.cursor_param.is_some() {
        c.error_hint(
            p,
            "`paginate.cursor` and `paginate.cursor_param` go together",
            "cursor: where the body holds it; cursor_param: the query parameter that sends it back",
        );
    }
    Some(pg)
}

/// What an action sends, for checking what its `simulate` reads of the
/// request: a name the request never carries resolves to nothing, and a
/// delete of "nothing" answers not-found, which counts as already done.
struct Sent<'a> {
    path: &'a str,
    query: &'a BTreeMap<String, String>,
    form: &'a BTreeMap<String, String>,
    body: Option<&'a Json>,
}

impl Sent<'_> {
    /// Why `value` names nothing the request carries, if it does not.
    fn lacks(&self, value: &SimValue) -> Option<String> {
        let keys = |m: &BTreeMap<String, String>| {
            let k: Vec<&str> = m.keys().map(String::as_str).collect();
            if k.is_empty() {
                "none".to_string()
            } else {
                k.join(", ")
            }
        };
        match value {
            SimValue::Literal(_) => None,
            SimValue::Path(n) => (!self.path.contains(&format!("with.{n}}}}}")))
                .then(|| format!("the path \"{}\" has no {{{{with.{n}}}}}", self.path)),
            SimValue::Query(n) | SimValue::Quoted(n) => (!self.query.contains_key(n)).then(|| {
                format!(
                    "the action sends no query parameter \"{n}\" (it sends: {})",
                    keys(self.query)
                )
            }),
            SimValue::Form(n) => (!self.form.contains_key(n)).then(|| {
                format!(
                    "the action sends no form field \"{n}\" (it sends: {})",
                    keys(self.form)
                )
            }),
            SimValue::Body(n) => match self.body {
                Some(b) if crate::template::lookup(b, n).is_some() => None,
                Some(_) => Some(format!("the action's body has no \"{n}\"")),
                None => Some("the action sends no body".into()),
            },
        }
    }
}

fn read_simulate(
    c: &mut Checker,
    p: &YPath,
    v: &Value,
    ok: &[u16],
    done: &[u16],
    sent: &Sent<'_>,
) -> Simulate {
    let Some(m) = c.map(p, v, "`simulate`", &simulate_keys(), &[]).cloned() else {
        return Simulate::default();
    };
    let status = m
        .get("status")
        .and_then(|v| c.uint(&p.key("status"), v, "`simulate.status`"))
        .map(|n| n as u16)
        .unwrap_or_else(|| ok.first().copied().unwrap_or(200));
    if !ok.contains(&status) && !done.contains(&status) {
        c.error_hint(
            &p.key("status"),
            format!("simulated status {status} is neither `ok` nor `already_done`, so every drill would fail"),
            "simulate a success; test failures against a mock server instead",
        );
    }
    Simulate {
        status,
        body: m.get("body").map(yaml_to_json),
        headers: m
            .get("headers")
            .map(|v| string_map(c, &p.key("headers"), v, "`simulate.headers`"))
            .unwrap_or_default(),
        effect: read_effect(c, p, &m, sent),
    }
}

fn read_effect(
    c: &mut Checker,
    p: &YPath,
    m: &serde_yaml::Mapping,
    sent: &Sent<'_>,
) -> Option<Effect> {
    let ops: Vec<(Op, &str)> = [
        (Op::List, "list"),
        (Op::Update, "update"),
        (Op::Delete, "delete"),
    ]
    .into_iter()
    .filter(|(_, k)| m.contains_key(*k))
    .collect();
    let (op, word) = match ops.as_slice() {
        [] => {
            for k in &EFFECT_KEYS[3..] {
                if m.contains_key(*k) {
                    c.error_hint(
                        &p.key(k),
                        format!("`simulate.{k}` needs `list`, `update` or `delete`"),
                        "name the tenant collection the call works on",
                    );
                }
            }
            return None;
        }
        [one] => *one,
        _ => {
            c.error(
                p,
                "`simulate` has more than one of `list`, `update`, `delete`",
            );
            return None;
        }
    };
    let collection = m
        .get(word)
        .and_then(|v| c.string(&p.key(word), v, &format!("`simulate.{word}`")))?;
    let value = |c: &mut Checker, at: &YPath, v: &Value| -> SimValue {
        match v {
            Value::String(s) => match s.split_once('.') {
                Some(("request", rest)) => match rest.split_once('.') {
                    Some(("path", n)) => SimValue::Path(n.to_string()),
                    Some(("body", n)) => SimValue::Body(n.to_string()),
                    Some(("form", n)) => SimValue::Form(n.to_string()),
                    Some(("query", n)) => SimValue::Query(n.to_string()),
                    Some(("quoted", n)) => SimValue::Quoted(n.to_string()),
                    _ => {
                        c.error_hint(
                            at,
                            format!("unknown request part in \"{s}\""),
                            "use request.path.NAME, request.body.PATH, request.form.NAME, request.query.NAME or request.quoted.NAME",
                        );
                        SimValue::Literal(Json::Null)
                    }
                },
                _ => SimValue::Literal(Json::String(s.clone())),
            },
            other => SimValue::Literal(yaml_to_json(other)),
        }
    };
    let value = |c: &mut Checker, at: &YPath, v: &Value| -> SimValue {
        let read = value(c, at, v);
        if let Some(why) = sent.lacks(&read) {
            c.error_hint(
                at,
                format!("`simulate` reads {}, but {why}", v.as_str().unwrap_or("")),
                "name a part of the request this action sends",
            );
        }
        read
    };
    let id = m.get("id").map(|v| value(c, &p.key("id"), v));
    if op != Op::List && id.is_none() {
        c.error_hint(
            p,
            format!("`simulate.{word}` needs `id`: which object the request targets"),
            "for example id: request.path.flow_id",
        );
    }
    let filter = read_filter(c, p, m, &value);
    let set = read_set(c, p, m, &value);
    let mut cascade = vec![];
    if let Some(v) = m.get("cascade") {
        let cp = p.key("cascade");
        match v {
            Value::Sequence(list) => {
                for (i, item) in list.iter().enumerate() {
                    let ip = cp.index(i);
                    let Some(cm) = c
                        .map(
                            &ip,
                            item,
                            "a `simulate.cascade` entry",
                            CASCADE_KEYS,
                            if op == Op::Delete {
                                &["collection"][..]
                            } else {
                                &["collection", "set"][..]
                            },
                        )
                        .cloned()
                    else {
                        continue;
                    };
                    let Some(collection) = cm
                        .get("collection")
                        .and_then(|v| c.string(&ip.key("collection"), v, "`collection`"))
                    else {
                        continue;
                    };
                    // What a delete takes with it is removed, not changed.
                    if op == Op::Delete && cm.contains_key("set") {
                        c.error(
                            &ip.key("set"),
                            "a delete's cascade removes what matches `where`; `set` does not apply",
                        );
                    }
                    cascade.push(Cascade {
                        collection,
                        filter: read_filter(c, &ip, &cm, &value),
                        set: read_set(c, &ip, &cm, &value),
                    });
                }
            }
            other => c.error(
                &cp,
                format!(
                    "`simulate.cascade` must be a list, found {}",
                    kind_of(other)
                ),
            ),
        }
    }
    Some(Effect {
        op,
        collection,
        key: m
            .get("key")
            .and_then(|v| c.string(&p.key("key"), v, "`simulate.key`"))
            .unwrap_or_else(|| "id".into()),
        id,
        filter,
        set,
        page_size: m
            .get("page_size")
            .and_then(|v| c.uint(&p.key("page_size"), v, "`simulate.page_size`"))
            .map(|n| n.max(1) as usize),
        answer: m
            .get("answer")
            .and_then(|v| c.string(&p.key("answer"), v, "`simulate.answer`"))
            .map(|a| if a == "object" { String::new() } else { a }),
        missing: match m.get("missing") {
            Some(Value::Mapping(mm)) => mm
                .get("status")
                .and_then(|v| {
                    c.uint(
                        &p.key("missing").key("status"),
                        v,
                        "`simulate.missing.status`",
                    )
                })
                .map(|n| n as u16)
                .unwrap_or(404),
            Some(v) => c
                .uint(&p.key("missing"), v, "`simulate.missing`")
                .map(|n| n as u16)
                .unwrap_or(404),
            None => 404,
        },
        missing_body: match m.get("missing") {
            Some(Value::Mapping(mm)) => mm.get("body").map(yaml_to_json),
            _ => None,
        },
        cascade,
        fields: m
            .get("fields")
            .and_then(|v| c.string_list(&p.key("fields"), v, "`simulate.fields`"))
            .unwrap_or_default(),
    })
}

type ReadValue<'a> = dyn Fn(&mut Checker, &YPath, &Value) -> SimValue + 'a;

/// `where: {FIELD: VALUE | [VALUES]}` of a simulated effect.
fn read_filter(
    c: &mut Checker,
    p: &YPath,
    m: &serde_yaml::Mapping,
    value: &ReadValue<'_>,
) -> Vec<(String, Vec<SimValue>)> {
    let mut filter = vec![];
    if let Some(wm) = m
        .get("where")
        .and_then(|w| free_map(c, &p.key("where"), w, "`where`"))
    {
        for (k, v) in &wm {
            let Value::String(field) = k else { continue };
            let at = p.key("where").key(field);
            let vals = match v {
                Value::Sequence(seq) => seq.iter().map(|x| value(c, &at, x)).collect(),
                one => vec![value(c, &at, one)],
            };
            filter.push((field.clone(), vals));
        }
    }
    filter
}

/// `set: {FIELD: VALUE}` of a simulated effect.
fn read_set(
    c: &mut Checker,
    p: &YPath,
    m: &serde_yaml::Mapping,
    value: &ReadValue<'_>,
) -> Vec<(String, SimValue)> {
    let mut set = vec![];
    if let Some(sm) = m
        .get("set")
        .and_then(|w| free_map(c, &p.key("set"), w, "`set`"))
    {
        for (k, v) in &sm {
            let Value::String(field) = k else { continue };
            set.push((field.clone(), value(c, &p.key("set").key(field), v)));
        }
    }
    set
}

/// A map whose keys are the author's (field names, collections).
fn free_map(c: &mut Checker, p: &YPath, v: &Value, what: &str) -> Option<serde_yaml::Mapping> {
    match v {
        Value::Mapping(m) => Some(m.clone()),
        other => {
            c.error(p, format!("{what} must be a map, found {}", kind_of(other)));
            None
        }
    }
}

/// The `tenant` block: collections of objects; every stateful `simulate`
/// must name one of them.
fn read_tenant(
    c: &mut Checker,
    root: &YPath,
    v: Option<&Value>,
    actions: &BTreeMap<String, Action>,
) -> BTreeMap<String, Vec<Json>> {
    let mut tenant = BTreeMap::new();
    if let Some(v) = v {
        let p = root.key("tenant");
        if let Some(m) = free_map(c, &p, v, "`tenant`") {
            for (k, v) in &m {
                let Value::String(name) = k else { continue };
                match yaml_to_json(v) {
                    Json::Array(items) if items.iter().all(Json::is_object) => {
                        tenant.insert(name.clone(), items);
                    }
                    _ => c.error(
                        &p.key(name),
                        format!("tenant collection `{name}` must be a list of objects"),
                    ),
                }
            }
        }
    }
    for (an, a) in actions {
        let Some(e) = &a.simulate.effect else {
            continue;
        };
        for name in std::iter::once(&e.collection).chain(e.cascade.iter().map(|c| &c.collection)) {
            if !tenant.contains_key(name) {
                let hint = did_you_mean(name, tenant.keys().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
                    .unwrap_or_else(|| "add it under the manifest's `tenant:`".into());
                c.error_hint(
                    &root.key("actions").key(an).key("simulate"),
                    format!(
                        "simulate names tenant collection `{name}`, which the manifest does not have"
                    ),
                    hint,
                );
            }
        }
    }
    tenant
}

fn collect(v: &Json, path: &YPath, out: &mut Vec<(YPath, String)>) {
    match v {
        Json::String(s) => out.push((path.clone(), s.clone())),
        Json::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| collect(x, &path.index(i), out)),
        Json::Object(m) => m.iter().for_each(|(k, x)| collect(x, &path.key(k), out)),
        _ => {}
    }
}

/// Checks a manifest template: syntax, roots (`with`, `secrets`, `run`), and
/// records the secrets it reads. `base_url` and `auth` may read only secrets.
fn template_check(
    c: &mut Checker,
    at: &YPath,
    src: &str,
    roots: &[&str],
    secrets: &mut BTreeSet<String>,
) {
    let a = template::analyse(src);
    for p in a.problems {
        let pos = c.doc.pos_in_scalar(at, p.line, p.col);
        let mut d = Diagnostic::new(&c.doc.file, pos, p.message);
        d.hint = p.hint;
        c.push(d);
    }
    let allowed: Vec<&str> = if roots.is_empty() {
        vec!["secrets"]
    } else {
        roots.to_vec()
    };
    for v in a.vars {
        let pos = c.doc.pos_in_scalar(at, v.line, v.col);
        let root = v.path[0].as_str();
        if root == "secrets" {
            match v.path.get(1) {
                Some(n) => {
                    secrets.insert(n.clone());
                }
                None => c.push(Diagnostic::new(
                    &c.doc.file,
                    pos,
                    "`secrets` must name one secret, e.g. secrets.HUBSPOT_TOKEN",
                )),
            }
        } else if root == "run" && v.path.get(1).map(String::as_str) != Some("idempotency_key") {
            c.push(
                Diagnostic::new(
                    &c.doc.file,
                    pos,
                    format!("unknown variable \"{}\"", v.dotted()),
                )
                .with_hint("`run` has only `idempotency_key`"),
            );
        } else if !allowed.contains(&root) && !v.scoped {
            let hint = did_you_mean(root, allowed.iter().copied())
                .map(|m| format!("did you mean `{m}`?"))
                .unwrap_or_else(|| format!("this template can read: {}", allowed.join(", ")));
            c.push(
                Diagnostic::new(
                    &c.doc.file,
                    pos,
                    format!("template reads unknown variable \"{}\"", v.dotted()),
                )
                .with_hint(hint),
            );
        }
    }
}
