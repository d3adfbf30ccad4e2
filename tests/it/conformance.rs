//! Every bundled integration manifest checked field by field against the
//! vendor's saved spec operation it calls (catalog.rs matches method and path
//! and keeps the table `tests/fixtures/spec-operations.tsv`; this goes
//! inside the operation):
//!
//! 1. every property of the JSON `body` exists in the request body schema,
//!    through nested objects and arrays (`$ref`, `allOf`, `oneOf`/`anyOf`,
//!    `additionalProperties` followed);
//! 2. literal values sent for a field with an `enum` are in it (query and
//!    form values too);
//! 3. the request schema's required properties are sent, at every object
//!    level the action sends (and required query and form parameters);
//! 4. query keys (the paginator's too) and form keys are parameters of the
//!    operation;
//! 5. every path read from a response (`output`, `paginate.*`, `inventory.*`
//!    of each list item, body paths of `responses` rules) exists in the
//!    operation's 2xx response schema;
//! 6. `simulate.body` validates against that response schema;
//! 7. every field the bundled runbook reads from a step output (`item.x` in a
//!    step iterating `steps.X.output`, `steps.X.output.x`) exists in the
//!    response schema of X's action (and likewise `inventory.with` of an
//!    action listed for each item of another).
//!
//! Vendors without a saved spec (meta, salesforce, google-oauth,
//! google-workspace) and actions newer than the saved spec (`docs:`) have no
//! spec operation. Where such an action carries the vendor's documented
//! response (`example:`, from the page its `docs:` names), a one-operation
//! OpenAPI document is synthesised from it and checks 5-7 run against that
//! (what is sent is not what a response documents), their messages naming
//! "the documented example (URL)". An example is read as a schema thus:
//!
//! - an object has exactly the properties shown (`additionalProperties:
//!   false`) and none of them is required (a vendor may leave any out);
//! - a list's elements are described by the union of the elements shown
//!   (the properties of every one); an empty list says nothing of them;
//! - `null` is "nullable, of any type" (reads below it are not judged);
//! - the strings `string`, `boolean`, `integer` and `number` are that type:
//!   Google's and Microsoft's "JSON representation" templates write the type
//!   where the value goes (`"clientId": string`, which YAML reads as the
//!   string "string"), so `scopes: [string]` is a list of strings and
//!   `anonymous: boolean` a boolean. Any other string is a string (a real
//!   example value, or a template's `"Guid"`), `true`/`false` a boolean, a
//!   whole number an integer, another a number.
//!
//! Response rules that read error answers (any but `means: ok` on a 2xx or
//! any status) cannot be checked against a success example and are noted. Actions with neither a spec operation nor an
//! example are skipped with a note.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use quench::integrations::manifest::{Action, Manifest, Means, ResponseRule};
use quench::library::Library;
use quench::runbook::{Runbook, StepKind};
use serde_json::{json, Value as Json};

use crate::catalog::{self, Row};
use schema::{Doc, Found, Issue, IssueKind, Miss, Mode};

/// Where the saved spec is plainly wrong or a third-party slice is stale:
/// (who, fields, why). `who` is `vendor.action` (`vendor.*`: every action of
/// it); a field's list indices are written `[]`. An entry nothing matches
/// any more fails the test.
const ALLOWED: &[(&str, &[&str], &str)] = &[
    (
        "anthropic.list_api_keys",
        &["simulate.body.data[].partial_key_hint"],
        "the third-party slice omits partial_key_hint, which every API key object in Anthropic's \
         docs has (platform.claude.com/docs/en/api/admin/api_keys/retrieve)",
    ),
    (
        "google-ads.list_enabled_campaigns",
        &["simulate.body.results[].campaign.id"],
        "REST answers int64 fields as JSON strings (proto3 JSON mapping); the hand-written \
         third-party spec says integer",
    ),
    (
        "linkedin.list_campaigns",
        &["paginate.cursor", "query.pageSize", "query.pageToken", "simulate.body.metadata"],
        "campaign search pages by pageSize/pageToken and metadata.nextPageToken (docs cited in the \
         manifest); the third-party slice still shows start/count paging",
    ),
    (
        "linkedin.list_campaign_groups",
        &["paginate.cursor", "query.pageSize", "query.pageToken", "simulate.body.metadata"],
        "as linkedin.list_campaigns",
    ),
    (
        "marketo.list_programs",
        &["simulate.body.result[].type", "simulate.body.result[].status"],
        "the swagger enum (program, event, webinar, nurture) is not what the API answers: Adobe's \
         Programs docs list and return Default, Event, Event with Webinar, Engagement, Email; \
         and a Default program answers status \"\" (Get Program by Id example, same page)",
    ),
    (
        "marketo.get_program",
        &["simulate.body.result[].type", "simulate.body.result[].status"],
        "as marketo.list_programs (swagger enum default, event, webinar, nurture)",
    ),
    (
        "marketo.list_active_smart_campaigns",
        &[
            "simulate.body.result[].maxMembers",
            "simulate.body.result[].qualificationRuleInterval",
            "simulate.body.result[].qualificationRuleUnit",
            "simulate.body.result[].recurrence.startAt",
            "simulate.body.result[].recurrence.endAt",
            "simulate.body.result[].recurrence.intervalType",
            "simulate.body.result[].recurrence.interval",
            "simulate.body.result[].recurrence.weekdayMask",
            "simulate.body.result[].recurrence.dayOfMonth",
            "simulate.body.result[].recurrence.dayOfWeek",
            "simulate.body.result[].recurrence.weekOfMonth",
        ],
        "the generated swagger marks every field required; Adobe's Smart Campaigns docs answer \
         without these (recurrence is just { weekdayOnly })",
    ),
    (
        "microsoft-graph.*",
        &["@odata.type", "simulate.body.value[].@odata.type"],
        "msgraph-metadata's OpenAPI conversion makes @odata.type required on every entity; Graph \
         sends it only for derived types and does not need it in a PATCH",
    ),
    (
        "sfmc.stop_journey",
        &["query.versionNumber"],
        "the third-party slice omits versionNumber (README); the docs cited in the manifest have it",
    ),
    (
        "slack.*",
        &["query.token"],
        "the spec models the token as a required `token` argument; the manifest sends it as \
         Authorization: Bearer, which Slack accepts for every method",
    ),
    (
        "slack.approve_app",
        &["form.enterprise_id"],
        "the 2021 spec predates enterprise_id; the current docs require team_id or enterprise_id",
    ),
    ("slack.restrict_app", &["form.enterprise_id"], "as slack.approve_app"),
];

// ------------------------------------------------------------------- specs

/// Every spec file the committed table names, parsed once per test run
/// (some are 1-3 MB), by its path under ../shared/specs/. Empty when the
/// specs are not there.
fn specs() -> &'static HashMap<String, Json> {
    static SPECS: OnceLock<HashMap<String, Json>> = OnceLock::new();
    SPECS.get_or_init(|| {
        let root = catalog::specs_root();
        if !root.is_dir() {
            return HashMap::new();
        }
        let files: Vec<String> = catalog::read_table()
            .into_iter()
            .map(|r| r.spec_file)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Biggest first, over as many threads as there are cores.
        let mut queue: Vec<(u64, String)> = files
            .into_iter()
            .map(|f| (std::fs::metadata(root.join(&f)).map_or(0, |m| m.len()), f))
            .collect();
        queue.sort();
        let queue = Mutex::new(queue);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut out = HashMap::new();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = vec![];
                        while let Some((_, f)) = queue.lock().unwrap().pop() {
                            let v = parse_spec(&root.join(&f));
                            done.push((f, v));
                        }
                        done
                    })
                })
                .collect();
            for h in handles {
                out.extend(h.join().expect("a spec parser panicked"));
            }
        });
        out
    })
}

fn parse_spec(path: &Path) -> Json {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    // OpenAI's spec has integers beyond 64 bits, which neither
    // serde_json's nor serde_yaml's values hold: made floats here.
    serde_yaml::from_str::<Lossy>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .0
}

/// A JSON value read from YAML: integers beyond 64 bits become floats, keys
/// that are not strings become their text.
struct Lossy(Json);

impl<'de> serde::Deserialize<'de> for Lossy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LossyVisitor).map(Lossy)
    }
}

struct LossyVisitor;

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

impl<'de> serde::de::Visitor<'de> for LossyVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(v.into())
    }
    fn visit_i128<E>(self, v: i128) -> Result<Json, E> {
        Ok(float(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Json, E> {
        Ok(float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Json, A::Error> {
        let mut out = vec![];
        while let Some(Lossy(v)) = s.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Json, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some((Lossy(k), Lossy(v))) = m.next_entry()? {
            let key = match k {
                Json::String(s) => s,
                other => other.to_string(),
            };
            out.insert(key, v);
        }
        Ok(Json::Object(out))
    }
}

// ------------------------------------------------------------- operations

/// One operation of one saved spec file.
#[derive(Clone)]
struct Op {
    file: String,
    id: String,
    method: String,
    /// Base path + spec path, as the spec writes it.
    path: String,
    doc: &'static Json,
    item: &'static Json,
    op: &'static Json,
    /// Set for an operation synthesised from an action's `example:`: the
    /// action's `docs:` URL.
    example: Option<String>,
}

/// What a query or form parameter accepts.
#[derive(Default)]
struct Param {
    required: bool,
    array: bool,
    enums: Option<Vec<Json>>,
}

impl Op {
    /// The operation a table row names, in its spec file.
    fn find(row: &Row) -> Option<Op> {
        let doc = specs().get(&row.spec_file)?;
        let prefix = match (
            doc.get("basePath").and_then(Json::as_str),
            doc.pointer("/servers/0/url").and_then(Json::as_str),
        ) {
            (Some(b), _) => b.to_string(),
            (None, Some(u)) => catalog::url_path(u).to_string(),
            (None, None) => String::new(),
        };
        for (p, item) in doc.get("paths")?.as_object()? {
            if catalog::vendor_key(&row.vendor, &format!("{prefix}/{p}")) != row.path {
                continue;
            }
            let Some(op) = item.get(row.method.to_ascii_lowercase()) else {
                continue;
            };
            let id = op.get("operationId").and_then(Json::as_str).unwrap_or("-");
            if id == row.operation_id {
                return Some(Op {
                    file: row.spec_file.clone(),
                    id: id.to_string(),
                    method: row.method.clone(),
                    path: format!("{}{p}", prefix.trim_end_matches('/')),
                    doc,
                    item,
                    op,
                    example: None,
                });
            }
        }
        None
    }

    fn doc(&self) -> Doc<'static> {
        Doc { root: self.doc }
    }

    fn swagger2(&self) -> bool {
        self.doc.get("swagger").is_some()
    }

    /// `get_api_keys_beta (klaviyo/openapi/beta.json GET /api/api-keys)`
    fn desc(&self) -> String {
        if let Some(url) = &self.example {
            return format!("the documented example ({url})");
        }
        let id = if self.id == "-" {
            "the operation"
        } else {
            &self.id
        };
        format!("{id} ({} {} {})", self.file, self.method, self.path)
    }

    /// The operation's parameters and its path's (the operation's win).
    fn params(&self) -> Vec<&'static Json> {
        let doc = self.doc();
        let mut out: Vec<&Json> = vec![];
        for list in [self.op.get("parameters"), self.item.get("parameters")] {
            for p in list.and_then(Json::as_array).into_iter().flatten() {
                let p = doc.resolve(p);
                let key = |x: &Json| (x.get("name").cloned(), x.get("in").cloned());
                if !out.iter().any(|q| key(q) == key(p)) {
                    out.push(p);
                }
            }
        }
        out
    }

    fn params_in(&self, place: &str) -> BTreeMap<String, Param> {
        let doc = self.doc();
        self.params()
            .into_iter()
            .filter(|p| p.get("in").and_then(Json::as_str) == Some(place))
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?.to_string();
                // Swagger 2 keeps the type on the parameter, OpenAPI 3 in `schema`.
                let mut info = param_info(doc, p.get("schema").unwrap_or(p));
                info.required = p.get("required").and_then(Json::as_bool) == Some(true);
                Some((name, info))
            })
            .collect()
    }

    fn request_body(&self) -> Option<&'static Json> {
        self.op.get("requestBody").map(|b| self.doc().resolve(b))
    }

    /// The JSON request body schema (the action's Content-Type preferred).
    fn json_body(&self, content_type: Option<&str>) -> Option<&'static Json> {
        if self.swagger2() {
            return self
                .params()
                .into_iter()
                .find(|p| p.get("in").and_then(Json::as_str) == Some("body"))
                .and_then(|p| p.get("schema"));
        }
        let content = self.request_body()?.get("content")?.as_object()?;
        let json_like = |k: &str| k.contains("json");
        let key = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim())
            .filter(|c| content.contains_key(*c))
            .or_else(|| {
                content
                    .contains_key("application/json")
                    .then_some("application/json")
            })
            .or_else(|| content.keys().map(String::as_str).find(|k| json_like(k)))?;
        content.get(key)?.get("schema")
    }

    fn body_required(&self) -> bool {
        if self.swagger2() {
            self.params().iter().any(|p| {
                p.get("in").and_then(Json::as_str) == Some("body")
                    && p.get("required").and_then(Json::as_bool) == Some(true)
            })
        } else {
            self.request_body()
                .and_then(|b| b.get("required"))
                .and_then(Json::as_bool)
                == Some(true)
        }
    }

    /// Form fields: Swagger 2 `formData` parameters, or the properties of an
    /// OpenAPI 3 form-encoded request body. None: the operation takes none.
    fn form_fields(&self) -> Option<BTreeMap<String, Param>> {
        if self.swagger2() {
            let f = self.params_in("formData");
            return (!f.is_empty()).then_some(f);
        }
        let content = self.request_body()?.get("content")?;
        let schema = ["application/x-www-form-urlencoded", "multipart/form-data"]
            .iter()
            .find_map(|k| content.get(*k))?
            .get("schema")?;
        let doc = self.doc();
        let mut out = BTreeMap::new();
        for alt in schema::alternatives(doc, &[schema]) {
            for (k, parts) in &alt.props {
                let mut info = parts
                    .first()
                    .map(|p| param_info(doc, p))
                    .unwrap_or_default();
                info.required = alt.required.contains(k);
                out.entry(k.to_string()).or_insert(info);
            }
        }
        Some(out)
    }

    fn statuses(&self) -> Vec<String> {
        self.op
            .get("responses")
            .and_then(Json::as_object)
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The response for a status: None when the spec does not list it,
    /// Some(None) when it lists it without a body.
    fn response(&self, status: &str) -> Option<Option<&'static Json>> {
        let all = self.op.get("responses")?;
        let r = all.get(status).or_else(|| {
            status
                .starts_with('2')
                .then(|| all.get("2XX").or_else(|| all.get("2xx")))
                .flatten()
        })?;
        let r = self.doc().resolve(r);
        if self.swagger2() {
            return Some(r.get("schema"));
        }
        Some(r.get("content").and_then(|c| {
            let c = c.as_object()?;
            let key = if c.contains_key("application/json") {
                "application/json"
            } else {
                c.keys()
                    .map(String::as_str)
                    .find(|k| k.contains("json"))
                    .or_else(|| c.keys().next().map(String::as_str))?
            };
            c.get(key)?.get("schema")
        }))
    }

    /// The success response an action's reads are checked against: the
    /// simulated status when it is an `ok` one the spec lists, else the first
    /// `ok` status it lists, else its first 2xx; one with a body first.
    fn success(&self, a: &Action) -> Option<(String, Option<&'static Json>)> {
        let mut want: Vec<String> = vec![];
        if a.ok.contains(&a.simulate.status) {
            want.push(a.simulate.status.to_string());
        }
        want.extend(a.ok.iter().map(u16::to_string));
        want.extend(self.statuses().into_iter().filter(|s| s.starts_with('2')));
        let listed: Vec<(String, Option<&Json>)> = want
            .into_iter()
            .filter_map(|s| self.response(&s).map(|r| (s, r)))
            .collect();
        listed
            .iter()
            .find(|(_, r)| r.is_some())
            .or(listed.first())
            .cloned()
    }
}

fn param_info(doc: Doc<'static>, s: &'static Json) -> Param {
    let mut info = Param::default();
    if let Some(alt) = schema::alternatives(doc, &[s]).into_iter().next() {
        info.enums = alt.enums.first().cloned();
        info.array =
            !alt.items.is_empty() || alt.types.as_ref().is_some_and(|t| t.contains("array"));
        if info.array && info.enums.is_none() {
            info.enums = schema::alternatives(doc, &alt.items)
                .into_iter()
                .next()
                .and_then(|i| i.enums.first().cloned());
        }
    }
    info
}

// ------------------------------------------------------ documented examples

/// The status a documented example answers with: the simulated one when it
/// is an `ok` one, else the first `ok` status.
fn example_status(a: &Action) -> u16 {
    if a.ok.contains(&a.simulate.status) {
        a.simulate.status
    } else {
        a.ok.first().copied().unwrap_or(200)
    }
}

/// Whether a documented example, a success body, can check a response
/// rule: one that recognises a success (`means: ok`, no status or a 2xx
/// one). The others read error answers (Google's 403 reasons, Slack's
/// `ok: false` with its `error` code under HTTP 200), which it does not show.
fn example_checks(rule: &ResponseRule) -> bool {
    rule.means == Means::Ok
        && (rule.status.is_empty() || rule.status.iter().any(|s| (200..300).contains(s)))
}

/// `status 403, means retry`
fn rule_text(rule: &ResponseRule) -> String {
    let status = match rule.status.as_slice() {
        [] => "any status".to_string(),
        list => format!(
            "status {}",
            list.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join("/")
        ),
    };
    format!(
        "{status}, means {}",
        format!("{:?}", rule.means).to_lowercase()
    )
}

/// The operation an action's `example:` stands for: a one-operation OpenAPI
/// 3 document whose success response is the schema the example implies
/// (leaked, as the parsed specs live for the whole run). None without an
/// example (or, which the loader refuses, without `docs:`).
fn example_op(m: &Manifest, a: &Action) -> Option<Op> {
    let example = a.example.as_ref()?;
    let url = a.docs.clone()?;
    let method = a.method.as_str().to_ascii_lowercase();
    let response = json!({
        "description": format!("the documented example ({url})"),
        "content": { "application/json": { "schema": example_schema(example) } },
    });
    let mut responses = serde_json::Map::new();
    responses.insert(example_status(a).to_string(), response);
    let mut item = serde_json::Map::new();
    item.insert(
        method.clone(),
        json!({ "operationId": format!("{}.{}", m.name, a.name), "responses": responses }),
    );
    let mut paths = serde_json::Map::new();
    paths.insert(a.path.clone(), Json::Object(item));
    let doc: &'static Json = Box::leak(Box::new(json!({
        "openapi": "3.0.3",
        "info": { "title": format!("{}.{} as documented", m.name, a.name), "version": url },
        "paths": paths,
    })));
    let item = &doc["paths"][a.path.as_str()];
    Some(Op {
        file: "the documented example".into(),
        id: format!("{}.{}", m.name, a.name),
        method: a.method.to_string(),
        path: a.path.clone(),
        doc,
        item,
        op: &item[method.as_str()],
        example: Some(url),
    })
}

/// The schema a documented example stands for (the conventions are in the
/// module comment).
fn example_schema(v: &Json) -> Json {
    match v {
        Json::Null => json!({}),
        Json::Bool(_) => json!({ "type": "boolean" }),
        Json::Number(n) if n.is_i64() || n.is_u64() => json!({ "type": "integer" }),
        Json::Number(_) => json!({ "type": "number" }),
        Json::String(s) => match s.as_str() {
            "string" | "boolean" | "integer" | "number" => json!({ "type": s }),
            _ => json!({ "type": "string" }),
        },
        Json::Array(list) => {
            let mut out = json!({ "type": "array" });
            if let Some(items) = list.iter().map(example_schema).reduce(union) {
                out["items"] = items;
            }
            out
        }
        Json::Object(o) => {
            let props: serde_json::Map<String, Json> = o
                .iter()
                .map(|(k, x)| (k.clone(), example_schema(x)))
                .collect();
            json!({ "type": "object", "properties": props, "additionalProperties": false })
        }
    }
}

/// A schema either of two derived schemas' values fit: objects keep the
/// properties of both, lists the union of their elements (an empty list
/// says nothing of them), an integer and a number make a number; anything
/// else mixed with an object or a list, or a `null`, is anything.
fn union(a: Json, b: Json) -> Json {
    fn types(s: &Json) -> Option<BTreeSet<String>> {
        match s.get("type")? {
            Json::String(t) => Some([t.clone()].into()),
            Json::Array(ts) => Some(
                ts.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => None,
        }
    }
    let (Some(ta), Some(tb)) = (types(&a), types(&b)) else {
        return json!({});
    };
    if ta == tb && ta.len() == 1 {
        match ta.first().map(String::as_str) {
            Some("object") => {
                let mut props = a["properties"].as_object().cloned().unwrap_or_default();
                for (k, x) in b["properties"].as_object().cloned().unwrap_or_default() {
                    let merged = match props.remove(&k) {
                        Some(y) => union(y, x),
                        None => x,
                    };
                    props.insert(k, merged);
                }
                return json!({ "type": "object", "properties": props, "additionalProperties": false });
            }
            Some("array") => {
                let items = match (a.get("items").cloned(), b.get("items").cloned()) {
                    (Some(x), Some(y)) => Some(union(x, y)),
                    (x, y) => x.or(y),
                };
                let mut out = json!({ "type": "array" });
                if let Some(i) = items {
                    out["items"] = i;
                }
                return out;
            }
            _ => return a,
        }
    }
    let mut all: BTreeSet<String> = ta.union(&tb).cloned().collect();
    if all.contains("object") || all.contains("array") {
        return json!({});
    }
    if all.contains("number") {
        all.remove("integer");
    }
    match all.len() {
        1 => json!({ "type": all.pop_first() }),
        _ => json!({ "type": all.into_iter().collect::<Vec<_>>() }),
    }
}

// ---------------------------------------------------------------- findings

#[derive(Debug, Clone)]
struct Problem {
    /// `klaviyo.list_api_keys`, or `shadow-ai-exposure/<step id>`.
    who: String,
    field: String,
    text: String,
}

#[derive(Default)]
struct Report {
    problems: Vec<Problem>,
    notes: BTreeSet<String>,
}

impl Report {
    fn problem(&mut self, who: &str, field: &str, text: String) {
        self.problems.push(Problem {
            who: who.to_string(),
            field: field.to_string(),
            text,
        });
    }
}

/// `a, b, c`, at most 40 of them.
fn names(list: &[String]) -> String {
    if list.is_empty() {
        return "(no properties)".into();
    }
    let mut s = list.iter().take(40).cloned().collect::<Vec<_>>().join(", ");
    if list.len() > 40 {
        s.push_str(&format!(", ... ({} more)", list.len() - 40));
    }
    s
}

/// A scalar as it travels in a query string.
fn scalar_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn shown(v: &Json) -> String {
    match v {
        Json::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

fn is_templated(s: &str) -> bool {
    s.contains("{{")
}

fn header<'a>(a: &'a Action, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Where a read stopped: "the response has: a, b" / "`data[].x` has: ...".
fn miss_text(m: &Miss, whole: &str) -> String {
    let place = if m.at.is_empty() {
        whole.to_string()
    } else if whole == "the item" {
        format!("the item's {}", m.at)
    } else {
        format!("`{}`", m.at)
    };
    match &m.is {
        Some(kind) => format!("{place} is {kind}"),
        None => format!("{place} has: {}", names(&m.has)),
    }
}

/// A schema issue as a sentence naming the action, the field and where.
fn describe(who: &str, i: &Issue, mode: Mode, ctx: &str) -> Problem {
    let f = &i.field;
    let (verb, sim) = match mode {
        Mode::Request => ("sends", ""),
        Mode::Response => ("has", "simulate.body "),
    };
    let text = match &i.kind {
        IssueKind::Unknown { parent, has } => {
            let parent = match parent.as_str() {
                "" if mode == Mode::Request => "the body".into(),
                "" => "the response".into(),
                p => format!("`{p}`"),
            };
            format!(
                "{who}: {sim}{verb} {f}, not in {ctx}; {parent} has: {}",
                names(has)
            )
        }
        IssueKind::NotInEnum { value, allowed } => {
            let allowed: Vec<String> = allowed.iter().map(shown).collect();
            format!(
                "{who}: {sim}{verb} {f}: {}, not in its enum ({}) in {ctx}",
                shown(value),
                allowed.join(", ")
            )
        }
        IssueKind::Missing => format!("{who}: {sim}omits {f}, required by {ctx}"),
        IssueKind::WrongType { found, want } => {
            format!("{who}: {sim}{verb} {f} as {found}, {ctx} says {want}")
        }
    };
    Problem {
        who: who.to_string(),
        field: f.clone(),
        text,
    }
}

// ----------------------------------------------------------------- actions

/// The table's operations for an action (one per spec file that has it).
fn candidates(m: &Manifest, a: &Action, table: &BTreeSet<Row>) -> Vec<Op> {
    let (method, path) = catalog::action_key(m, a);
    table
        .iter()
        .filter(|r| r.vendor == m.name && r.method == method && r.path == path)
        .filter(|r| {
            // Klaviyo: the `revision` header picks the stable or the beta spec.
            m.name != "klaviyo"
                || header(a, "revision").is_some_and(|v| v.ends_with(".pre"))
                    == r.spec_file.contains("/beta")
        })
        .filter_map(Op::find)
        .collect()
}

/// Checks every action of `m`; returns the operation each was checked
/// against (by `vendor.action`), for the reads of the runbook.
fn check_manifest(m: &Manifest, table: &BTreeSet<Row>, report: &mut Report) -> HashMap<String, Op> {
    let mut chosen = HashMap::new();
    for (name, a) in &m.actions {
        if a.manual.is_some() {
            continue;
        }
        let who = format!("{}.{name}", m.name);
        let has_spec = catalog::spec_dir(&m.name).is_some();
        let ops = if has_spec {
            candidates(m, a, table)
        } else {
            vec![]
        };
        if ops.is_empty() {
            // No spec operation: the documented example stands in for it.
            match example_op(m, a) {
                Some(op) => {
                    report.problems.extend(check_response(m, &who, a, &op));
                    for (label, rules) in [
                        ("responses", &a.responses),
                        ("manifest responses", &m.responses),
                    ] {
                        let success = match op.success(a) {
                            Some((_, Some(r))) => Some(r),
                            _ => None,
                        };
                        for rule in rules.iter().filter(|r| !example_checks(r)) {
                            for (path, _) in &rule.body {
                                // Error answers often share the success
                                // envelope (Slack's `ok`): only what it
                                // lacks is left unchecked.
                                let shown = success.is_some_and(|r| {
                                    schema::walk(op.doc(), &[r], &segments(path)).is_ok()
                                });
                                if shown {
                                    continue;
                                }
                                report.notes.insert(format!(
                                    "{who}: its {label} rule ({}) reads {path}, unchecked: {} \
                                     is a success body",
                                    rule_text(rule),
                                    op.desc()
                                ));
                            }
                        }
                    }
                    chosen.insert(who, op);
                }
                None if !has_spec => {
                    report
                        .notes
                        .insert(format!("{who}: skipped, {} has no saved spec", m.name));
                }
                None => {
                    report.notes.insert(match &a.docs {
                        Some(d) => format!("{who}: skipped, newer than the saved spec ({d})"),
                        None => format!("{who}: skipped, in no saved spec (see the catalog test)"),
                    });
                }
            }
            continue;
        }
        if a.example.is_some() {
            report.notes.insert(format!(
                "{who}: its example is not used: a saved spec operation describes it"
            ));
        }
        // Conforming to one of the spec files that define it is enough;
        // otherwise the closest one's problems are reported.
        let mut best: Option<(Op, Vec<Problem>)> = None;
        for op in ops {
            let found = check_action(m, &who, a, &op);
            let better = best.as_ref().is_none_or(|(_, b)| found.len() < b.len());
            if better {
                let done = found.is_empty();
                best = Some((op, found));
                if done {
                    break;
                }
            }
        }
        let (op, found) = best.expect("at least one candidate");
        report.problems.extend(found);
        if a.read {
            if let Some(why) = not_a_read(&op) {
                report.problem(
                    &who,
                    "read",
                    format!("{who}: says `read: true`, but {} {why}", op.desc()),
                );
            }
        }
        if let Some(n) = optional_list(who.as_str(), a, &op) {
            report.notes.insert(n);
        }
        chosen.insert(who, op);
    }
    chosen
}

/// Why a spec operation is not documented as a read (a plan may send an
/// action marked `read: true`): its summary or description must say it
/// returns, lists, searches or gets, and nothing that changes state.
fn not_a_read(op: &Op) -> Option<String> {
    let text = format!(
        "{} {}",
        op.op["summary"].as_str().unwrap_or(""),
        op.op["description"].as_str().unwrap_or("")
    );
    let lower = text.to_lowercase();
    let reads = [
        "return", "retriev", "list", "search", "get ", "gets ", "query", "read",
    ];
    let writes = [
        "create",
        "update",
        "delete",
        "remove",
        "mutate",
        "modif",
        "change",
        "cancel",
        "unschedule",
        "pause",
        "revoke",
        "send",
    ];
    if let Some(w) = writes.iter().find(|w| lower.contains(*w)) {
        return Some(format!(
            "is documented as changing state (\"{w}\" in \"{}\")",
            text.trim()
        ));
    }
    if !reads.iter().any(|r| lower.contains(r)) {
        return Some(format!("is not documented as a read (\"{}\")", text.trim()));
    }
    None
}

/// A note when the list an action hands on is optional in the spec: a
/// vendor that leaves it out when empty answers without it.
fn optional_list(who: &str, a: &Action, op: &Op) -> Option<String> {
    let path = a
        .paginate
        .as_ref()
        .map(|p| p.items.as_str())
        .or(a.output.as_deref())?;
    let (status, resp) = match op.success(a)? {
        (s, Some(r)) => (s, r),
        _ => return None,
    };
    match schema::required_along(op.doc(), &[resp], &segments(path)) {
        Some(false) => Some(format!(
            "{who}: `{path}` is optional in the {status} response of {}: the vendor may leave it \
             out (when empty, say)",
            op.desc()
        )),
        _ => None,
    }
}

fn check_action(m: &Manifest, who: &str, a: &Action, op: &Op) -> Vec<Problem> {
    let mut out = check_request(who, a, op);
    out.extend(check_response(m, who, a, op));
    out
}

/// Checks 1-4: what the action sends.
fn check_request(who: &str, a: &Action, op: &Op) -> Vec<Problem> {
    let mut out = vec![];
    let doc = op.doc();
    let desc = op.desc();
    let mut push = |field: &str, text: String| {
        out.push(Problem {
            who: who.to_string(),
            field: field.to_string(),
            text,
        })
    };

    // 1-3: the JSON body.
    if let Some(body) = &a.body {
        match op.json_body(header(a, "content-type")) {
            None => push(
                "body",
                format!("{who}: sends a JSON body, but {desc} takes none"),
            ),
            Some(s) => {
                let mut issues = vec![];
                schema::check(doc, &[s], body, "", Mode::Request, &mut issues);
                let ctx = format!("the request body of {desc}");
                for i in issues {
                    let p = describe(who, &i, Mode::Request, &ctx);
                    push(&p.field, p.text);
                }
            }
        }
    } else if a.form.is_empty() && op.body_required() {
        push(
            "body",
            format!("{who}: sends no body, but {desc} requires one"),
        );
    }

    // 4: query and form keys (and literal values against their enums).
    let query = op.params_in("query");
    let mut sent: Vec<(&str, Option<&str>)> = a
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    if let Some(p) = &a.paginate {
        for k in [&p.cursor_param, &p.offset_param, &p.page_param]
            .into_iter()
            .flatten()
        {
            if !a.query.contains_key(k) {
                sent.push((k.as_str(), None));
            }
        }
    }
    let names_of = |m: &BTreeMap<String, Param>| names(&m.keys().cloned().collect::<Vec<_>>());
    let value_ok = |p: &Param, v: &str| -> Option<String> {
        let allowed = p.enums.as_ref()?;
        if is_templated(v) {
            return None;
        }
        let parts: Vec<&str> = if p.array {
            v.split(',').collect()
        } else {
            vec![v]
        };
        let bad: Vec<&str> = parts
            .into_iter()
            .filter(|x| !allowed.iter().any(|e| scalar_text(e) == *x))
            .collect();
        (!bad.is_empty()).then(|| {
            let allowed: Vec<String> = allowed.iter().map(shown).collect();
            format!(
                "{}, not in its enum ({})",
                bad.join(","),
                allowed.join(", ")
            )
        })
    };
    for (k, v) in &sent {
        match query.get(*k) {
            None => push(
                &format!("query.{k}"),
                format!(
                    "{who}: sends query parameter {k}, not a parameter of {desc}; its query parameters: {}",
                    names_of(&query)
                ),
            ),
            Some(p) => {
                if let Some(bad) = v.and_then(|v| value_ok(p, v)) {
                    push(
                        &format!("query.{k}"),
                        format!("{who}: sends query {k}={bad} in {desc}"),
                    );
                }
            }
        }
    }
    for (k, p) in &query {
        if p.required && !sent.iter().any(|(s, _)| s == k) {
            push(
                &format!("query.{k}"),
                format!("{who}: omits the required query parameter {k} of {desc}"),
            );
        }
    }
    let form = op.form_fields();
    match (&form, a.form.is_empty()) {
        (None, false) => push(
            "form",
            format!(
                "{who}: sends form fields ({}), but {desc} takes none",
                a.form.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        (Some(fields), _) if a.body.is_none() => {
            for (k, v) in &a.form {
                match fields.get(k) {
                    None => push(
                        &format!("form.{k}"),
                        format!(
                            "{who}: sends form field {k}, not a field of {desc}; its fields: {}",
                            names_of(fields)
                        ),
                    ),
                    Some(p) => {
                        if let Some(bad) = value_ok(p, v) {
                            push(
                                &format!("form.{k}"),
                                format!("{who}: sends form {k}={bad} in {desc}"),
                            );
                        }
                    }
                }
            }
            for (k, p) in fields {
                if p.required && !a.form.contains_key(k) {
                    push(
                        &format!("form.{k}"),
                        format!("{who}: omits the required form field {k} of {desc}"),
                    );
                }
            }
        }
        _ => {}
    }
    out
}

/// Checks 5 and 6: what the action reads from the answer, and what the
/// simulator answers. The only checks an operation synthesised from a
/// documented example gets.
fn check_response(m: &Manifest, who: &str, a: &Action, op: &Op) -> Vec<Problem> {
    let mut out = vec![];
    let doc = op.doc();
    let desc = op.desc();
    let mut push = |field: &str, text: String| {
        out.push(Problem {
            who: who.to_string(),
            field: field.to_string(),
            text,
        })
    };

    // 5: what it reads from the success response.
    let mut top: Vec<(&str, &str)> = vec![];
    if let Some(o) = &a.output {
        top.push(("output", o.as_str()));
    }
    if let Some(p) = &a.paginate {
        top.push(("paginate.items", p.items.as_str()));
        for (label, v) in [
            ("paginate.cursor", &p.cursor),
            ("paginate.next_url", &p.next_url),
            ("paginate.has_more", &p.has_more),
            ("paginate.total", &p.total),
        ] {
            if let Some(v) = v {
                top.push((label, v.as_str()));
            }
        }
    }
    let list = a
        .paginate
        .as_ref()
        .map(|p| ("paginate.items", p.items.as_str()))
        .or(a.output.as_deref().map(|o| ("output", o)));
    let mut per_item: Vec<(&str, &str)> = vec![];
    if let Some(inv) = &a.inventory {
        per_item.push(("inventory.name", inv.name.as_str()));
        per_item.push(("inventory.id", inv.id.as_str()));
        if let Some(u) = &inv.user {
            per_item.push(("inventory.user", u.as_str()));
        }
    }
    // Query parameters that name response fields must name real ones:
    // Graph's OData `$select` (properties of each item), Mailchimp's
    // `fields` / `exclude_fields` (dotted paths from the top).
    let projection = |k: &'static str| {
        a.query
            .get(k)
            .filter(|v| !is_templated(v))
            .into_iter()
            .flat_map(|v| v.split(',').map(str::trim))
            .map(move |f| (k, f))
    };
    match m.name.as_str() {
        "microsoft-graph" => per_item.extend(projection("$select")),
        "mailchimp" => top.extend(projection("fields").chain(projection("exclude_fields"))),
        _ => {}
    }
    let success = op.success(a);
    match &success {
        Some((status, Some(resp))) => {
            let ctx = format!("the {status} response of {desc}");
            for (label, path) in &top {
                if let Err(miss) = schema::walk(doc, &[resp], &segments(path)) {
                    push(
                        label,
                        format!(
                            "{who}: reads {path} ({label}), not in {ctx}; {}",
                            miss_text(&miss, "the response")
                        ),
                    );
                }
            }
            if let (Some((label, items)), false) = (list, per_item.is_empty()) {
                match schema::walk(doc, &[resp], &segments(items)) {
                    Ok(Found::At(parts)) => match schema::items(doc, &parts) {
                        None => push(
                            label,
                            format!("{who}: `{items}` ({label}) is not a list in {ctx}"),
                        ),
                        Some(item) => {
                            for (l, path) in &per_item {
                                if let Err(miss) = schema::walk(doc, &item, &segments(path)) {
                                    push(
                                        l,
                                        format!(
                                            "{who}: reads {path} ({l}) of each `{items}` item, not in {ctx}; {}",
                                            miss_text(&miss, "the item")
                                        ),
                                    );
                                }
                            }
                        }
                    },
                    // Free-form, or not there (reported above).
                    Ok(Found::Anything) | Err(_) => {}
                }
            }
        }
        _ if !top.is_empty() || !per_item.is_empty() => {
            let reads: Vec<&str> = top.iter().chain(&per_item).map(|(_, p)| *p).collect();
            push(
                top.first().or(per_item.first()).map_or("", |(l, _)| l),
                format!(
                    "{who}: reads {} from the response, but {desc} documents no 2xx response body",
                    reads.join(", ")
                ),
            );
        }
        _ => {}
    }

    // ...and body paths of response rules (error bodies are often
    // documented under `default`, so that counts too).
    for (label, rules) in [
        ("responses", &a.responses),
        ("manifest responses", &m.responses),
    ] {
        for rule in rules {
            // A documented example is a success body: rules for error
            // statuses are noted as unchecked (check_manifest).
            if op.example.is_some() && !example_checks(rule) {
                continue;
            }
            let mut statuses: Vec<String> = if rule.status.is_empty() {
                op.statuses()
                    .into_iter()
                    .filter(|s| s.starts_with('2'))
                    .collect()
            } else {
                rule.status.iter().map(u16::to_string).collect()
            };
            statuses.push("default".into());
            let schemas: Vec<(String, &Json)> = statuses
                .iter()
                .filter_map(|s| op.response(s).flatten().map(|r| (s.clone(), r)))
                .collect();
            for (path, _) in &rule.body {
                if schemas.is_empty() {
                    push(
                        path,
                        format!(
                            "{who}: its {label} rule reads {path}, but {desc} documents no body for {}",
                            statuses.join(", ")
                        ),
                    );
                    continue;
                }
                let misses: Vec<Miss> = schemas
                    .iter()
                    .filter_map(|(_, s)| schema::walk(doc, &[s], &segments(path)).err())
                    .collect();
                if misses.len() == schemas.len() {
                    let listed: Vec<&str> = schemas.iter().map(|(s, _)| s.as_str()).collect();
                    push(
                        path,
                        format!(
                            "{who}: its {label} rule reads {path}, not in the {} response of {desc}; {}",
                            listed.join("/"),
                            miss_text(&misses[0], "the response")
                        ),
                    );
                }
            }
        }
    }

    // 6: the simulated answer: the static body, or what a stateful
    // simulator answers from the tenant (each object as the vendor shows it).
    for body in &quench::integrations::simulator::answers(m, a) {
        let st = a.simulate.status.to_string();
        let picked = match op.response(&st) {
            Some(r) => Some((st.clone(), r)),
            None => success.clone(),
        };
        match picked {
            None => push(
                "simulate.body",
                format!("{who}: simulates a {st} body, but {desc} documents no 2xx response"),
            ),
            Some((status, None)) => push(
                "simulate.body",
                format!(
                    "{who}: simulates a body for {st}, but the {status} response of {desc} has none"
                ),
            ),
            Some((status, Some(s))) => {
                let mut issues = vec![];
                schema::check(doc, &[s], body, "", Mode::Response, &mut issues);
                let ctx = format!("the {status} response of {desc}");
                for i in issues {
                    let p = describe(who, &i, Mode::Response, &ctx);
                    push(&format!("simulate.body.{}", p.field), p.text);
                }
            }
        }
    }
    out
}

// ------------------------------------------------------- reads of outputs

/// An output's shape and where it comes from; Err: why it cannot be checked.
type Output = Result<(Shape, String), String>;

/// What a step (or an action) outputs, as far as the specs tell.
#[derive(Clone)]
enum Shape {
    Schema(Doc<'static>, Vec<&'static Json>),
    /// One entry per item (a paginated list, or a fan-out step's outputs).
    List(Box<Shape>),
    Anything,
}

impl Shape {
    fn walk(&self, segs: &[&str]) -> Result<Shape, Miss> {
        if segs.is_empty() {
            return Ok(self.clone());
        }
        match self {
            Shape::Anything => Ok(Shape::Anything),
            Shape::List(inner) if segs[0].parse::<usize>().is_ok() => inner.walk(&segs[1..]),
            Shape::List(inner) => inner.walk(segs),
            Shape::Schema(doc, parts) => match schema::walk(*doc, parts, segs)? {
                Found::At(p) => Ok(Shape::Schema(*doc, p)),
                Found::Anything => Ok(Shape::Anything),
            },
        }
    }

    fn is_list(&self) -> bool {
        match self {
            Shape::List(_) => true,
            Shape::Schema(doc, parts) => schema::items(*doc, parts).is_some(),
            Shape::Anything => false,
        }
    }

    /// What `for_each` over it hands each item (a list of lists flattened).
    fn element(&self) -> Option<Shape> {
        match self {
            Shape::List(inner) if inner.is_list() => inner.element(),
            Shape::List(inner) => Some((**inner).clone()),
            Shape::Schema(doc, parts) => schema::items(*doc, parts).map(|i| Shape::Schema(*doc, i)),
            Shape::Anything => Some(Shape::Anything),
        }
    }
}

/// The output of `integration.action` per call, and where it comes from;
/// Err: why it cannot be checked.
fn action_output(
    lib: &Library,
    chosen: &HashMap<String, Op>,
    integration: &str,
    action: &str,
) -> Output {
    let who = format!("{integration}.{action}");
    let a = lib
        .catalog
        .get(integration)
        .and_then(|m| m.actions.get(action))
        .ok_or_else(|| format!("{who} is unknown"))?;
    if a.manual.is_some() {
        return Err(format!("{who} is a manual action"));
    }
    let Some(op) = chosen.get(&who) else {
        return Err(if catalog::spec_dir(integration).is_none() {
            format!("{integration} has no saved spec")
        } else if let Some(d) = &a.docs {
            format!("{who} is newer than the saved spec ({d})")
        } else {
            format!("{who} matches no saved spec operation")
        });
    };
    let (status, resp) = match op.success(a) {
        Some((s, Some(r))) => (s, r),
        _ => return Err(format!("{} documents no 2xx response body", op.desc())),
    };
    let doc = op.doc();
    let whole = Shape::Schema(doc, vec![resp]);
    let fail = |what: &str| format!("{who}: {what} is not in its response (reported above)");
    let shape = if let Some(p) = &a.paginate {
        let list = whole
            .walk(&segments(&p.items))
            .map_err(|_| fail(&p.items))?;
        Shape::List(Box::new(list.element().ok_or_else(|| fail(&p.items))?))
    } else if let Some(o) = &a.output {
        whole.walk(&segments(o)).map_err(|_| fail(o))?
    } else {
        whole
    };
    let from = match (&a.paginate, &a.output) {
        (Some(p), _) => format!("`{}` of ", p.items),
        (None, Some(o)) => format!("`{o}` of "),
        _ => String::new(),
    };
    Ok((
        shape,
        format!("{who}: {from}the {status} response of {}", op.desc()),
    ))
}

/// Every string in a `with` value, by its dotted place.
fn strings(v: &Json, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Json::String(s) => out.push((at.to_string(), s.clone())),
        Json::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| strings(x, &format!("{at}.{i}"), out)),
        Json::Object(m) => m
            .iter()
            .for_each(|(k, x)| strings(x, &format!("{at}.{k}"), out)),
        _ => {}
    }
}

/// Checks what `templates` read from `item` (the element of `iterated`) and
/// from `steps.X.output`.
fn check_reads(
    who: &str,
    templates: &[(String, String)],
    iterated: Option<(&str, Output)>,
    parent: Option<(&str, Output)>,
    step_output: &dyn Fn(&str) -> Option<Output>,
    report: &mut Report,
) {
    let mut element = |list: Option<(&str, Output)>| {
        list.map(|(path, out)| {
            let (shape, what) = out?;
            let elem = shape
                .element()
                .ok_or_else(|| format!("{path} is not a list ({what})"));
            match elem {
                Ok(e) => Ok((e, what)),
                Err(e) => {
                    report.problem(who, path, format!("{who}: iterates {e}"));
                    Err(String::new())
                }
            }
        })
    };
    let item = element(iterated);
    let parent = element(parent);
    for (label, src) in templates {
        for var in quench::template::analyse(src).vars {
            if var.scoped {
                continue;
            }
            let dotted = var.dotted();
            let (shape, what, rest) = match var.path[0].as_str() {
                root @ ("item" | "parent") => match if root == "item" { &item } else { &parent } {
                    Some(Ok((s, w))) => (
                        s.clone(),
                        if root == "item" {
                            format!("the items it iterates, {w}")
                        } else {
                            format!("the items its source step iterates, {w}")
                        },
                        &var.path[1..],
                    ),
                    Some(Err(why)) => {
                        if !why.is_empty() {
                            report
                                .notes
                                .insert(format!("{who}: {dotted} unchecked: {why}"));
                        }
                        continue;
                    }
                    None => continue,
                },
                "steps" if var.path.len() >= 3 && var.path[2] == "output" => {
                    match step_output(&var.path[1]) {
                        None => continue,
                        Some(Err(why)) => {
                            report
                                .notes
                                .insert(format!("{who}: {dotted} unchecked: {why}"));
                            continue;
                        }
                        Some(Ok((s, w))) => (s, w, &var.path[3..]),
                    }
                }
                _ => continue,
            };
            let segs: Vec<&str> = rest.iter().map(String::as_str).collect();
            if let Err(miss) = shape.walk(&segs) {
                let whole = if var.path[0] != "steps" {
                    "the item"
                } else {
                    "the output"
                };
                report.problem(
                    who,
                    &dotted,
                    format!(
                        "{who}: reads {dotted} ({label}), not in {what}; {}",
                        miss_text(&miss, whole)
                    ),
                );
            }
        }
    }
}

fn check_runbook(lib: &Library, rb: &Runbook, chosen: &HashMap<String, Op>, report: &mut Report) {
    let step_output = |id: &str| -> Option<Output> {
        let step = rb.step(id)?;
        let StepKind::Action {
            integration,
            action,
        } = &step.kind
        else {
            return None;
        };
        Some(
            action_output(lib, chosen, integration, action).map(|(shape, what)| {
                if step.for_each.is_some() {
                    (
                        Shape::List(Box::new(shape)),
                        format!("one output per item of step {id}: {what}"),
                    )
                } else {
                    (shape, format!("step {id}'s output: {what}"))
                }
            }),
        )
    };
    for s in &rb.steps {
        let who = format!("{}/{}", rb.name, s.id);
        let mut templates = vec![];
        strings(&s.with, "with", &mut templates);
        if let Some(w) = &s.when {
            templates.push(("when".into(), w.clone()));
        }
        let list = |fe: &'_ str| -> Option<Output> {
            let rest: Vec<&str> = fe.split('.').collect();
            if rest.len() < 3 || rest[0] != "steps" || rest[2] != "output" {
                return None;
            }
            Some(step_output(rest[1])?.and_then(|(shape, what)| {
                shape
                    .walk(&rest[3..])
                    .map(|s| (s, what))
                    .map_err(|m| format!("{fe}: {}", miss_text(&m, "the output")))
            }))
        };
        let iterated = s.for_each.as_deref().and_then(|fe| Some((fe, list(fe)?)));
        // `parent`: the items the iterated step itself fanned out over.
        let parent = s
            .for_each
            .as_deref()
            .and_then(|fe| fe.strip_prefix("steps.")?.strip_suffix(".output"))
            .and_then(|src| rb.step(src)?.for_each.as_deref())
            .and_then(|fe| Some((fe, list(fe)?)));
        check_reads(&who, &templates, iterated, parent, &step_output, report);
        // A verification's templates read each item the step re-read.
        if let Some(v) = &s.verify {
            let mut texts = vec![("verify.remains".to_string(), v.remains.clone())];
            texts.extend(
                v.shows
                    .iter()
                    .map(|t| ("verify.shows".to_string(), t.clone())),
            );
            texts.extend(
                v.label
                    .iter()
                    .map(|t| ("verify.label".to_string(), t.clone())),
            );
            let reread = step_output(&s.id).map(|o| ("what it re-reads", o));
            check_reads(&who, &texts, reread, None, &step_output, report);
        }
    }
}

/// `inventory.with` of an action listed once per item of another.
fn check_inventory_reads(lib: &Library, chosen: &HashMap<String, Op>, report: &mut Report) {
    for m in lib.catalog.manifests() {
        for (name, a) in &m.actions {
            let Some(inv) = &a.inventory else { continue };
            let Some(fe) = &inv.for_each else { continue };
            let who = format!("{}.{name}", m.name);
            let mut templates = vec![];
            strings(&inv.with, "inventory.with", &mut templates);
            let out = action_output(lib, chosen, &m.name, fe);
            let path = format!("inventory.for_each {fe}");
            let none = |_: &str| -> Option<Output> { None };
            check_reads(&who, &templates, Some((&path, out)), None, &none, report);
        }
    }
}

// ------------------------------------------------------------------- tests

/// `value[0].x` -> `value[].x`
fn without_indices(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn finish(mut report: Report) -> Vec<String> {
    let mut used = BTreeSet::new();
    report.problems.retain(|p| {
        let field = without_indices(&p.field);
        let who_matches = |who: &str| match who.strip_suffix('*') {
            Some(vendor) => p.who.starts_with(vendor),
            None => who == p.who,
        };
        let hit = ALLOWED
            .iter()
            .find(|(who, fields, _)| who_matches(who) && fields.contains(&field.as_str()));
        if let Some((who, _, _)) = hit {
            used.insert((*who, field));
        }
        hit.is_none()
    });
    let mut out: Vec<String> = report.problems.iter().map(|p| p.text.clone()).collect();
    for (who, fields, why) in ALLOWED {
        for f in *fields {
            if !used.contains(&(*who, f.to_string())) {
                out.push(format!(
                    "allow-list entry ({who}, {f}: {why}) matches nothing any more: remove it"
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn bundled_manifests_and_the_runbook_conform_to_the_vendor_specs() {
    let started = std::time::Instant::now();
    if !catalog::specs_root().is_dir() {
        println!(
            "note: {} is not here; the field-by-field spec check is skipped",
            catalog::specs_root().display()
        );
        return;
    }
    let lib = catalog::library();
    let table = catalog::read_table();
    let mut report = Report::default();
    let mut chosen = HashMap::new();
    for m in lib.catalog.manifests() {
        chosen.extend(check_manifest(m, &table, &mut report));
    }
    check_inventory_reads(&lib, &chosen, &mut report);
    match lib.runbook("shadow-ai-exposure") {
        Ok(rb) => check_runbook(&lib, &rb.runbook, &chosen, &mut report),
        Err(e) => report.problem(
            "shadow-ai-exposure",
            "",
            format!("runbooks/shadow-ai-exposure.yaml does not load: {e}"),
        ),
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    let checked = chosen.len();
    let problems = finish(report);
    println!(
        "{checked} actions checked against their spec operations in {:.1?}",
        started.elapsed()
    );
    assert!(checked >= 60, "only {checked} actions were checked");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// A manifest with the two mistakes the review found, through the same checker.
const WRONG_KLAVIYO: &str = r#"
name: klaviyo
base_url: https://a.klaviyo.com/api
actions:
  list_api_keys:
    method: GET
    path: /api-keys
    headers: { revision: "2026-07-15.pre" }
    paginate: { items: data, next_url: links.next }
    inventory: { kind: api_key, name: attributes.label, id: id }
    simulate:
      status: 200
      body: { data: [{ type: api-key, id: "k1", attributes: { label: "x" } }] }
  enable_api_key:
    method: PATCH
    path: "/api-keys/{{with.api_key_id}}"
    headers: { revision: "2026-07-15.pre" }
    body: { data: { type: api-key, id: "{{with.api_key_id}}", attributes: { status: enabled } } }
    ok: [200]
    simulate: { status: 200 }
"#;

#[test]
fn a_wrong_manifest_is_reported_by_action_field_and_operation() {
    if !catalog::specs_root().is_dir() {
        println!("note: no ../shared/specs; skipped");
        return;
    }
    let m = quench::integrations::manifest::load("klaviyo.yaml", WRONG_KLAVIYO)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::default();
    let chosen = check_manifest(&m, &catalog::read_table(), &mut report);
    assert_eq!(chosen.len(), 2);
    let all: Vec<&str> = report.problems.iter().map(|p| p.text.as_str()).collect();
    let has = |parts: &[&str]| all.iter().any(|t| parts.iter().all(|p| t.contains(p)));
    let op = "klaviyo/openapi/beta.json GET /api/api-keys";
    assert!(
        has(&[
            "klaviyo.list_api_keys: reads attributes.label",
            "get_api_keys_beta",
            op,
            "name"
        ]),
        "{all:#?}"
    );
    assert!(
        has(&[
            "klaviyo.list_api_keys: simulate.body has data[0].attributes.label",
            op
        ]),
        "{all:#?}"
    );
    assert!(
        has(&[
            "klaviyo.enable_api_key: sends data.attributes.status: \"enabled\"",
            "\"active\", \"disabled\"",
            "update_api_key_beta (klaviyo/openapi/beta.json PATCH /api/api-keys/{id})",
        ]),
        "{all:#?}"
    );
    let fields: BTreeSet<(&str, &str)> = report
        .problems
        .iter()
        .map(|p| (p.who.as_str(), p.field.as_str()))
        .collect();
    assert!(fields.contains(&("klaviyo.list_api_keys", "inventory.name")));
    assert!(fields.contains(&("klaviyo.enable_api_key", "data.attributes.status")));
}

/// A state-changing POST that claims to be a read.
const WRONG_READ: &str = r#"
name: mailchimp
base_url: "https://{{secrets.MAILCHIMP_DC}}.api.mailchimp.com/3.0"
auth: { basic: { username: quench, password: "{{secrets.MAILCHIMP_API_KEY}}" } }
actions:
  unschedule_campaign:
    method: POST
    path: "/campaigns/{{with.campaign_id}}/actions/unschedule"
    read: true
    ok: [204]
    simulate: { status: 204 }
"#;

#[test]
fn a_state_changing_post_marked_read_is_reported() {
    if !catalog::specs_root().is_dir() {
        println!("note: no ../shared/specs; skipped");
        return;
    }
    let m = quench::integrations::manifest::load("mailchimp.yaml", WRONG_READ)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::default();
    check_manifest(&m, &catalog::read_table(), &mut report);
    let all: Vec<&str> = report.problems.iter().map(|p| p.text.as_str()).collect();
    assert!(
        all.iter().any(
            |t| t.starts_with("mailchimp.unschedule_campaign: says `read: true`, but ")
                && t.contains("postCampaignsIdActionsUnschedule")
                && t.contains("is documented as changing state")
        ),
        "{all:#?}"
    );
}

/// An action with no spec operation but a documented example, which reads
/// a field the example does not have and simulates one it does not have.
const EXAMPLE_ONLY: &str = r#"
name: google-workspace
base_url: https://admin.googleapis.com/admin/directory/v1
actions:
  list_user_tokens:
    method: GET
    path: "/users/{{with.user}}/tokens"
    docs: https://developers.google.com/admin-sdk/directory/reference/rest/v1/tokens/list
    output: items
    inventory: { kind: oauth_grant, name: appName, id: clientId }
    example:
      kind: string
      items:
        - { clientId: string, displayText: string, scopes: [string], anonymous: boolean }
    simulate:
      status: 200
      body:
        kind: "admin#directory#tokenList"
        items:
          - { clientId: "c1", displayText: "ChatGPT", scopes: ["email"], anonymous: "no", nativeApp: false }
"#;

#[test]
fn a_read_missing_from_the_documented_example_is_reported_with_its_docs_url() {
    let m = quench::integrations::manifest::load("google-workspace.yaml", EXAMPLE_ONLY)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::default();
    let chosen = check_manifest(&m, &BTreeSet::new(), &mut report);
    assert!(chosen.contains_key("google-workspace.list_user_tokens"));
    let all: Vec<&str> = report.problems.iter().map(|p| p.text.as_str()).collect();
    let has = |parts: &[&str]| all.iter().any(|t| parts.iter().all(|p| t.contains(p)));
    let example = "the documented example \
                   (https://developers.google.com/admin-sdk/directory/reference/rest/v1/tokens/list)";
    assert!(
        has(&[
            "google-workspace.list_user_tokens: reads appName (inventory.name) of each `items` item",
            example,
            "the item has: anonymous, clientId, displayText, scopes",
        ]),
        "{all:#?}"
    );
    assert!(
        has(&[
            "google-workspace.list_user_tokens: simulate.body has items[0].nativeApp, not in",
            example,
        ]),
        "{all:#?}"
    );
    assert!(
        has(&[
            "google-workspace.list_user_tokens: simulate.body has items[0].anonymous as a string",
            example,
            "says boolean",
        ]),
        "{all:#?}"
    );
    assert_eq!(all.len(), 3, "{all:#?}");
    let fields: BTreeSet<(&str, &str)> = report
        .problems
        .iter()
        .map(|p| (p.who.as_str(), p.field.as_str()))
        .collect();
    assert!(fields.contains(&("google-workspace.list_user_tokens", "inventory.name")));

    // The runbook's reads go through the same operation.
    let out = |path: &str| {
        let op = &chosen["google-workspace.list_user_tokens"];
        let resp = op
            .success(&m.actions["list_user_tokens"])
            .unwrap()
            .1
            .unwrap();
        Shape::Schema(op.doc(), vec![resp])
            .walk(&segments("items"))
            .unwrap()
            .element()
            .unwrap()
            .walk(&segments(path))
            .is_ok()
    };
    assert!(out("clientId") && out("scopes.0"));
    assert!(!out("userKey"));
}

#[test]
fn an_example_is_read_as_the_schema_its_docs_template_means() {
    let doc: &'static Json = Box::leak(Box::new(json!({})));
    let doc = Doc { root: doc };
    let schema = example_schema(&json!({
        "id": "string", "count": "integer", "ratio": "number", "on": "boolean",
        "label": "Guid", "n": 3, "x": 1.5, "gone": null, "empty": [],
        "rows": [ { "a": 1 }, { "b": "string", "a": 2.5 } ]
    }));
    let ok = |v: Json| {
        let mut issues = vec![];
        schema::check(doc, &[&schema], &v, "", Mode::Response, &mut issues);
        issues.iter().map(|i| i.field.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        ok(
            json!({ "id": "1", "count": 2, "ratio": 0.5, "on": true, "label": "x", "n": 4,
            "x": 2, "gone": { "any": "thing" }, "empty": [1, "a"], "rows": [ { "a": 3.5, "b": "y" } ] })
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        ok(json!({ "gone": null, "id": null })),
        vec!["id".to_string()]
    );
    // Named in the example's own order.
    assert_eq!(
        ok(json!({ "count": 1.5, "on": "true", "rows": [ { "c": 1 } ], "more": 1 })),
        vec!["count", "on", "rows[0].c", "more"]
    );
    let walk = |p: &str| schema::walk(doc, &[&schema], &segments(p)).is_ok();
    assert!(walk("rows.b") && walk("gone.deep.below") && walk("empty.0.x"));
    assert!(!walk("rows.c") && !walk("id.length"));
}

#[test]
fn an_example_needs_the_docs_it_comes_from() {
    let src = "name: t\nbase_url: https://x.example\nactions:\n  a:\n    method: GET\n    path: /a\n    example: { ok: true }\n";
    let e = match quench::integrations::manifest::load("t.yaml", src) {
        Ok(_) => panic!("an example without docs is refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.starts_with("t.yaml:7:") && e.contains("action `a` has an `example` but no `docs`"),
        "{e}"
    );
    assert!(e.contains("hint: "), "{e}");
}

#[test]
fn the_schema_walker_follows_refs_all_of_one_of_and_additional_properties() {
    let spec = json!({ "components": { "schemas": {
        "Base": { "type": "object", "required": ["id"], "properties": { "id": { "type": "string" } } },
        "Cat": { "allOf": [ { "$ref": "#/components/schemas/Base" },
            { "properties": { "kind": { "enum": ["cat"] }, "meow": { "type": "boolean" } } } ] },
        "Dog": { "allOf": [ { "$ref": "#/components/schemas/Base" },
            { "properties": { "kind": { "enum": ["dog"] }, "bark": { "type": "integer" } } } ] },
        "Pet": { "oneOf": [ { "$ref": "#/components/schemas/Cat" }, { "$ref": "#/components/schemas/Dog" } ] },
        "Page": { "type": "object", "properties": {
            "data": { "type": "array", "items": { "$ref": "#/components/schemas/Pet" } },
            "meta": { "type": "object", "additionalProperties": true },
            "tags": { "type": "object", "additionalProperties": { "type": "string" } },
            "@odata.nextLink": { "type": ["string", "null"] },
            "note": { "type": "string", "nullable": true } } }
    }}});
    let doc = Doc { root: &spec };
    let page = json!({ "$ref": "#/components/schemas/Page" });
    let walk = |path: &str| schema::walk(doc, &[&page], &segments(path));
    // Reads: through the array into either oneOf branch, into free-form
    // objects, keys with dots in them, indices.
    for ok in [
        "data.meow",
        "data.bark",
        "data.0.id",
        "meta.a.b",
        "tags.x",
        "@odata.nextLink",
    ] {
        assert!(walk(ok).is_ok(), "{ok}");
    }
    let miss = walk("data.purr").err().expect("no purr");
    assert_eq!(miss.at, "data");
    assert!(miss.has.contains(&"meow".to_string()), "{:?}", miss.has);
    let miss = walk("note.length").err().expect("a string has no fields");
    assert!(
        miss.is.as_deref().is_some_and(|k| k.starts_with("string")),
        "{miss:?}"
    );
    let items = match walk("data") {
        Ok(Found::At(p)) => schema::items(doc, &p).expect("a list"),
        _ => panic!("data is there"),
    };
    assert!(schema::walk(doc, &items, &["kind"]).is_ok());

    // Values.
    let check = |v: Json| {
        let mut issues = vec![];
        schema::check(doc, &[&page], &v, "", Mode::Response, &mut issues);
        issues
            .iter()
            .map(|i| describe("t.a", i, Mode::Response, "X"))
            .map(|p| p.text)
            .collect::<Vec<_>>()
    };
    let good = json!({ "data": [ { "id": "1", "kind": "cat", "meow": true }, { "id": "2", "kind": "dog", "bark": 3 } ],
        "meta": { "x": [1] }, "tags": { "a": "b" }, "note": null, "@odata.nextLink": null });
    assert_eq!(check(good), Vec::<String>::new());
    let bad = check(
        json!({ "data": [ { "kind": "cow", "meow": true } ], "tags": { "a": 1 }, "extra": 1 }),
    );
    for want in [
        "t.a: simulate.body omits data[0].id, required by X",
        "t.a: simulate.body has data[0].kind: \"cow\", not in its enum (\"cat\") in X",
        "t.a: simulate.body has tags.a as a number, X says string",
        "t.a: simulate.body has extra, not in X; the response has: @odata.nextLink, data, meta, note, tags",
    ] {
        assert!(bad.iter().any(|b| b == want), "{want}\nnot in {bad:#?}");
    }
    // Requests: templated values are not judged, literal ones are.
    let mut issues = vec![];
    let pet = json!({ "$ref": "#/components/schemas/Pet" });
    schema::check(
        doc,
        &[&pet],
        &json!({ "id": "{{with.id}}", "kind": "{{with.kind}}", "meow": false }),
        "",
        Mode::Request,
        &mut issues,
    );
    assert!(issues.is_empty(), "{issues:?}");
    schema::check(
        doc,
        &[&pet],
        &json!({ "kind": "cat", "meow": "yes" }),
        "",
        Mode::Request,
        &mut issues,
    );
    assert_eq!(issues.len(), 2, "{issues:?}");
}

#[test]
fn a_fan_out_steps_list_of_lists_is_iterated_flat() {
    let spec: &'static Json = Box::leak(Box::new(json!({ "type": "array", "items": {
        "type": "object", "properties": { "id": { "type": "string" } } } })));
    let doc = Doc { root: spec };
    // A paginated action's output: its items.
    let one_call = Shape::List(Box::new(Shape::Schema(doc, vec![&spec["items"]])));
    // Run once per item of another step: one such list per item.
    let fan_out = Shape::List(Box::new(one_call.clone()));
    for shape in [one_call, fan_out] {
        let item = shape.element().expect("a list");
        assert!(item.walk(&["id"]).is_ok());
        assert!(item.walk(&["name"]).is_err());
    }
    // An action answering one object, run per item: a list of those objects.
    let per_item = Shape::List(Box::new(Shape::Schema(doc, vec![&spec["items"]])));
    assert!(per_item.element().unwrap().walk(&["id"]).is_ok());
    assert!(Shape::Schema(doc, vec![&spec["items"]]).element().is_none());
}

// ------------------------------------------------------------ the walker

/// A small resolver over OpenAPI 3 / Swagger 2 schemas held as JSON.
mod schema {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value as Json;

    /// `oneOf` branches multiplied out at one level, at most.
    const MAX_ALTERNATIVES: usize = 256;
    const MAX_DEPTH: usize = 24;

    #[derive(Clone, Copy)]
    pub(super) struct Doc<'a> {
        pub root: &'a Json,
    }

    impl<'a> Doc<'a> {
        /// Follows local `$ref`s (`#/components/...`, `#/definitions/...`).
        pub(super) fn resolve(self, mut v: &'a Json) -> &'a Json {
            for _ in 0..MAX_DEPTH {
                let Some(r) = v.get("$ref").and_then(Json::as_str) else {
                    break;
                };
                match r
                    .strip_prefix('#')
                    .and_then(|p| self.root.pointer(&percent_decode(p)))
                {
                    Some(t) => v = t,
                    None => break,
                }
            }
            v
        }
    }

    fn percent_decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                if let Ok(n) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(n);
                    i += 3;
                    continue;
                }
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[derive(Clone, Default, Debug)]
    pub(super) enum Extra<'a> {
        /// No `additionalProperties`: only the listed properties (anything,
        /// when none are listed).
        #[default]
        Unspecified,
        Forbidden,
        Any,
        Schema(Vec<&'a Json>),
    }

    /// One alternative of a schema with its `allOf` merged: what a value
    /// must be at this level.
    #[derive(Clone, Default, Debug)]
    pub(super) struct View<'a> {
        pub types: Option<BTreeSet<String>>,
        pub nullable: bool,
        /// Each property's schemas (all of them apply).
        pub props: BTreeMap<&'a str, Vec<&'a Json>>,
        pub required: BTreeSet<&'a str>,
        pub extra: Extra<'a>,
        pub items: Vec<&'a Json>,
        pub enums: Vec<Vec<Json>>,
    }

    impl<'a> View<'a> {
        fn own(s: &'a Json) -> View<'a> {
            let mut v = View::default();
            match s.get("type") {
                Some(Json::String(t)) => v.types = Some([t.clone()].into()),
                Some(Json::Array(ts)) => {
                    v.types = Some(
                        ts.iter()
                            .filter_map(|t| t.as_str().map(str::to_string))
                            .collect(),
                    )
                }
                _ => {}
            }
            v.nullable = ["nullable", "x-nullable"]
                .iter()
                .any(|k| s.get(*k).and_then(Json::as_bool) == Some(true));
            if let Some(Json::Object(p)) = s.get("properties") {
                for (k, x) in p {
                    v.props.entry(k.as_str()).or_default().push(x);
                }
            }
            if let Some(Json::Array(r)) = s.get("required") {
                v.required.extend(r.iter().filter_map(Json::as_str));
            }
            v.extra = match s.get("additionalProperties") {
                Some(Json::Bool(true)) => Extra::Any,
                Some(Json::Bool(false)) => Extra::Forbidden,
                Some(x @ Json::Object(_)) => Extra::Schema(vec![x]),
                _ => Extra::Unspecified,
            };
            if let Some(x @ Json::Object(_)) = s.get("items") {
                v.items.push(x);
            }
            if let Some(Json::Array(e)) = s.get("enum") {
                v.enums.push(e.clone());
            }
            if let Some(c) = s.get("const") {
                v.enums.push(vec![c.clone()]);
            }
            v
        }

        fn merge(&mut self, o: &View<'a>) {
            self.types = match (self.types.take(), &o.types) {
                (None, t) => t.clone(),
                (t, None) => t,
                (Some(a), Some(b)) => Some(intersect(&a, b)),
            };
            self.nullable |= o.nullable;
            for (k, x) in &o.props {
                self.props.entry(k).or_default().extend(x.iter().copied());
            }
            self.required.extend(o.required.iter().copied());
            self.extra = match (std::mem::take(&mut self.extra), &o.extra) {
                (Extra::Any, _) | (_, Extra::Any) => Extra::Any,
                (Extra::Schema(mut a), Extra::Schema(b)) => {
                    a.extend(b.iter().copied());
                    Extra::Schema(a)
                }
                (Extra::Schema(a), _) => Extra::Schema(a),
                (_, Extra::Schema(b)) => Extra::Schema(b.clone()),
                (Extra::Forbidden, _) | (_, Extra::Forbidden) => Extra::Forbidden,
                _ => Extra::Unspecified,
            };
            self.items.extend(o.items.iter().copied());
            self.enums.extend(o.enums.iter().cloned());
        }

        fn satisfiable(&self) -> bool {
            self.types.as_ref().is_none_or(|t| !t.is_empty())
        }

        fn is_array(&self) -> bool {
            !self.items.is_empty() || self.types.as_ref().is_some_and(|t| t.contains("array"))
        }

        /// An object with no listed properties and nothing forbidding more.
        fn free_form(&self) -> bool {
            self.props.is_empty()
                && matches!(self.extra, Extra::Unspecified)
                && self.types.as_ref().is_none_or(|t| t.contains("object"))
        }

        fn types_text(&self) -> String {
            let mut t: Vec<String> = self.types.iter().flatten().cloned().collect();
            if self.nullable {
                t.push("null".into());
            }
            t.join(" or ")
        }
    }

    fn intersect(a: &BTreeSet<String>, b: &BTreeSet<String>) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for t in a {
            if b.contains(t) {
                out.insert(t.clone());
            } else if (t == "integer" && b.contains("number"))
                || (t == "number" && b.contains("integer"))
            {
                out.insert("integer".to_string());
            }
        }
        out
    }

    /// The alternatives a value may match, for schemas that all apply:
    /// `allOf` merged in, `oneOf`/`anyOf` multiplied out.
    pub(super) fn alternatives<'a>(doc: Doc<'a>, parts: &[&'a Json]) -> Vec<View<'a>> {
        alts(doc, parts, 0)
    }

    fn alts<'a>(doc: Doc<'a>, parts: &[&'a Json], depth: usize) -> Vec<View<'a>> {
        let mut acc = vec![View::default()];
        for p in parts {
            let s = doc.resolve(p);
            if !s.is_object() {
                continue;
            }
            let own = View::own(s);
            for v in &mut acc {
                v.merge(&own);
            }
            if depth >= MAX_DEPTH {
                continue;
            }
            if let Some(Json::Array(all)) = s.get("allOf") {
                for sub in all {
                    acc = product(acc, &alts(doc, &[sub], depth + 1));
                }
            }
            for key in ["oneOf", "anyOf"] {
                if let Some(Json::Array(list)) = s.get(key) {
                    let branches: Vec<View> = list
                        .iter()
                        .flat_map(|b| alts(doc, &[b], depth + 1))
                        .collect();
                    if !branches.is_empty() {
                        acc = product(acc, &branches);
                    }
                }
            }
        }
        acc
    }

    fn product<'a>(acc: Vec<View<'a>>, with: &[View<'a>]) -> Vec<View<'a>> {
        let mut out = Vec::new();
        let mut first = None;
        'all: for a in &acc {
            for w in with {
                let mut m = a.clone();
                m.merge(w);
                if m.satisfiable() {
                    out.push(m);
                    if out.len() >= MAX_ALTERNATIVES {
                        break 'all;
                    }
                } else if first.is_none() {
                    first = Some(m);
                }
            }
        }
        if out.is_empty() {
            out.extend(first);
        }
        out
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) enum Mode {
        /// What an action sends: templated values are not judged, readOnly
        /// properties are not required.
        Request,
        /// A simulated answer: writeOnly properties are not required.
        Response,
    }

    #[derive(Debug, Clone)]
    pub(super) struct Issue {
        /// `data.attributes.status`, `data[0].id`
        pub field: String,
        pub kind: IssueKind,
    }

    #[derive(Debug, Clone)]
    pub(super) enum IssueKind {
        Unknown { parent: String, has: Vec<String> },
        NotInEnum { value: Json, allowed: Vec<Json> },
        Missing,
        WrongType { found: &'static str, want: String },
    }

    fn join(at: &str, k: &str) -> String {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    }

    fn kind(v: &Json) -> &'static str {
        match v {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "a list",
            Json::Object(_) => "an object",
        }
    }

    fn is_type(t: &str, v: &Json) -> bool {
        match t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "null" => v.is_null(),
            _ => true,
        }
    }

    fn same(a: &Json, b: &Json) -> bool {
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        }
    }

    /// `readOnly` / `writeOnly` on a property (or one of its `allOf` parts).
    fn flag(doc: Doc, p: &Json, name: &str) -> bool {
        let s = doc.resolve(p);
        s.get(name).and_then(Json::as_bool) == Some(true)
            || s.get("allOf")
                .and_then(Json::as_array)
                .is_some_and(|l| l.iter().any(|x| flag(doc, x, name)))
    }

    /// Validates `v` against the schemas `parts` (all apply); the issues of
    /// the closest alternative when none fits: the one with the fewest wrong
    /// values (an enum or type acts as the discriminator), then the fewest
    /// issues.
    pub(super) fn check<'a>(
        doc: Doc<'a>,
        parts: &[&'a Json],
        v: &Json,
        at: &str,
        mode: Mode,
        out: &mut Vec<Issue>,
    ) {
        let rank = |issues: &[Issue]| {
            let wrong = issues
                .iter()
                .filter(|i| {
                    matches!(
                        i.kind,
                        IssueKind::NotInEnum { .. } | IssueKind::WrongType { .. }
                    )
                })
                .count();
            (wrong, issues.len())
        };
        let mut best: Option<Vec<Issue>> = None;
        for alt in alternatives(doc, parts) {
            let mut mine = vec![];
            check_view(doc, &alt, v, at, mode, &mut mine);
            if mine.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| rank(&mine) < rank(b)) {
                best = Some(mine);
            }
        }
        out.extend(best.unwrap_or_default());
    }

    fn check_view<'a>(
        doc: Doc<'a>,
        view: &View<'a>,
        v: &Json,
        at: &str,
        mode: Mode,
        out: &mut Vec<Issue>,
    ) {
        if mode == Mode::Request && v.as_str().is_some_and(|s| s.contains("{{")) {
            return;
        }
        let wrong = |found| Issue {
            field: at.to_string(),
            kind: IssueKind::WrongType {
                found,
                want: view.types_text(),
            },
        };
        if v.is_null() {
            if !(view.nullable || view.types.as_ref().is_none_or(|t| t.contains("null"))) {
                out.push(wrong("null"));
            }
            return;
        }
        if let Some(types) = &view.types {
            if !types.iter().any(|t| is_type(t, v)) {
                out.push(wrong(kind(v)));
                return;
            }
        }
        if let Some(allowed) = view.enums.iter().find(|e| !e.iter().any(|x| same(x, v))) {
            out.push(Issue {
                field: at.to_string(),
                kind: IssueKind::NotInEnum {
                    value: v.clone(),
                    allowed: allowed.clone(),
                },
            });
        }
        match v {
            Json::Object(m) => {
                for (k, x) in m {
                    let field = join(at, k);
                    if let Some(ps) = view.props.get(k.as_str()) {
                        check(doc, ps, x, &field, mode, out);
                        continue;
                    }
                    match &view.extra {
                        Extra::Any => {}
                        Extra::Schema(s) => check(doc, s, x, &field, mode, out),
                        Extra::Unspecified if view.props.is_empty() => {}
                        _ => out.push(Issue {
                            field,
                            kind: IssueKind::Unknown {
                                parent: at.to_string(),
                                has: view.props.keys().map(|k| k.to_string()).collect(),
                            },
                        }),
                    }
                }
                let exempt = match mode {
                    Mode::Request => "readOnly",
                    Mode::Response => "writeOnly",
                };
                for r in &view.required {
                    if m.contains_key(*r) {
                        continue;
                    }
                    let skip = view
                        .props
                        .get(r)
                        .is_some_and(|ps| ps.iter().any(|p| flag(doc, p, exempt)));
                    if !skip {
                        out.push(Issue {
                            field: join(at, r),
                            kind: IssueKind::Missing,
                        });
                    }
                }
            }
            Json::Array(a) if !view.items.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    check(doc, &view.items, x, &format!("{at}[{i}]"), mode, out);
                }
            }
            _ => {}
        }
    }

    pub(super) enum Found<'a> {
        /// The schemas at the end of the path (all apply).
        At(Vec<&'a Json>),
        /// Somewhere free-form: anything may be there.
        Anything,
    }

    /// Where a path left the schema.
    #[derive(Debug, Clone, Default)]
    pub(super) struct Miss {
        depth: usize,
        /// The part of the path that was there.
        pub at: String,
        /// What is there instead.
        pub has: Vec<String>,
        /// Set when `at` is a scalar.
        pub is: Option<String>,
    }

    /// Follows a dotted path (keys may hold dots, like `@odata.nextLink`;
    /// lists are walked into, numbers index them).
    pub(super) fn walk<'a>(
        doc: Doc<'a>,
        parts: &[&'a Json],
        segs: &[&str],
    ) -> Result<Found<'a>, Miss> {
        walk_at(doc, parts, segs, 0, 0)
    }

    fn walk_at<'a>(
        doc: Doc<'a>,
        parts: &[&'a Json],
        segs: &[&str],
        done: usize,
        hops: usize,
    ) -> Result<Found<'a>, Miss> {
        if done == segs.len() {
            return Ok(Found::At(parts.to_vec()));
        }
        let mut best: Option<Miss> = None;
        for alt in alternatives(doc, parts) {
            match step(doc, &alt, segs, done, hops) {
                Ok(f) => return Ok(f),
                Err(m) => {
                    if best.as_ref().is_none_or(|b| m.depth > b.depth) {
                        best = Some(m);
                    }
                }
            }
        }
        Err(best.unwrap_or_default())
    }

    fn step<'a>(
        doc: Doc<'a>,
        alt: &View<'a>,
        segs: &[&str],
        done: usize,
        hops: usize,
    ) -> Result<Found<'a>, Miss> {
        if alt.is_array() {
            if alt.items.is_empty() {
                return Ok(Found::Anything);
            }
            if segs[done].parse::<usize>().is_ok() {
                return walk_at(doc, &alt.items, segs, done + 1, 0);
            }
            if hops < 4 {
                return walk_at(doc, &alt.items, segs, done, hops + 1);
            }
        }
        let mut best: Option<Miss> = None;
        for end in (done + 1..=segs.len()).rev() {
            let key = segs[done..end].join(".");
            if let Some(ps) = alt.props.get(key.as_str()) {
                match walk_at(doc, ps, segs, end, 0) {
                    Ok(f) => return Ok(f),
                    Err(m) => {
                        if best.as_ref().is_none_or(|b| m.depth > b.depth) {
                            best = Some(m);
                        }
                    }
                }
            }
        }
        if let Some(m) = best {
            return Err(m);
        }
        match &alt.extra {
            Extra::Any => return Ok(Found::Anything),
            Extra::Schema(s) => return walk_at(doc, s, segs, done + 1, 0),
            _ if alt.free_form() => return Ok(Found::Anything),
            _ => {}
        }
        let scalar =
            alt.props.is_empty() && alt.types.as_ref().is_some_and(|t| !t.contains("object"));
        Err(Miss {
            depth: done,
            at: segs[..done].join("."),
            has: alt.props.keys().map(|k| k.to_string()).collect(),
            is: scalar.then(|| alt.types_text()),
        })
    }

    /// Whether every key along `segs` is required (lists walked into), so
    /// the vendor may not leave it out; None when the path is not there.
    pub(super) fn required_along<'a>(
        doc: Doc<'a>,
        parts: &[&'a Json],
        segs: &[&str],
    ) -> Option<bool> {
        required_at(doc, parts, segs, 0)
    }

    fn required_at<'a>(
        doc: Doc<'a>,
        parts: &[&'a Json],
        segs: &[&str],
        depth: usize,
    ) -> Option<bool> {
        if segs.is_empty() {
            return Some(true);
        }
        if depth > MAX_DEPTH {
            return None;
        }
        let mut seen = None;
        for alt in alternatives(doc, parts) {
            if alt.is_array() && !alt.items.is_empty() {
                let rest = if segs[0].parse::<usize>().is_ok() {
                    &segs[1..]
                } else {
                    segs
                };
                match required_at(doc, &alt.items, rest, depth + 1) {
                    Some(true) => return Some(true),
                    Some(false) => seen = Some(false),
                    None => {}
                }
                continue;
            }
            for end in (1..=segs.len()).rev() {
                let key = segs[..end].join(".");
                let Some(ps) = alt.props.get(key.as_str()) else {
                    continue;
                };
                if let Some(r) = required_at(doc, ps, &segs[end..], depth + 1) {
                    if r && alt.required.contains(key.as_str()) {
                        return Some(true);
                    }
                    seen = Some(false);
                }
            }
        }
        seen
    }

    /// The element schemas of a list schema (its first list alternative);
    /// None when it is no list.
    pub(super) fn items<'a>(doc: Doc<'a>, parts: &[&'a Json]) -> Option<Vec<&'a Json>> {
        alternatives(doc, parts)
            .into_iter()
            .find(View::is_array)
            .map(|a| a.items)
    }
}
