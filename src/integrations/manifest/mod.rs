//! Integration manifests: one YAML file per platform describing auth, rate
//! limits and HTTP actions. The model is here; reading and checking a file
//! (with located diagnostics, as for runbooks) is in `read`, and reading
//! its `simulate:` blocks and `tenant:` in `simulate`.

mod read;
mod simulate;

pub use read::load;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

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
