//! Integration manifests: one YAML file per platform describing auth, rate
//! limits and HTTP actions. Loaded with the same located diagnostics as
//! runbooks.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::runbook::check::{kind_of, show, Checker};
use crate::runbook::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::runbook::load::{is_id, yaml_to_json};
use crate::runbook::template;
use crate::runbook::yaml::{YPath, YamlDoc};

#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub title: String,
    pub base_url: String,
    pub auth: Auth,
    pub rate_limit: RateLimit,
    pub actions: BTreeMap<String, Action>,
    /// Every `secrets.NAME` the manifest's templates read.
    pub secrets: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { username: String, password: String },
    Header { name: String, value: String },
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
    /// Set when the vendor has no API for this: the exact UI path instead.
    pub manual: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Simulate {
    pub status: u16,
    pub body: Option<Json>,
    pub headers: BTreeMap<String, String>,
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
];
const ACTION_KEYS: &[&str] = &[
    "description",
    "docs",
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
];
const AUTH_KINDS: &[&str] = &["bearer", "basic", "header"];
const RATE_KEYS: &[&str] = &["per_second", "burst", "concurrency"];
const SIMULATE_KEYS: &[&str] = &["status", "body", "headers"];
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
        Some(v) => read_auth(c, &root.key("auth"), v, &mut secrets).unwrap_or(Auth::None),
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
    Some(Manifest {
        name,
        title,
        base_url,
        auth,
        rate_limit,
        actions,
        secrets,
    })
}

fn read_auth(
    c: &mut Checker,
    p: &YPath,
    v: &Value,
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
                username: c.string(&kp.key("username"), &b["username"], "`username`")?,
                password: c.string(&kp.key("password"), &b["password"], "`password`")?,
            }
        }
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
                name: c.string(&kp.key("name"), &h["name"], "`name`")?,
                value: c.string(&kp.key("value"), &h["value"], "`value`")?,
            }
        }
        _ => return None,
    };
    match &auth {
        Auth::Bearer(t) => template_check(c, &kp, t, &[], secrets),
        Auth::Basic { username, password } => {
            template_check(c, &kp.key("username"), username, &[], secrets);
            template_check(c, &kp.key("password"), password, &[], secrets);
        }
        Auth::Header { value, .. } => template_check(c, &kp.key("value"), value, &[], secrets),
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
    let simulate = match m.get("simulate") {
        None => Simulate {
            status: ok.first().copied().unwrap_or(200),
            ..Default::default()
        },
        Some(v) => read_simulate(c, &p.key("simulate"), v, &ok, &already_done),
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
        manual,
    })
}

fn read_simulate(c: &mut Checker, p: &YPath, v: &Value, ok: &[u16], done: &[u16]) -> Simulate {
    let Some(m) = c.map(p, v, "`simulate`", SIMULATE_KEYS, &[]).cloned() else {
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
    }
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
        c.push(Diagnostic::new(&c.doc.file, pos, p.message));
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
