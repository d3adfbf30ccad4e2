//! YAML to checked `Runbook`, reporting every problem in one pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value as Json;
use serde_yaml::Value;

use super::model::*;
use crate::source::check::{kind_of, show, Checker};
use crate::source::diagnostic::{did_you_mean, Diagnostic, Diagnostics};
use crate::source::yaml::{YPath, YamlDoc};
use crate::template;

/// What a runbook may refer to outside itself.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// integration name -> its action names
    pub integrations: BTreeMap<String, BTreeSet<String>>,
    /// notice template names (`customers`, `customers-EU`, ...)
    pub notice_templates: BTreeSet<String>,
    /// The rule table's vocabularies an input's `values:` may name:
    /// `jurisdictions` (the codes whose clocks it knows), `data_elements`.
    pub vocabularies: BTreeMap<String, Vec<String>>,
}

/// Inputs the rule table reads by name (DESIGN.md): declared without
/// `values:`, they take the vocabulary of the same name, so a runbook
/// written before `values:` (and every stored incident's) keeps its check.
const VOCABULARY_INPUTS: &[&str] = &["jurisdictions", "data_elements"];

const TOP_KEYS: &[&str] = &["version", "name", "title", "description", "inputs", "steps"];
const INPUT_KEYS: &[&str] = &[
    "type",
    "required",
    "default",
    "description",
    "max_length",
    "values",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "description",
    "action",
    "notice",
    "approval",
    "manual",
    "wait",
    "needs",
    "for_each",
    "concurrency",
    "with",
    "when",
    "retry",
    "timeout",
    "on_failure",
    "phase",
    "verify",
];
const VERIFY_KEYS: &[&str] = &["remains", "shows", "label"];
const RETRY_KEYS: &[&str] = &["attempts", "backoff", "max_backoff"];
const NOTICE_KEYS: &[&str] = &["audience", "jurisdictions", "template"];
const APPROVAL_KEYS: &[&str] = &["approvers", "prompt"];
const MANUAL_KEYS: &[&str] = &["assignee", "instructions"];
const INCIDENT_FIELDS: &[&str] = &["id", "declared_at", "declared_by", "severity", "runbook"];
pub const DEFAULT_CONCURRENCY: usize = 10;

/// Loads and fully validates one runbook file.
/// The most steps a runbook may have: real ones have dozens, and every
/// check and every status read walks them all.
pub const MAX_STEPS: usize = 1_000;

pub fn load(file: &str, src: &str, known: &Known) -> Result<Runbook, Diagnostics> {
    let doc = YamlDoc::parse(file, src).map_err(|d| Diagnostics(vec![d]))?;
    let mut c = Checker::new(&doc);
    let rb = read(&mut c, file, known);
    if let Some((rb, yaml_index)) = &rb {
        cross_check(&mut c, rb, yaml_index, known);
    }
    match rb {
        Some((rb, _)) if c.diags.is_empty() => Ok(rb),
        _ => Err(Diagnostics(c.diags).sorted()),
    }
}

/// The runbook, and for each of its steps the step's index in the YAML
/// `steps` list (a step that is not even a map is left out).
fn read(c: &mut Checker, file: &str, known: &Known) -> Option<(Runbook, Vec<usize>)> {
    let root = YPath::root();
    let doc_value = c.doc.value.clone();
    let top = c
        .map(
            &root,
            &doc_value,
            "the runbook",
            TOP_KEYS,
            &["version", "name", "steps"],
        )?
        .clone();

    if let Some(v) = top.get("version") {
        if v.as_u64() != Some(1) {
            c.error_hint(
                &root.key("version"),
                format!("unsupported runbook version {}", show(v)),
                "this quench reads `version: 1`",
            );
        }
    }
    let name = top
        .get("name")
        .and_then(|v| c.string(&root.key("name"), v, "`name`"))
        .unwrap_or_default();
    if !name.is_empty() {
        if !is_id(&name) {
            c.error_hint(
                &root.key("name"),
                format!("runbook name \"{name}\" must use only a-z, 0-9 and -"),
                "the name is also the file name without .yaml",
            );
        }
        let stem = std::path::Path::new(file)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if !stem.is_empty() && stem != name && file.ends_with(".yaml") {
            c.error_hint(
                &root.key("name"),
                format!("runbook name \"{name}\" does not match its file name \"{stem}.yaml\""),
                format!("rename the file to {name}.yaml or set `name: {stem}`"),
            );
        }
    }
    let title = top
        .get("title")
        .and_then(|v| c.string(&root.key("title"), v, "`title`"))
        .unwrap_or_else(|| name.clone());

    let mut inputs = Vec::new();
    if let Some(v) = top.get("inputs") {
        let p = root.key("inputs");
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let Value::String(iname) = k else {
                        c.error(
                            &p,
                            format!("input names must be strings, found {}", show(k)),
                        );
                        continue;
                    };
                    if let Some(decl) = read_input(c, &p.key(iname), iname, v, known) {
                        inputs.push(decl);
                    }
                }
            }
            other => c.error(
                &p,
                format!("`inputs` must be a map, found {}", kind_of(other)),
            ),
        }
    }

    let mut steps = Vec::new();
    let mut yaml_index = Vec::new();
    if let Some(v) = top.get("steps") {
        let p = root.key("steps");
        match v {
            Value::Sequence(items) => {
                if items.is_empty() {
                    c.error(&p, "`steps` is empty: a runbook needs at least one step");
                }
                if items.len() > MAX_STEPS {
                    c.error_hint(
                        &p,
                        format!("{} steps; a runbook has at most {MAX_STEPS}", items.len()),
                        "fan out over a list with `for_each` instead of writing a step per item",
                    );
                    return None;
                }
                for (i, s) in items.iter().enumerate() {
                    if let Some(step) = read_step(c, &p.index(i), s) {
                        steps.push(step);
                        yaml_index.push(i);
                    }
                }
            }
            other => c.error(
                &p,
                format!("`steps` must be a list, found {}", kind_of(other)),
            ),
        }
    }
    Some((
        Runbook {
            name,
            title,
            inputs,
            steps,
        },
        yaml_index,
    ))
}

pub fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
}

fn read_input(
    c: &mut Checker,
    p: &YPath,
    name: &str,
    v: &Value,
    known: &Known,
) -> Option<InputDecl> {
    let m = c
        .map(p, v, &format!("input `{name}`"), INPUT_KEYS, &["type"])?
        .clone();
    let ty = m.get("type").and_then(|t| {
        let tp = p.key("type");
        let s = c.string(&tp, t, "`type`")?;
        match InputType::parse(&s) {
            Some(ty) => Some(ty),
            None => {
                let hint = match did_you_mean(&s, InputType::NAMES) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!("one of: {}", InputType::NAMES.join(", ")),
                };
                c.error_hint(&tp, format!("unknown input type \"{s}\""), hint);
                None
            }
        }
    })?;
    let required = m
        .get("required")
        .and_then(|v| c.boolean(&p.key("required"), v, "`required`"))
        .unwrap_or(false);
    let description = m
        .get("description")
        .and_then(|v| c.string(&p.key("description"), v, "`description`"));
    let max_length = m.get("max_length").and_then(|v| {
        let mp = p.key("max_length");
        match v.as_u64() {
            Some(n) if (1..=crate::runbook::inputs::MAX_LENGTH_CEILING as u64).contains(&n) => {
                Some(n as usize)
            }
            _ => {
                c.error(
                    &mp,
                    format!(
                        "`max_length` of input `{name}` must be a whole number of characters from 1 to {}",
                        crate::runbook::inputs::MAX_LENGTH_CEILING
                    ),
                );
                None
            }
        }
    });
    let default = m.get("default").and_then(|d| {
        let dp = p.key("default");
        let json = yaml_to_json(d);
        match coerce_input(ty, &json) {
            Ok(v) => Some(v),
            Err(msg) => {
                c.error(&dp, format!("default of input `{name}` {msg}"));
                None
            }
        }
    });
    let values = read_values(c, p, name, ty, m.get("values"), known);
    if let (Some(vocab), Some(d)) = (&values, &default) {
        let items: Vec<(YPath, &Json)> = match d {
            Json::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, x)| (p.key("default").index(i), x))
                .collect(),
            other => vec![(p.key("default"), other)],
        };
        for (at, x) in items {
            let text = crate::template::plain(x);
            if !vocab.values.contains(&text) {
                c.error_hint(
                    &at,
                    format!("default of input `{name}`: \"{text}\" is not one of its values"),
                    vocabulary_hint(&text, vocab),
                );
            }
        }
    }
    Some(InputDecl {
        name: name.to_string(),
        ty,
        required,
        default,
        description,
        max_length,
        values,
    })
}

/// `values:` is a list of strings or the name of one of the rule table's
/// vocabularies; the inputs the rule table reads take theirs unasked.
fn read_values(
    c: &mut Checker,
    p: &YPath,
    name: &str,
    ty: InputType,
    v: Option<&Value>,
    known: &Known,
) -> Option<Vocabulary> {
    let vp = p.key("values");
    let named = |c: &mut Checker, vocab: &str| -> Option<Vocabulary> {
        match known.vocabularies.get(vocab) {
            Some(values) => Some(Vocabulary {
                name: Some(vocab.to_string()),
                values: values.clone(),
            }),
            None => {
                let names: Vec<&str> = known.vocabularies.keys().map(String::as_str).collect();
                let hint = match did_you_mean(vocab, names.iter().copied()) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!("list the values, or name one of: {}", names.join(", ")),
                };
                c.error_hint(&vp, format!("no vocabulary named \"{vocab}\""), hint);
                None
            }
        }
    };
    let Some(v) = v else {
        return VOCABULARY_INPUTS
            .contains(&name)
            .then(|| known.vocabularies.get(name))
            .flatten()
            .map(|values| Vocabulary {
                name: Some(name.to_string()),
                values: values.clone(),
            });
    };
    if !matches!(ty, InputType::List | InputType::String) {
        c.error(
            &vp,
            format!(
                "`values` fits a list or string input; `{name}` is {}",
                article(ty)
            ),
        );
        return None;
    }
    match v {
        Value::String(vocab) => named(c, vocab),
        Value::Sequence(_) => {
            let values = c.string_list(&vp, v, "`values`")?;
            if values.is_empty() {
                c.error(&vp, format!("`values` of input `{name}` lists nothing"));
                return None;
            }
            Some(Vocabulary { name: None, values })
        }
        other => {
            c.error(
                &vp,
                format!(
                    "`values` must be a list of strings or a vocabulary's name, found {}",
                    kind_of(other)
                ),
            );
            None
        }
    }
}

/// Advice for a value outside `vocab`: the nearest one, else them all.
pub fn vocabulary_hint(value: &str, vocab: &Vocabulary) -> String {
    did_you_mean(value, vocab.values.iter().map(String::as_str))
        .map(|m| format!("did you mean `{m}`?"))
        .unwrap_or_else(|| format!("known: {}", vocab.values.join(", ")))
}

/// Checks a JSON value against an input type (defaults and `--input` values).
pub fn coerce_input(ty: InputType, v: &Json) -> Result<Json, String> {
    let ok = match (ty, v) {
        (InputType::String, Json::String(_)) => true,
        (InputType::Integer, Json::Number(n)) => n.is_i64() || n.is_u64(),
        (InputType::Boolean, Json::Bool(_)) => true,
        (InputType::List, Json::Array(_)) => true,
        (InputType::Timestamp, Json::String(s)) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        _ => false,
    };
    if ok {
        Ok(v.clone())
    } else {
        Err(format!("must be {}, found {v}", article(ty)))
    }
}

pub fn article(ty: InputType) -> &'static str {
    match ty {
        InputType::String => "a string",
        InputType::Integer => "an integer",
        InputType::Boolean => "a boolean",
        InputType::List => "a list",
        InputType::Timestamp => "an RFC 3339 timestamp",
    }
}

pub fn yaml_to_json(v: &Value) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// A step whose kind is broken still comes back (with a placeholder kind,
/// after its diagnostic) so that cross checks know its id and `needs`
/// instead of reporting every reference to it as unknown.
fn read_step(c: &mut Checker, p: &YPath, v: &Value) -> Option<Step> {
    let m = c.map(p, v, "a step", STEP_KEYS, &["id"])?.clone();
    let diags_before = c.diags.len();
    let id = m
        .get("id")
        .and_then(|v| c.string(&p.key("id"), v, "`id`"))
        .unwrap_or_default();
    if !id.is_empty() && !is_id(&id) {
        c.error_hint(
            &p.key("id"),
            format!("step id \"{id}\" must use only a-z, 0-9 and -"),
            "for example `revoke-grants`",
        );
    }
    let present: Vec<&str> = StepKind::KEYS
        .iter()
        .copied()
        .filter(|k| m.contains_key(*k))
        .collect();
    let what = if id.is_empty() {
        "step".to_string()
    } else {
        format!("step `{id}`")
    };
    let kind = match present.as_slice() {
        [] => {
            c.error_hint(
                p,
                format!("{what} has no kind"),
                "give it exactly one of: action, notice, approval, manual, wait",
            );
            None
        }
        [k] => read_kind(c, p, k, &m[*k]),
        [_, second, ..] => {
            c.push(
                c.doc
                    .key_error(&p.key(second), format!("{what} has both `{}` and `{second}`", present[0]))
                    .with_hint("a step has exactly one of: action, notice, approval, manual, wait; split it in two"),
            );
            None
        }
    };
    let needs = m
        .get("needs")
        .and_then(|v| c.string_list(&p.key("needs"), v, "`needs`"))
        .unwrap_or_default();
    let for_each = m
        .get("for_each")
        .and_then(|v| c.string(&p.key("for_each"), v, "`for_each`"));
    if let Some(fe) = &for_each {
        if fe.contains("{{") {
            c.error_hint(
                &p.key("for_each"),
                format!("`for_each` is a context path, not a template: \"{fe}\""),
                "write it without braces, e.g. steps.find-grants.output.tokens",
            );
        }
    }
    let concurrency = m
        .get("concurrency")
        .and_then(|v| {
            let n = c.uint(&p.key("concurrency"), v, "`concurrency`")?;
            if n == 0 {
                c.error(&p.key("concurrency"), "`concurrency` must be at least 1");
                return None;
            }
            Some(n as usize)
        })
        .unwrap_or(DEFAULT_CONCURRENCY);
    let with = m.get("with").map(yaml_to_json).unwrap_or(Json::Null);
    if let Some(w) = m.get("with") {
        if !matches!(w, Value::Mapping(_)) {
            c.error(
                &p.key("with"),
                format!("`with` must be a map, found {}", kind_of(w)),
            );
        }
    }
    let when = m
        .get("when")
        .and_then(|v| c.string(&p.key("when"), v, "`when`"));
    let retry = m
        .get("retry")
        .and_then(|v| read_retry(c, &p.key("retry"), v))
        .unwrap_or_default();
    let timeout = m
        .get("timeout")
        .and_then(|v| c.duration(&p.key("timeout"), v, "`timeout`"));
    let on_failure = m
        .get("on_failure")
        .and_then(|v| {
            let s = c.string(&p.key("on_failure"), v, "`on_failure`")?;
            match s.as_str() {
                "abort" => Some(OnFailure::Abort),
                "continue" => Some(OnFailure::Continue),
                _ => {
                    c.error_hint(
                        &p.key("on_failure"),
                        format!("unknown on_failure \"{s}\""),
                        "use abort (the default) or continue",
                    );
                    None
                }
            }
        })
        .unwrap_or(OnFailure::Abort);
    let phase = m.get("phase").and_then(|v| {
        let s = c.string(&p.key("phase"), v, "`phase`")?;
        let ph = Phase::parse(&s);
        if ph.is_none() {
            c.error_hint(
                &p.key("phase"),
                format!("unknown phase \"{s}\""),
                "use contain, notify or recover",
            );
        }
        ph
    });
    let description = m
        .get("description")
        .and_then(|v| c.string(&p.key("description"), v, "`description`"));
    let verify = m.get("verify").and_then(|v| {
        let vp = p.key("verify");
        let vm = c
            .map(&vp, v, "`verify`", VERIFY_KEYS, &["remains"])?
            .clone();
        if !matches!(kind, Some(StepKind::Action { .. }) | None) {
            c.error_hint(
                &vp,
                "`verify` belongs on an action step",
                "re-read the platform with a list action and say what must not remain",
            );
        }
        let text = |c: &mut Checker, k: &str| {
            vm.get(k)
                .and_then(|v| c.string(&vp.key(k), v, &format!("`verify.{k}`")))
        };
        Some(Verify {
            remains: text(c, "remains")?,
            shows: text(c, "shows"),
            label: text(c, "label"),
        })
    });
    if kind.is_none() && c.diags.len() == diags_before {
        // Every reader records why it failed; this keeps a placeholder from ever loading.
        c.error(p, format!("{what} has an invalid kind"));
    }
    Some(Step {
        id,
        kind: kind.unwrap_or(StepKind::Wait(std::time::Duration::ZERO)),
        needs,
        for_each,
        concurrency,
        with,
        when,
        retry,
        timeout,
        on_failure,
        phase,
        description,
        verify,
    })
}

fn read_retry(c: &mut Checker, p: &YPath, v: &Value) -> Option<RetryPolicy> {
    let m = c.map(p, v, "`retry`", RETRY_KEYS, &[])?.clone();
    let mut r = RetryPolicy::default();
    if let Some(v) = m.get("attempts") {
        let n = c.uint(&p.key("attempts"), v, "`retry.attempts`")?;
        if n == 0 {
            c.error(
                &p.key("attempts"),
                "`retry.attempts` must be at least 1 (the first try counts)",
            );
            return None;
        }
        r.attempts = n.min(u64::from(u32::MAX)) as u32;
    }
    if let Some(v) = m.get("backoff") {
        r.backoff = c.duration(&p.key("backoff"), v, "`retry.backoff`")?;
    }
    if let Some(v) = m.get("max_backoff") {
        r.max_backoff = c.duration(&p.key("max_backoff"), v, "`retry.max_backoff`")?;
    }
    Some(r)
}

fn read_kind(c: &mut Checker, p: &YPath, key: &str, v: &Value) -> Option<StepKind> {
    let kp = p.key(key);
    match key {
        "action" => {
            let s = c.string(&kp, v, "`action`")?;
            match s.split_once('.') {
                Some((i, a)) if !i.is_empty() && !a.is_empty() => Some(StepKind::Action {
                    integration: i.to_string(),
                    action: a.to_string(),
                }),
                _ => {
                    c.error_hint(
                        &kp,
                        format!("action \"{s}\" must be written <integration>.<action>"),
                        "for example `hubspot.list_connected_apps`",
                    );
                    None
                }
            }
        }
        "notice" => {
            let m = c
                .map(&kp, v, "`notice`", NOTICE_KEYS, &["audience"])?
                .clone();
            let audience = m
                .get("audience")
                .and_then(|v| c.string(&kp.key("audience"), v, "`notice.audience`"))?;
            let jurisdictions = match m.get("jurisdictions") {
                None => None,
                Some(Value::String(s)) => Some(Jurisdictions::Path(s.clone())),
                Some(v @ Value::Sequence(_)) => c
                    .string_list(&kp.key("jurisdictions"), v, "`notice.jurisdictions`")
                    .map(Jurisdictions::List),
                Some(other) => {
                    c.error(
                        &kp.key("jurisdictions"),
                        format!(
                            "`notice.jurisdictions` must be a context path or a list of codes, found {}",
                            kind_of(other)
                        ),
                    );
                    None
                }
            };
            let template = m
                .get("template")
                .and_then(|v| c.string(&kp.key("template"), v, "`notice.template`"));
            Some(StepKind::Notice(NoticeSpec {
                audience,
                jurisdictions,
                template,
            }))
        }
        "approval" => {
            let m = c
                .map(&kp, v, "`approval`", APPROVAL_KEYS, &["approvers"])?
                .clone();
            let approvers = m
                .get("approvers")
                .and_then(|v| c.string_list(&kp.key("approvers"), v, "`approval.approvers`"))?;
            if approvers.is_empty() {
                c.error(&kp.key("approvers"), "`approval.approvers` names no role");
            }
            let prompt = m
                .get("prompt")
                .and_then(|v| c.string(&kp.key("prompt"), v, "`approval.prompt`"));
            Some(StepKind::Approval { approvers, prompt })
        }
        "manual" => match v {
            Value::String(s) => Some(StepKind::Manual {
                assignee: None,
                instructions: s.clone(),
            }),
            _ => {
                let m = c
                    .map(&kp, v, "`manual`", MANUAL_KEYS, &["instructions"])?
                    .clone();
                let instructions = m
                    .get("instructions")
                    .and_then(|v| c.string(&kp.key("instructions"), v, "`manual.instructions`"))?;
                let assignee = m
                    .get("assignee")
                    .and_then(|v| c.string(&kp.key("assignee"), v, "`manual.assignee`"));
                Some(StepKind::Manual {
                    assignee,
                    instructions,
                })
            }
        },
        "wait" => c.duration(&kp, v, "`wait`").map(StepKind::Wait),
        _ => None,
    }
}

/// Checks that need the whole runbook: ids, the graph, references, templates.
/// `yaml_index[i]` is where `rb.steps[i]` sits in the YAML `steps` list.
fn cross_check(c: &mut Checker, rb: &Runbook, yaml_index: &[usize], known: &Known) {
    let steps_path = YPath::root().key("steps");
    let index = check_ids(c, rb, yaml_index);
    check_needs(c, rb, yaml_index, &index);
    let graph = crate::runbook::graph::Graph::new(rb);
    check_cycle(c, rb, &graph, &index);

    // Declared in the YAML, even where the declaration itself is broken
    // (reported already): a reference to it is not "unknown".
    let doc = c.doc;
    let input_names: Vec<&str> = doc.value["inputs"]
        .as_mapping()
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (s, &si) in rb.steps.iter().zip(yaml_index) {
        let sp = steps_path.index(si);
        let deps = Deps {
            graph: &graph,
            step: &s.id,
        };
        match &s.kind {
            StepKind::Action {
                integration,
                action,
            } => check_action_ref(c, &sp, integration, action, known),
            StepKind::Notice(n) => {
                check_notice_ref(c, &sp, n, known);
                if let Some(Jurisdictions::Path(path)) = &n.jurisdictions {
                    let at = sp.key("notice").key("jurisdictions");
                    check_path(c, rb, &at, path, &deps, "`notice.jurisdictions`");
                }
            }
            _ => {}
        }
        if let Some(fe) = s.for_each.as_ref().filter(|fe| !fe.contains("{{")) {
            check_path(c, rb, &sp.key("for_each"), fe, &deps, "`for_each`");
        }
        check_step_templates(c, rb, s, si, &deps, &input_names);
    }
}

/// Reports duplicate ids; returns id -> YAML index of the step that
/// defines it first.
fn check_ids<'r>(
    c: &mut Checker,
    rb: &'r Runbook,
    yaml_index: &[usize],
) -> HashMap<&'r str, usize> {
    let steps_path = YPath::root().key("steps");
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (s, &i) in rb.steps.iter().zip(yaml_index) {
        if s.id.is_empty() {
            continue;
        }
        if let Some(first) = seen.get(s.id.as_str()) {
            let first_line = c.doc.pos(&steps_path.index(*first).key("id")).line;
            c.error_hint(
                &steps_path.index(i).key("id"),
                format!("duplicate step id \"{}\"", s.id),
                format!("first defined on line {first_line}; step ids must be unique"),
            );
        } else {
            seen.insert(&s.id, i);
        }
    }
    seen
}

fn check_needs(c: &mut Checker, rb: &Runbook, yaml_index: &[usize], index: &HashMap<&str, usize>) {
    let steps_path = YPath::root().key("steps");
    for (s, &si) in rb.steps.iter().zip(yaml_index) {
        let sp = steps_path.index(si);
        for (j, n) in s.needs.iter().enumerate() {
            if !index.contains_key(n.as_str()) {
                let hint = match did_you_mean(n, index.keys().copied()) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => "`needs` lists ids of other steps in this runbook".to_string(),
                };
                c.error_hint(
                    &sp.key("needs").index(j),
                    format!("`needs` names unknown step \"{n}\""),
                    hint,
                );
            } else if n == &s.id {
                c.error(
                    &sp.key("needs").index(j),
                    format!("step \"{n}\" needs itself"),
                );
            }
        }
    }
}

/// Reports one dependency cycle, at the `needs` entry that closes it.
fn check_cycle(
    c: &mut Checker,
    rb: &Runbook,
    graph: &crate::runbook::graph::Graph,
    index: &HashMap<&str, usize>,
) {
    let Some(cycle) = graph.cycle() else {
        return;
    };
    let (first, next) = (&cycle[0], &cycle[1]);
    if let Some(&si) = index.get(first.as_str()) {
        let j = rb
            .step(first)
            .and_then(|s| s.needs.iter().position(|n| n == next))
            .unwrap_or(0);
        c.error_hint(
            &YPath::root().key("steps").index(si).key("needs").index(j),
            format!("dependency cycle: {}", cycle.join(" -> ")),
            "remove one of these `needs` so the steps can be ordered",
        );
    }
}

/// An action names an installed integration and one of its actions.
fn check_action_ref(c: &mut Checker, sp: &YPath, integration: &str, action: &str, known: &Known) {
    match known.integrations.get(integration) {
        None => {
            let names = known.integrations.keys().map(String::as_str);
            let hint = match did_you_mean(integration, names) {
                Some(m) => format!("did you mean `{m}`?"),
                None => format!(
                    "known integrations: {}",
                    known
                        .integrations
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            c.error_hint(
                &sp.key("action"),
                format!(
                    "unknown integration \"{integration}\" in action \"{integration}.{action}\""
                ),
                hint,
            );
        }
        Some(actions) if !actions.contains(action) => {
            let hint = match did_you_mean(action, actions.iter().map(String::as_str)) {
                Some(m) => format!("did you mean `{integration}.{m}`?"),
                None => format!(
                    "{integration} offers: {}",
                    actions.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            c.error_hint(
                &sp.key("action"),
                format!("integration \"{integration}\" has no action \"{action}\""),
                hint,
            );
        }
        Some(_) => {}
    }
}

/// A notice names a template, or its audience has one.
fn check_notice_ref(c: &mut Checker, sp: &YPath, n: &NoticeSpec, known: &Known) {
    let names = &known.notice_templates;
    if let Some(t) = &n.template {
        if !names.contains(t) {
            let hint = did_you_mean(t, names.iter().map(String::as_str))
                .map(|m| format!("did you mean `{m}`?"))
                .unwrap_or_else(|| "notice templates live in runbooks/notices/<name>.hbs".into());
            c.error_hint(
                &sp.key("notice").key("template"),
                format!("unknown notice template \"{t}\""),
                hint,
            );
        }
        return;
    }
    let prefix = format!("{}-", n.audience);
    if !names
        .iter()
        .any(|t| t == &n.audience || t.starts_with(&prefix))
    {
        c.error_hint(
            &sp.key("notice").key("audience"),
            format!("no notice template for audience \"{}\"", n.audience),
            format!(
                "add runbooks/notices/{}.hbs or {}-<JURISDICTION>.hbs",
                n.audience, n.audience
            ),
        );
    }
}

/// Every template a step renders: `with` (each string leaf), `when`, an
/// approval's prompt, a manual task's instructions, and a verification's
/// (which read each re-read item, with or without for_each).
fn check_step_templates(
    c: &mut Checker,
    rb: &Runbook,
    s: &Step,
    si: usize,
    deps: &Deps,
    input_names: &[&str],
) {
    let sp = YPath::root().key("steps").index(si);
    let mut templates: Vec<(YPath, String)> = Vec::new();
    collect_strings(&s.with, &sp.key("with"), &mut templates);
    if let Some(w) = &s.when {
        templates.push((sp.key("when"), w.clone()));
    }
    match &s.kind {
        StepKind::Approval {
            prompt: Some(pr), ..
        } => templates.push((sp.key("approval").key("prompt"), pr.clone())),
        StepKind::Manual { instructions, .. } => {
            let path = if matches!(c.doc.value["steps"][si]["manual"], Value::String(_)) {
                sp.key("manual")
            } else {
                sp.key("manual").key("instructions")
            };
            templates.push((path, instructions.clone()))
        }
        _ => {}
    }
    for (path, src) in templates {
        check_template(c, rb, &path, &src, s, deps, input_names, false);
    }
    if let Some(v) = &s.verify {
        let vp = sp.key("verify");
        let mut texts = vec![(vp.key("remains"), v.remains.clone())];
        texts.extend(v.shows.iter().map(|t| (vp.key("shows"), t.clone())));
        texts.extend(v.label.iter().map(|t| (vp.key("label"), t.clone())));
        for (path, src) in texts {
            check_template(c, rb, &path, &src, s, deps, input_names, true);
        }
    }
}

fn collect_strings(v: &Json, path: &YPath, out: &mut Vec<(YPath, String)>) {
    match v {
        Json::String(s) => out.push((path.clone(), s.clone())),
        Json::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| collect_strings(x, &path.index(i), out)),
        Json::Object(m) => m
            .iter()
            .for_each(|(k, x)| collect_strings(x, &path.key(k), out)),
        _ => {}
    }
}

/// A `for_each` / `jurisdictions` path: `inputs.<list input>` or
/// `steps.<dependency>.output[...]`.
fn check_path(c: &mut Checker, rb: &Runbook, at: &YPath, path: &str, deps: &Deps, what: &str) {
    let segs: Vec<&str> = path.split('.').collect();
    match segs.as_slice() {
        ["inputs", name, rest @ ..] => match rb.input(name) {
            // Declared, but the declaration is broken (and reported).
            None if c.doc.value["inputs"].get(*name).is_some() => {}
            None => {
                let hint = did_you_mean(name, rb.inputs.iter().map(|i| i.name.as_str()))
                    .map(|m| format!("did you mean `inputs.{m}`?"))
                    .unwrap_or_else(|| "declare it under `inputs:`".into());
                c.error_hint(
                    at,
                    format!("{what} path \"{path}\" names unknown input \"{name}\""),
                    hint,
                );
            }
            Some(i) if rest.is_empty() && i.ty != InputType::List => {
                c.error(
                    at,
                    format!(
                        "{what} path \"{path}\" must be a list, but input \"{name}\" is {}",
                        article(i.ty)
                    ),
                );
            }
            Some(_) => {}
        },
        ["steps", id, rest @ ..] => {
            if rb.step(id).is_none() {
                let hint = did_you_mean(id, rb.steps.iter().map(|s| s.id.as_str()))
                    .map(|m| format!("did you mean `steps.{m}`?"))
                    .unwrap_or_else(|| "name a step of this runbook".into());
                c.error_hint(
                    at,
                    format!("{what} path \"{path}\" names unknown step \"{id}\""),
                    hint,
                );
            } else if !deps.contains(id) {
                c.error_hint(
                    at,
                    format!("{what} path \"{path}\" reads step \"{id}\", which this step does not depend on"),
                    format!("add \"{id}\" to `needs` so its output exists when this step runs"),
                );
            } else if rest.first() != Some(&"output") {
                c.error_hint(
                    at,
                    format!("{what} path \"{path}\" must read the step's output"),
                    format!("write steps.{id}.output..."),
                );
            }
        }
        _ => c.error_hint(
            at,
            format!("{what} path \"{path}\" cannot resolve"),
            "it must start with inputs.<name> or steps.<id>.output",
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn check_template(
    c: &mut Checker,
    rb: &Runbook,
    at: &YPath,
    src: &str,
    step: &Step,
    deps: &Deps,
    input_names: &[&str],
    item_ok: bool,
) {
    let a = template::analyse(src);
    for p in a.problems {
        let pos = c.doc.pos_in_scalar(at, p.line, p.col);
        let mut d = Diagnostic::new(&c.doc.file, pos, p.message);
        d.hint = p.hint;
        c.push(d);
    }
    for v in a.vars {
        let pos = c.doc.pos_in_scalar(at, v.line, v.col);
        let err =
            |msg: String, hint: String| Diagnostic::new(&c.doc.file, pos, msg).with_hint(hint);
        let d = match v.path[0].as_str() {
            "inputs" => match v.path.get(1) {
                Some(n) if !input_names.contains(&n.as_str()) => Some(err(
                    format!("template reads unknown input \"{n}\""),
                    did_you_mean(n, input_names.iter().copied())
                        .map(|m| format!("did you mean `inputs.{m}`?"))
                        .unwrap_or_else(|| "declare it under `inputs:`".into()),
                )),
                _ => None,
            },
            "steps" => match v.path.get(1) {
                Some(id) if rb.step(id).is_none() => Some(err(
                    format!("template reads unknown step \"{id}\""),
                    did_you_mean(id, rb.steps.iter().map(|s| s.id.as_str()))
                        .map(|m| format!("did you mean `steps.{m}`?"))
                        .unwrap_or_else(|| "name a step of this runbook".into()),
                )),
                Some(id) if !deps.contains(id) => Some(err(
                    format!(
                        "template reads step \"{id}\", which step \"{}\" does not depend on",
                        step.id
                    ),
                    format!("add \"{id}\" to `needs` so its output exists when this step runs"),
                )),
                _ => None,
            },
            "item" if step.for_each.is_none() && !item_ok => Some(err(
                "template reads `item`, but this step has no `for_each`".into(),
                "`item` is the current element of a for_each list".into(),
            )),
            "incident" => match v.path.get(1) {
                Some(f) if !INCIDENT_FIELDS.contains(&f.as_str()) => Some(err(
                    format!("template reads unknown incident field \"{f}\""),
                    did_you_mean(f, INCIDENT_FIELDS.iter().copied())
                        .map(|m| format!("did you mean `incident.{m}`?"))
                        .unwrap_or_else(|| format!("incident has: {}", INCIDENT_FIELDS.join(", "))),
                )),
                _ => None,
            },
            "secrets" => Some(err(
                "runbook templates cannot read secrets".into(),
                "secrets belong in integration manifests, which inject them into requests".into(),
            )),
            "item" => None,
            "parent" if item_ok => Some(err(
                "a verification reads each re-read item; `parent` is not available here".into(),
                "read the fields of `item`".into(),
            )),
            "parent" if !lists_from_fan_out(rb, step) => Some(err(
                "template reads `parent`, but this step does not iterate a fan-out step's output".into(),
                "`parent` is the item a fan-out step listed this one for: set `for_each: steps.<id>.output` where step <id> has a for_each".into(),
            )),
            "parent" => None,
            other if !v.scoped => Some(err(
                format!("template reads unknown variable \"{}\"", v.dotted()),
                did_you_mean(other, ["inputs", "steps", "item", "parent", "incident"])
                    .map(|m| format!("did you mean `{m}`?"))
                    .unwrap_or_else(|| {
                        "templates can read inputs, steps.<id>.output, item and incident".into()
                    }),
            )),
            _ => None,
        };
        if let Some(d) = d {
            c.push(d);
        }
    }
}

/// Whether the step iterates `steps.ID.output` of a step that fans out
/// itself, the one case where each item has a `parent`.
fn lists_from_fan_out(rb: &Runbook, step: &Step) -> bool {
    step.for_each
        .as_deref()
        .and_then(|p| p.strip_prefix("steps."))
        .and_then(|r| r.strip_suffix(".output"))
        .and_then(|id| rb.step(id))
        .is_some_and(|s| s.for_each.is_some())
}

/// The steps a step depends on, for "a template may only read a step it
/// needs".
struct Deps<'g> {
    graph: &'g crate::runbook::graph::Graph<'g>,
    step: &'g str,
}

impl Deps<'_> {
    fn contains(&self, id: &str) -> bool {
        self.graph.depends_on(self.step, id)
    }
}
