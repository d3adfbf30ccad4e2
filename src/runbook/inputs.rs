//! A runbook's inputs, typed by its declarations: from `--input k=v`
//! (CLI, Slack) or a JSON object (REST API).

use serde_json::{Map, Value as Json};

use crate::runbook::load::{article, coerce_input, vocabulary_hint};
use crate::runbook::{InputDecl, InputType, Runbook};
use crate::source::diagnostic::did_you_mean;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// The longest text input (or list item) unless its declaration says
/// `max_length`: a tool's name or a short description. Inputs end up in
/// URLs, headers and notices; a 70,000-character one fails mid-containment.
pub const DEFAULT_MAX_LENGTH: usize = 256;
/// The most a `max_length` may allow.
pub const MAX_LENGTH_CEILING: usize = 100_000;
/// The most items a list input may have.
pub const MAX_ITEMS: usize = 1_000;

/// Builds the inputs object: given values typed, defaults filled in,
/// required ones enforced. Every problem is reported at once.
pub fn parse(rb: &Runbook, pairs: &[String]) -> Result<Json, InputError> {
    let mut out = Map::new();
    let mut problems = Vec::new();
    for pair in pairs {
        let Some((k, v)) = pair.split_once('=') else {
            problems.push((
                None,
                format!("--input \"{pair}\" must be written name=value"),
            ));
            continue;
        };
        let Some(decl) = rb.input(k) else {
            problems.push((None, unknown_input(rb, k)));
            continue;
        };
        let value = from_text(decl.ty, v);
        match coerce_input(decl.ty, &value) {
            Ok(v) => {
                out.insert(k.to_string(), v);
            }
            Err(_) => problems.push((
                Some(k.to_string()),
                format!("--input {k}=\"{v}\": `{k}` must be {}", article(decl.ty)),
            )),
        }
    }
    finish(rb, out, problems).map_err(joined)
}

/// Builds the inputs object from a JSON object (the REST API): values must
/// already have their declared types; defaults and checks as for `parse`.
pub fn from_json(rb: &Runbook, given: &Json) -> Result<Json, InputError> {
    from_json_fields(rb, given).map_err(joined)
}

/// `from_json`, with each problem tagged with the input it is about (None:
/// about the whole), for forms that show an error beside its field.
pub fn from_json_fields(rb: &Runbook, given: &Json) -> Result<Json, Vec<Problem>> {
    let mut out = Map::new();
    let mut problems = Vec::new();
    let given = match given {
        Json::Null => Map::new(),
        Json::Object(m) => m.clone(),
        other => {
            return Err(vec![(
                None,
                format!("`inputs` must be an object of name: value, found {other}"),
            )])
        }
    };
    for (k, v) in given {
        let Some(decl) = rb.input(&k) else {
            problems.push((None, unknown_input(rb, &k)));
            continue;
        };
        // Text is accepted for any type, typed as `--input` types it, so
        // scripts and `declare --server` need not know the declarations.
        let v = match (&v, decl.ty) {
            (Json::String(text), ty) if ty != InputType::String => from_text(ty, text),
            _ => v,
        };
        match coerce_input(decl.ty, &v) {
            Ok(v) => {
                out.insert(k, v);
            }
            Err(e) => problems.push((Some(k.clone()), format!("input `{k}` {e}"))),
        }
    }
    finish(rb, out, problems)
}

/// A problem with the inputs: which input (if one), and what.
pub type Problem = (Option<String>, String);

fn joined(problems: Vec<Problem>) -> InputError {
    InputError(
        problems
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

/// A value written as text (`k=v`), typed by its declaration; what does
/// not parse stays text so `coerce_input` reports it.
fn from_text(ty: InputType, v: &str) -> Json {
    match ty {
        InputType::String | InputType::Timestamp => Json::String(v.to_string()),
        InputType::Integer => v
            .trim()
            .parse::<i64>()
            .map(Json::from)
            .unwrap_or(Json::String(v.to_string())),
        InputType::Boolean => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Json::Bool(true),
            "false" | "no" | "0" => Json::Bool(false),
            _ => Json::String(v.to_string()),
        },
        InputType::List => Json::Array(
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Json::String(s.to_string()))
                .collect(),
        ),
    }
}

fn unknown_input(rb: &Runbook, k: &str) -> String {
    let hint = did_you_mean(k, rb.inputs.iter().map(|i| i.name.as_str()))
        .map(|m| format!(" (did you mean `{m}`?)"))
        .unwrap_or_default();
    let known: Vec<&str> = rb.inputs.iter().map(|i| i.name.as_str()).collect();
    format!(
        "runbook {} has no input \"{k}\"{hint}; its inputs are: {}",
        rb.name,
        known.join(", ")
    )
}

/// Defaults, required inputs and the fixed vocabularies, all problems at once.
fn finish(
    rb: &Runbook,
    mut out: Map<String, Json>,
    mut problems: Vec<Problem>,
) -> Result<Json, Vec<Problem>> {
    for decl in &rb.inputs {
        if let Some(given) = out.get(&decl.name) {
            if let Err(why) = plain_text(decl, given) {
                problems.push((Some(decl.name.clone()), why));
            }
            continue;
        }
        match &decl.default {
            Some(d) => {
                out.insert(decl.name.clone(), d.clone());
            }
            None if decl.required => problems.push((
                Some(decl.name.clone()),
                format!(
                    "missing required input `{}`{}: pass --input {}=...",
                    decl.name,
                    decl.description
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                    decl.name
                ),
            )),
            None => {
                out.insert(decl.name.clone(), Json::Null);
            }
        }
    }
    // A closed vocabulary (`values:`): jurisdictions and data elements
    // decide which regulatory clocks start, so a typo must not silently
    // start no clock.
    for decl in &rb.inputs {
        let Some(vocab) = &decl.values else { continue };
        let name = &decl.name;
        let given: Vec<String> = match out.get(name) {
            Some(Json::Array(values)) => values.iter().map(crate::template::plain).collect(),
            Some(Json::String(s)) => vec![s.clone()],
            _ => continue,
        };
        for v in given.iter().filter(|v| !vocab.values.contains(v)) {
            problems.push((
                Some(name.to_string()),
                format!(
                    "--input {name}: unknown value \"{v}\" ({})",
                    vocabulary_hint(v, vocab)
                ),
            ));
        }
    }
    let jurisdictions: Vec<&str> = rb
        .inputs
        .iter()
        .find(|d| d.name == "jurisdictions")
        .and_then(|d| d.values.as_ref())
        .map(|v| v.values.iter().map(String::as_str).collect())
        .unwrap_or_default();
    // `residents`: CODE:COUNT pairs, the people affected per jurisdiction.
    if let Some(Json::Array(values)) = out.get("residents") {
        for v in values {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            match text.split_once(':') {
                Some((code, n)) => {
                    if !jurisdictions.contains(&code) {
                        let hint = did_you_mean(code, jurisdictions.iter().copied())
                            .map(|m| format!("did you mean `{m}`?"))
                            .unwrap_or_else(|| format!("known: {}", jurisdictions.join(", ")));
                        problems.push((
                            Some("residents".into()),
                            format!("--input residents: unknown jurisdiction \"{code}\" in \"{text}\" ({hint})"),
                        ));
                    }
                    if n.trim().parse::<u64>().is_err() {
                        problems.push((
                            Some("residents".into()),
                            format!("--input residents: \"{n}\" in \"{text}\" is not a count of people; write CODE:COUNT, e.g. US-CA:20"),
                        ));
                    }
                }
                None => problems.push((
                    Some("residents".into()),
                    format!("--input residents: \"{text}\" is not CODE:COUNT; write e.g. residents=US-CA:20,EU:10000"),
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(Json::Object(out))
    } else {
        Err(problems)
    }
}

/// A given value's text must fit its input: at most `max_length`
/// characters (each list item), at most `MAX_ITEMS` items, and no control
/// characters, which would reach HTTP headers and URLs (CR/LF) or a
/// terminal (escapes) as they are.
fn plain_text(decl: &InputDecl, v: &Json) -> Result<(), String> {
    let name = &decl.name;
    let max = decl.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
    let texts: Vec<&str> = match v {
        Json::String(s) => vec![s],
        Json::Array(items) => {
            if items.len() > MAX_ITEMS {
                return Err(format!(
                    "input `{name}` has {} items; at most {MAX_ITEMS}",
                    items.len()
                ));
            }
            items.iter().filter_map(Json::as_str).collect()
        }
        _ => vec![],
    };
    for t in texts {
        let n = t.chars().count();
        if n > max {
            return Err(format!(
                "input `{name}` is {n} characters; at most {max} (its declaration may raise `max_length`)"
            ));
        }
        if let Some((i, c)) = t.chars().enumerate().find(|(_, c)| c.is_control()) {
            return Err(format!(
                "input `{name}` has a control character (U+{:04X}) at character {}; inputs are one line of plain text",
                c as u32,
                i + 1
            ));
        }
    }
    Ok(())
}

/// The `residents` input as jurisdiction -> people (entries that do not
/// parse were refused when the incident was declared).
pub fn residents(v: &Json) -> std::collections::BTreeMap<String, u64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .filter_map(|s| {
            let (code, n) = s.split_once(':')?;
            Some((code.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}
