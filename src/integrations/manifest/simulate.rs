//! Reading a manifest's `simulate:` blocks and its `tenant:`: what the
//! built-in simulator answers, checked against what the action sends.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use serde_yaml::Value;

use crate::runbook::load::yaml_to_json;
use crate::source::check::{kind_of, Checker};
use crate::source::diagnostic::did_you_mean;
use crate::source::yaml::YPath;

use super::read::string_map;
use super::*;

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

fn simulate_keys() -> Vec<&'static str> {
    let mut keys = vec!["status", "body", "headers"];
    keys.extend_from_slice(EFFECT_KEYS);
    keys
}

/// What an action sends, for checking what its `simulate` reads of the
/// request: a name the request never carries resolves to nothing, and a
/// delete of "nothing" answers not-found, which counts as already done.
pub(super) struct Sent<'a> {
    pub(super) path: &'a str,
    pub(super) query: &'a BTreeMap<String, String>,
    pub(super) form: &'a BTreeMap<String, String>,
    pub(super) body: Option<&'a Json>,
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

pub(super) fn read_simulate(
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
pub(super) fn read_tenant(
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
