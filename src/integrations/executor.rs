//! Runs one attempt of a manifest action over HTTP.
//!
//! One reqwest client (connection reuse) and one limiter per integration for
//! the whole process. The executor only classifies each response; the
//! engine's retry policy decides whether and when to try again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use tokio::time::Instant;

use super::manifest::{Action, Auth, Limits, Manifest, Means};
use super::paginate;
use super::rate_limit::{Caller, Limiter};
use super::response::{classify, type_name};
use super::secrets::{Secret, Secrets};
use super::Catalog;
use crate::telemetry::Answer;
use crate::template::{
    lookup as lookup_path, render_path, render_str, render_value, take as take_path, Scope,
};

/// Statuses worth another try: throttling, timeouts and server trouble.
pub const RETRIABLE: &[u16] = &[408, 425, 429, 500, 502, 503, 504];

#[derive(Debug, Clone, PartialEq)]
pub struct Success {
    pub status: u16,
    pub output: Json,
    /// The effect already held (an `already_done` status).
    pub already_done: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    #[error("{message}")]
    Retriable {
        status: Option<u16>,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("{message}")]
    Fatal {
        status: Option<u16>,
        message: String,
    },
}

impl CallError {
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Retriable { status, .. } | CallError::Fatal { status, .. } => *status,
        }
    }
}

pub(super) struct Target {
    pub(super) manifest: Arc<Manifest>,
    pub(super) base_url: Option<String>,
    pub(super) token_url: Option<String>,
    pub(super) limiter: Limiter,
    /// Endpoint limits, by action, on top of `limiter`.
    pub(super) action_limiters: HashMap<String, Vec<Limiter>>,
    /// The cached OAuth2 access token and when to stop using it.
    pub(super) token: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

/// Where each integration's requests go.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// integration -> base URL replacing the manifest's
    pub base_urls: HashMap<String, String>,
    /// integration -> OAuth2 token endpoint replacing the manifest's
    pub token_urls: HashMap<String, String>,
    pub secrets: Secrets,
    /// The requests go to the built-in simulator: each names the incident it
    /// is for (header [`DRILL_HEADER`]), so every drill has a tenant of its own.
    pub simulated: bool,
    /// A plan: only reads (GETs, `read: true`) may leave; every write is
    /// refused here, whatever the runbook or the manifest says.
    pub read_only: bool,
}

/// Names the drill a simulated request belongs to; never sent elsewhere.
pub const DRILL_HEADER: &str = "x-quench-drill";

pub struct Executor {
    pub(super) client: reqwest::Client,
    pub(super) targets: HashMap<String, Target>,
    pub(super) secrets: Secrets,
    /// Access tokens handed out by token endpoints, redacted like secrets.
    pub(super) issued: std::sync::Mutex<Secrets>,
    simulated: bool,
    read_only: bool,
    /// What "now" is for a `Retry-After` given as an HTTP date: the
    /// engine's clock, so tests with a fake one read the same delay.
    clock: Arc<dyn crate::clock::Clock>,
}

/// One HTTP exchange, as the classifier sees it.
pub(super) struct Exchange {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Json,
    pub(super) raw: String,
    /// The body was not empty and did not parse as JSON (an HTML error
    /// page from a proxy, a truncated answer).
    pub(super) not_json: bool,
}

/// What to send for one page.
struct Page<'a> {
    url: &'a str,
    /// The URL came from the vendor (next link): send it as is.
    verbatim: bool,
    extra_query: &'a [(String, String)],
    first: bool,
    /// Whom the call is for: simulated drills keep a tenant per incident,
    /// and the limiter gives each incident its turn.
    caller: Caller<'a>,
}

impl Executor {
    pub fn new(catalog: &Catalog, routing: Routing) -> Result<Self, reqwest::Error> {
        #[allow(clippy::disallowed_methods)] // the platforms' client is built here
        let client = reqwest::Client::builder()
            .user_agent(concat!("quench/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            // Credentials ride in headers reqwest does not know are secret
            // (`x-api-key`, `developer-token`), so a request never leaves
            // its origin: a redirect elsewhere is answered as a failure.
            .redirect(reqwest::redirect::Policy::custom(same_origin_redirects))
            .referer(false)
            .build()?;
        let targets = catalog
            .manifests()
            .map(|m| {
                (
                    m.name.clone(),
                    Target {
                        manifest: m.clone(),
                        base_url: routing.base_urls.get(&m.name).cloned(),
                        token_url: routing.token_urls.get(&m.name).cloned(),
                        limiter: Limiter::new(&m.rate_limit),
                        action_limiters: m
                            .actions
                            .iter()
                            .filter(|(_, a)| !a.rate_limit.is_empty())
                            .map(|(n, a)| {
                                (n.clone(), a.rate_limit.iter().map(Limiter::new).collect())
                            })
                            .collect(),
                        token: tokio::sync::Mutex::new(None),
                    },
                )
            })
            .collect();
        Ok(Executor {
            client,
            targets,
            secrets: routing.secrets,
            issued: Default::default(),
            simulated: routing.simulated,
            read_only: routing.read_only,
            clock: Arc::new(crate::clock::SystemClock),
        })
    }

    /// The clock `Retry-After` dates are measured against (default: the
    /// system's).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn action(&self, integration: &str, action: &str) -> Option<&Action> {
        self.targets.get(integration)?.manifest.actions.get(action)
    }

    /// Whether this executor refuses writes (a plan).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// What a call would send, without sending it: method, URL (query
    /// included) and body, secrets redacted. A plan records this for each
    /// write.
    pub fn preview(
        &self,
        integration: &str,
        action_name: &str,
        with: &Json,
    ) -> Result<Json, String> {
        let t = self
            .targets
            .get(integration)
            .ok_or_else(|| format!("unknown integration \"{integration}\""))?;
        let action = t.manifest.actions.get(action_name).ok_or_else(|| {
            format!("integration \"{integration}\" has no action \"{action_name}\"")
        })?;
        let ctx = json!({
            "with": with,
            "secrets": self.secrets.context(),
            "run": { "idempotency_key": "plan" },
        });
        let what = format!("{integration}.{action_name}");
        let fail = |field: &str, e: crate::template::RenderError| {
            self.redact(&format!("{what}: {field}: {e}"))
        };
        // The manifest's own base URL: a plan shows where the call goes on
        // the vendor, not a local override.
        let base = render_str(&t.manifest.base_url, &ctx).map_err(|e| fail("base_url", e))?;
        let path = render_path(&action.path, &ctx).map_err(|e| fail("path", e))?;
        let mut url = format!("{}{}", base.trim_end_matches('/'), path);
        let mut query = vec![];
        for (k, v) in &action.query {
            let v = render_str(v, &ctx).map_err(|e| fail("query", e))?;
            if !v.is_empty() {
                query.push(format!("{k}={}", crate::template::encode_segment(&v)));
            }
        }
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let body = match (&action.body, action.form.is_empty()) {
            (Some(b), _) => render_value(b, &ctx).map_err(|e| fail("body", e))?,
            (None, false) => {
                let mut form = serde_json::Map::new();
                for (k, v) in &action.form {
                    form.insert(
                        k.clone(),
                        Json::String(render_str(v, &ctx).map_err(|e| fail("form", e))?),
                    );
                }
                Json::Object(form)
            }
            (None, true) => Json::Null,
        };
        Ok(self.redact_json(json!({
            "method": action.method.as_str(),
            "url": url,
            "body": body,
        })))
    }

    /// `url` as a message shows it, redacted without its query, worked out
    /// only if a message is written: a call that succeeds never needs it.
    pub(super) fn shown<'a>(&'a self, url: &'a str) -> Shown<'a> {
        Shown { exec: self, url }
    }

    /// Removes every secret and issued access token from `text`.
    pub fn redact(&self, text: &str) -> String {
        let issued = self.issued.lock().expect("issued tokens");
        redacted_by(&self.secrets, &issued, text).unwrap_or_else(|| text.to_string())
    }

    /// Secrets a manifest needs that are not set.
    pub fn missing_secrets(&self, integration: &str) -> Vec<String> {
        self.targets
            .get(integration)
            .map(|t| {
                t.manifest
                    .secrets
                    .iter()
                    .filter(|s| !self.secrets.has(s))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One attempt (all pages of a paginated list). `timeout` bounds each
    /// request, body included.
    pub async fn call(
        &self,
        integration: &str,
        action_name: &str,
        with: &Json,
        idempotency_key: &str,
        timeout: Option<Duration>,
    ) -> Result<Success, CallError> {
        self.call_for(
            Caller::NOBODY,
            integration,
            action_name,
            with,
            idempotency_key,
            timeout,
        )
        .await
    }

    /// [`call`](Self::call) on behalf of an incident.
    pub async fn call_for(
        &self,
        caller: Caller<'_>,
        integration: &str,
        action_name: &str,
        with: &Json,
        idempotency_key: &str,
        timeout: Option<Duration>,
    ) -> Result<Success, CallError> {
        let fatal = |message: String| CallError::Fatal {
            status: None,
            message,
        };
        let t = self
            .targets
            .get(integration)
            .ok_or_else(|| fatal(format!("unknown integration \"{integration}\"")))?;
        let action = t.manifest.actions.get(action_name).ok_or_else(|| {
            fatal(format!(
                "integration \"{integration}\" has no action \"{action_name}\""
            ))
        })?;
        let what = format!("{integration}.{action_name}");
        if self.read_only && !action.reads() {
            return Err(fatal(format!(
                "{what} is a write ({} {}): a plan sends only reads, and this one was not sent",
                action.method, action.path
            )));
        }
        let limits = Limits {
            timeout,
            max_response_bytes: None,
        }
        .or(action.limits)
        .or(t.manifest.limits);

        let missing = self.missing_secrets(integration);
        if !missing.is_empty() {
            let many = missing.len() > 1;
            return Err(fatal(format!(
                "{what}: missing secret{} {}; set the environment variable{} or add {} to the secrets file",
                if many { "s" } else { "" },
                missing.join(", "),
                if many { "s" } else { "" },
                if many { "them" } else { "it" },
            )));
        }
        // Wrapped once: every field of every page renders from it.
        let ctx = Scope::new(json!({
            "with": with,
            "secrets": self.secrets.context(),
            "run": { "idempotency_key": idempotency_key },
        }));
        let base = match &t.base_url {
            Some(b) => b.clone(),
            None => render_str(&t.manifest.base_url, &ctx)
                .map_err(|e| fatal(self.redact(&format!("{what}: base_url: {e}"))))?,
        };
        let path = render_path(&action.path, &ctx)
            .map_err(|e| fatal(self.redact(&format!("{what}: path: {e}"))))?;
        let first_url = format!("{}{}", base.trim_end_matches('/'), path);

        let mut url = first_url.clone();
        let mut verbatim = false;
        let mut extra: Vec<(String, String)> = vec![];
        let mut items: Vec<Json> = vec![];
        let mut pages = 0u32;
        let mut reauthed = false;
        let mut all_done = true;
        let mut last_status;
        loop {
            let page = Page {
                url: &url,
                verbatim,
                extra_query: &extra,
                first: pages == 0,
                caller,
            };
            let mut ex = self.exchange(t, action, &ctx, &what, &page, limits).await?;
            let shown = self.shown(&url);
            match classify(&t.manifest, action, &ex) {
                Means::Reauth if matches!(t.manifest.auth, Auth::OAuth2(_)) && !reauthed => {
                    // The token expired or was revoked under us: one fresh token, same attempt.
                    *t.token.lock().await = None;
                    reauthed = true;
                    continue;
                }
                Means::Ok if ex.not_json => {
                    // A 200 that is not the vendor's JSON (a captive portal,
                    // a proxy's error page) did not do what was asked.
                    let ctype = ex
                        .headers
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("no content type");
                    return Err(CallError::Retriable {
                        status: Some(ex.status),
                        retry_after: None,
                        message: self.redact(&format!(
                            "{what}: HTTP {} from {} {shown}: response is not JSON ({ctype}): {}",
                            ex.status,
                            action.method,
                            excerpt(&self.redact(&ex.raw))
                        )),
                    });
                }
                means @ (Means::Ok | Means::AlreadyDone) => {
                    last_status = ex.status;
                    all_done &= means == Means::AlreadyDone;
                    let done = means == Means::AlreadyDone;
                    let Some(pg) = &action.paginate else {
                        let output = match (&action.output, done) {
                            // "Already done" answers are often error bodies
                            // without the success shape: nothing to read.
                            (Some(field), true) => {
                                take_path(&mut ex.body, field).unwrap_or(Json::Null)
                            }
                            (Some(field), false) => {
                                self.list_at(&ex.body, field, action, &what, &shown, None)?;
                                match take_path(&mut ex.body, field) {
                                    Some(Json::Array(a)) => {
                                        Json::Array(a.into_iter().map(compact).collect())
                                    }
                                    Some(Json::Null) | None => Json::Array(vec![]),
                                    Some(other) => other,
                                }
                            }
                            (None, _) if ex.not_json => Json::Null,
                            (None, _) => ex.body,
                        };
                        return Ok(Success {
                            status: ex.status,
                            output: self.redact_json(output),
                            already_done: done,
                        });
                    };
                    let got = match self.list_at(
                        &ex.body,
                        &pg.items,
                        action,
                        &what,
                        &shown,
                        Some(pages + 1),
                    )? {
                        None => 0,
                        Some(Json::Array(a)) => a.len(),
                        Some(other) => {
                            return Err(fatal(self.redact(&format!(
                                "{what}: page {} of {} {shown}: `{}` is {}, not a list",
                                pages + 1,
                                action.method,
                                pg.items,
                                type_name(other)
                            ))))
                        }
                    };
                    pages += 1;
                    // Where the next page is, read off the whole answer
                    // before its items are moved out of it.
                    let read = paginate::Read {
                        body: &ex.body,
                        headers: &ex.headers,
                        got,
                        so_far: items.len() + got,
                        pages,
                        asked: &extra,
                    };
                    let next = paginate::next(pg, &first_url, &read)
                        .map_err(|e| fatal(self.redact(&format!("{what}: {e}"))))?;
                    if let Some(Json::Array(a)) = take_path(&mut ex.body, &pg.items) {
                        items.extend(a.into_iter().map(compact));
                    }
                    if let Some(paginate::Next { url: u, .. }) = &next {
                        if pages >= pg.max_pages {
                            // Returning what was read would let a revocation
                            // or a verification miss the rest unseen.
                            return Err(fatal(self.redact(&format!(
                                "{what}: more than {} pages (paginate.max_pages); raise max_pages or narrow the query",
                                pg.max_pages
                            ))));
                        }
                        if !same_origin(&first_url, u) {
                            // A vendor's next link is followed with the
                            // credentials: never to another origin.
                            return Err(fatal(self.redact(&format!(
                                "{what}: page {pages} links its next page to {}, outside the integration's origin; not followed",
                                origin_text(u)
                            ))));
                        }
                    }
                    match next {
                        Some(n) => {
                            url = n.url;
                            verbatim = n.verbatim;
                            extra = n.query;
                        }
                        None => {
                            return Ok(Success {
                                status: last_status,
                                output: self.redact_json(Json::Array(items)),
                                already_done: all_done,
                            });
                        }
                    }
                }
                Means::Retry => {
                    let retry_after = ex
                        .headers
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, self.clock.now()));
                    return Err(CallError::Retriable {
                        status: Some(ex.status),
                        retry_after,
                        message: self.redact(&format!(
                            "{what}: HTTP {} from {} {shown}: {}",
                            ex.status,
                            action.method,
                            excerpt(&self.redact(&ex.raw))
                        )),
                    });
                }
                Means::Fail | Means::Reauth => {
                    return Err(CallError::Fatal {
                        status: Some(ex.status),
                        message: self.redact(&format!(
                            "{what}: HTTP {} from {} {shown}: {}",
                            ex.status,
                            action.method,
                            excerpt(&self.redact(&ex.raw))
                        )),
                    });
                }
            }
        }
    }

    /// Sends one request (rate-limited) and reads its body.
    async fn exchange(
        &self,
        t: &Target,
        action: &Action,
        ctx: &Scope,
        what: &str,
        page: &Page<'_>,
        limits: Limits,
    ) -> Result<Exchange, CallError> {
        let fatal = |m: String| CallError::Fatal {
            status: None,
            message: self.redact(&m),
        };
        let r = |res: Result<String, crate::template::RenderError>, field: &str| {
            res.map_err(|e| fatal(format!("{what}: {field}: {e}")))
        };
        let mut req = self.client.request(action.method.clone(), page.url);
        match action.auth.as_ref().unwrap_or(&t.manifest.auth) {
            Auth::None => {}
            Auth::Bearer(tok) => req = req.bearer_auth(r(render_str(tok, ctx), "auth")?),
            Auth::Basic { username, password } => {
                let (user, pass) = (
                    r(render_str(username, ctx), "auth")?,
                    r(render_str(password, ctx), "auth")?,
                );
                // The header's base64 does not contain the password's own
                // base64 (alignment), so redact the whole credential too.
                let integration = what.split('.').next().unwrap_or(what);
                self.remember_issued(
                    &format!("{integration} basic credential"),
                    &basic_credential(&user, &pass),
                );
                req = req.basic_auth(user, Some(pass))
            }
            Auth::Header { name, value } => {
                req = req.header(name.as_str(), r(render_str(value, ctx), "auth")?)
            }
            Auth::OAuth2(o) => {
                let token = self.token(t, o, ctx, what, Some(limits.timeout())).await?;
                req = req.bearer_auth(token.expose());
            }
        }
        for (k, v) in &action.headers {
            req = req.header(k.as_str(), r(render_str(v, ctx), "headers")?);
        }
        if let (true, Some(scope)) = (self.simulated, page.caller.incident) {
            req = req.header(DRILL_HEADER, scope);
        }
        if !page.verbatim {
            let mut q: Vec<(String, String)> = action
                .query
                .iter()
                .map(|(k, v)| Ok((k.clone(), r(render_str(v, ctx), "query")?)))
                .collect::<Result<_, CallError>>()?;
            // An optional parameter (`{{#if with.x}}{{with.x}}{{/if}}`) that
            // renders empty is left out rather than sent blank.
            q.retain(|(_, v)| !v.is_empty());
            // Paging parameters replace the action's own (`page: "0"`).
            for (k, v) in page.extra_query {
                match q.iter_mut().find(|(qk, _)| qk == k) {
                    Some(slot) => slot.1 = v.clone(),
                    None => q.push((k.clone(), v.clone())),
                }
            }
            if !q.is_empty() {
                req = req.query(&q);
            }
        }
        if page.first {
            if let Some(b) = &action.body {
                req = req
                    .json(&render_value(b, ctx).map_err(|e| fatal(format!("{what}: body: {e}")))?);
            } else if !action.form.is_empty() {
                let f: Vec<(String, String)> = action
                    .form
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), r(render_str(v, ctx), "form")?)))
                    .collect::<Result<_, CallError>>()?;
                req = req.form(&f);
            }
        }
        let shown = self.shown(page.url);
        // The endpoint's own limits first, then the account-wide one.
        let telemetry = crate::telemetry::global();
        let held = Instant::now();
        let mut _endpoint = Vec::new();
        for l in t.action_limiters.get(&action.name).into_iter().flatten() {
            _endpoint.push(l.acquire(page.caller).await);
        }
        let _permit = t.limiter.acquire(page.caller).await;
        telemetry.rate_limit_wait(&t.manifest.name, held.elapsed());
        // One deadline over sending and reading the whole body: a peer that
        // trickles bytes is as stuck as one that never answers.
        let deadline = limits.timeout();
        let cap = limits.max_response_bytes();
        let read = async {
            let resp = req.send().await.map_err(|e| {
                // A request that cannot be built (an invalid URL or header
                // value) fails the same way every time: never retried.
                if e.is_builder() {
                    return CallError::Fatal {
                        status: None,
                        message: self.redact(&format!(
                            "{what}: {} {shown}: the request cannot be built ({}); check the values the action's path, query and headers are rendered from",
                            action.method,
                            transport(&e)
                        )),
                    };
                }
                CallError::Retriable {
                    status: None,
                    retry_after: None,
                    message: self.redact(&format!(
                        "{what}: {} {shown}: {}",
                        action.method,
                        transport(&e)
                    )),
                }
            })?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            if resp.status().is_redirection() {
                return Err(CallError::Fatal {
                    status: Some(status),
                    message: self.redact(&format!(
                        "{what}: HTTP {status} from {} {shown}: redirected to {}; not followed, because a request never leaves the integration's origin with its credentials (check base_url)",
                        action.method,
                        redirect_origin(page.url, &headers),
                    )),
                });
            }
            let bytes = read_capped(resp, cap).await.map_err(|e| match e {
                Capped::Over => CallError::Fatal {
                    status: Some(status),
                    message: format!(
                        "{what}: HTTP {status} from {} {shown}: response over {cap} bytes (max_response_bytes); not read further",
                        action.method
                    ),
                },
                Capped::Transport(e) => CallError::Retriable {
                    status: Some(status),
                    retry_after: None,
                    message: self.redact(&format!(
                        "{what}: reading the response of {} {shown}: {}",
                        action.method,
                        transport(&e)
                    )),
                },
            })?;
            Ok((status, headers, bytes))
        };
        let sent = Instant::now();
        let answered = tokio::time::timeout(deadline, read).await;
        let answer = match &answered {
            Ok(Ok((status, _, _))) => Answer::Status(*status),
            Ok(Err(e)) => e.status().map_or(Answer::NoAnswer, Answer::Status),
            Err(_) => Answer::TimedOut,
        };
        telemetry.call(&t.manifest.name, &action.name, answer, sent.elapsed());
        let (status, headers, bytes) = match answered {
            Ok(r) => r?,
            Err(_) => {
                return Err(CallError::Retriable {
                    status: None,
                    retry_after: None,
                    message: format!(
                        "{what}: {} {shown}: timed out after {} (no complete answer; the timeout covers the body)",
                        action.method,
                        crate::source::duration::duration_text(deadline)
                    ),
                })
            }
        };
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let (body, not_json) = if bytes.iter().all(u8::is_ascii_whitespace) {
            (Json::Null, false)
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(v) => (v, false),
                Err(_) => (Json::String(raw.clone()), true),
            }
        };
        Ok(Exchange {
            status,
            headers,
            body,
            raw,
            not_json,
        })
    }

    /// The list (or object) at `field` of a success answer, for the caller
    /// to take out of the answer it owns (a page of 1,000 items is moved,
    /// not copied). `None`: a list the vendor leaves out when empty
    /// (`omit_empty`), so an empty one; any other missing field means the
    /// answer is not what the action expects.
    fn list_at<'b>(
        &self,
        body: &'b Json,
        field: &str,
        action: &Action,
        what: &str,
        shown: &Shown<'_>,
        page: Option<u32>,
    ) -> Result<Option<&'b Json>, CallError> {
        match lookup_path(body, field) {
            // Left out of an answer, not an empty or missing answer.
            Some(Json::Null) | None if action.omit_empty && body.is_object() => Ok(None),
            Some(Json::Null) | None => {
                let keys = match body {
                    Json::Object(m) if !m.is_empty() => {
                        m.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                    Json::Object(_) => "(an empty object)".into(),
                    other => type_name(other).into(),
                };
                let at = page.map(|p| format!("page {p} of ")).unwrap_or_default();
                Err(CallError::Fatal {
                    status: None,
                    message: self.redact(&format!(
                        "{what}: {at}{} {shown}: the answer has no `{field}` (it has: {keys}); if the vendor leaves it out when empty, say `omit_empty: true` in the manifest",
                        action.method
                    )),
                })
            }
            Some(v) => Ok(Some(v)),
        }
    }

    /// A vendor's answer with every secret and issued token replaced, before
    /// it reaches the store, templates or timelines.
    pub fn redact_json(&self, mut v: Json) -> Json {
        // A copy, so a 200,000-item listing does not hold the lock that
        // every other call's redaction takes.
        let issued = self.issued.lock().expect("issued tokens").clone();
        redact_in_place(&mut v, &|s| redacted_by(&self.secrets, &issued, s));
        v
    }

    /// Adds a credential the executor built (not a configured secret) to
    /// what is redacted.
    pub(super) fn remember_issued(&self, name: &str, value: &str) {
        self.issued
            .lock()
            .expect("issued tokens")
            .remember(name, value);
    }
}

/// A listed item held as small as it can be: a parsed map (an indexmap,
/// with `preserve_order`) keeps the room it grew into, three entries for a
/// one-key object, and a listing of 200,000 such items held some 25 MB of
/// that room (heaptrack, `bench table S200k`) until its fan-out ended.
fn compact(item: Json) -> Json {
    match item {
        Json::Object(m) => Json::Object(m.into_iter().collect()),
        other => other,
    }
}

/// `text` with the configured secrets and then the issued tokens replaced;
/// `None` when it holds neither.
fn redacted_by(secrets: &Secrets, issued: &Secrets, text: &str) -> Option<String> {
    match secrets.redacted(text) {
        Some(once) => Some(issued.redacted(&once).unwrap_or(once)),
        None => issued.redacted(text),
    }
}

/// Redacts every string and key of `v` where it lies: an answer's strings
/// rarely hold a secret, and rebuilding every map of a long listing to
/// find that out cost more than the listing's parse.
fn redact_in_place(v: &mut Json, redacted: &dyn Fn(&str) -> Option<String>) {
    match v {
        Json::String(s) => {
            if let Some(r) = redacted(s) {
                *s = r;
            }
        }
        Json::Array(a) => a.iter_mut().for_each(|x| redact_in_place(x, redacted)),
        Json::Object(m) => {
            if m.keys().any(|k| redacted(k).is_some()) {
                *m = std::mem::take(m)
                    .into_iter()
                    .map(|(k, x)| (redacted(&k).unwrap_or(k), x))
                    .collect();
            }
            m.values_mut().for_each(|x| redact_in_place(x, redacted));
        }
        _ => {}
    }
}

/// `user:password` as HTTP Basic sends it.
fn basic_credential(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

/// Follows a redirect only within the origin (scheme, host, port) of the
/// first request; anything else comes back as the 3xx itself.
fn same_origin_redirects(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let first = attempt.previous().first().map(origin_of);
    if attempt.previous().len() > 5 {
        attempt.error("more than 5 redirects")
    } else if first.is_some() && first == Some(origin_of(attempt.url())) {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

/// Whether two URLs share scheme, host and port.
fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => origin_of(&a) == origin_of(&b),
        _ => false,
    }
}

/// scheme://host[:port] of a URL, for messages (its path or query may
/// carry anything).
fn origin_text(u: &str) -> String {
    match reqwest::Url::parse(u) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "an address without a host".into(),
        },
        Err(_) => "an unreadable address".into(),
    }
}

fn origin_of(u: &reqwest::Url) -> (String, Option<String>, Option<u16>) {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_string),
        u.port_or_known_default(),
    )
}

/// Where a redirect pointed, as scheme://host[:port] only (its path or
/// query may carry anything).
fn redirect_origin(from: &str, headers: &reqwest::header::HeaderMap) -> String {
    let loc = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok());
    let Some(loc) = loc else {
        return "nowhere (no Location header)".into();
    };
    match reqwest::Url::parse(from).and_then(|b| b.join(loc)) {
        Ok(u) => origin_text(u.as_str()),
        Err(_) => "an unreadable Location".into(),
    }
}

pub(super) enum Capped {
    Over,
    Transport(reqwest::Error),
}

/// The body, read chunk by chunk, refused as soon as it passes `cap` bytes
/// (a declared Content-Length over the cap is refused before reading).
pub(super) async fn read_capped(mut resp: reqwest::Response, cap: u64) -> Result<Vec<u8>, Capped> {
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(Capped::Over);
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Transport)? {
        if (out.len() + chunk.len()) as u64 > cap {
            return Err(Capped::Over);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// See [`Executor::shown`].
pub(super) struct Shown<'a> {
    exec: &'a Executor,
    url: &'a str,
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.exec.redact(&strip_query(self.url)))
    }
}

/// A URL as errors and the timeline show it: no query (it may carry
/// values a platform treats as secret), and no longer than a line.
pub(super) fn strip_query(url: &str) -> String {
    const SHOWN: usize = 300;
    let path = url.split('?').next().unwrap_or(url);
    if path.chars().count() > SHOWN {
        let n = path.chars().count();
        format!(
            "{}… ({n} characters)",
            path.chars().take(SHOWN).collect::<String>()
        )
    } else {
        path.to_string()
    }
}

pub(super) fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        // reqwest errors embed the URL, query included; keep the kind only.
        let mut s = e.to_string();
        if let Some(u) = e.url() {
            s = s.replace(u.as_str(), "(url)");
        }
        s.chars().take(200).collect()
    }
}

/// The first 300 characters of a body, on one line.
pub fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else if one_line.is_empty() {
        "(empty body)".to_string()
    } else {
        one_line
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 10.2.3),
/// the date measured from `now`.
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date already past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
