//! Reading and checking one manifest file: every key, every template,
//! every status list, with `file:line:col` and the fix for each problem.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::runbook::load::{is_id, yaml_to_json};
use crate::source::check::{kind_of, show, Checker};
use crate::source::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::source::yaml::{YPath, YamlDoc};
use crate::template;

use super::simulate::{read_simulate, read_tenant, Sent};
use super::*;

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
/// `status`, `body`, `headers`, then [`EFFECT_KEYS`].
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

pub(super) fn string_map(
    c: &mut Checker,
    p: &YPath,
    v: &Value,
    what: &str,
) -> BTreeMap<String, String> {
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

pub(super) fn status_list(c: &mut Checker, p: &YPath, v: &Value, what: &str) -> Vec<u16> {
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

pub(super) fn collect(v: &Json, path: &YPath, out: &mut Vec<(YPath, String)>) {
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
pub(super) fn template_check(
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
