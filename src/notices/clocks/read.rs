//! Reading `rules.yaml` into a `RuleTable`, every problem located.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_yaml::Value;

use super::*;
use crate::runbook::load::is_id;
use crate::source::check::{kind_of, show, Checker};
use crate::source::diagnostic::did_you_mean;
use crate::source::yaml::YPath;

const TOP_KEYS: &[&str] = &["version", "timezones", "holidays", "rules"];
const RULE_KEYS: &[&str] = &[
    "id",
    "jurisdiction",
    "recipient",
    "title",
    "start",
    "deadline",
    "phases",
    "min_affected",
    "triggers",
    "law_enforcement_delay",
    "exception",
    "on_exception",
    "when_input",
    "any_residence",
    "with_government_notice",
    "effective_from",
    "effective_until",
    "source",
    "note",
];
const RULE_REQUIRED: &[&str] = &[
    "id",
    "jurisdiction",
    "recipient",
    "title",
    "start",
    "deadline",
    "triggers",
    "source",
];
const PHASE_KEYS: &[&str] = &["name", "deadline", "note"];
const GROUP_KEYS: &[&str] = &["all", "any", "min_affected", "decision"];
const DEADLINE_HINT: &str = "write 72h, 30d, 3bd (business days) or asap";

fn jurisdiction_codes() -> Vec<&'static str> {
    crate::notices::JURISDICTIONS
        .iter()
        .map(|(c, _)| *c)
        .collect()
}

pub(super) fn read_table(c: &mut Checker) -> Option<RuleTable> {
    let doc = c.doc;
    let root = YPath::root();
    let top = c.map(
        &root,
        &doc.value,
        "the rule table",
        TOP_KEYS,
        &["version", "timezones", "rules"],
    )?;
    if let Some(v) = top.get("version") {
        if v.as_u64() != Some(1) {
            c.error(
                &root.key("version"),
                format!("unsupported version {}, expected 1", show(v)),
            );
        }
    }
    let zones = top
        .get("timezones")
        .map(|v| read_zones(c, &root.key("timezones"), v))
        .unwrap_or_default();
    let holidays = top
        .get("holidays")
        .map(|v| read_holidays(c, &root.key("holidays"), v))
        .unwrap_or_default();
    let mut rules = Vec::new();
    let p = root.key("rules");
    match top.get("rules") {
        Some(Value::Sequence(items)) => {
            let mut ids = BTreeSet::new();
            for (i, v) in items.iter().enumerate() {
                let Some(mut r) = read_rule(c, &p.index(i), v, &zones) else {
                    continue;
                };
                if let Some(h) = holidays.get(&r.jurisdiction) {
                    r.holidays = h.clone();
                }
                if !ids.insert(r.id.clone()) {
                    c.error(
                        &p.index(i).key("id"),
                        format!("rule id \"{}\" is used twice", r.id),
                    );
                }
                rules.push(r);
            }
        }
        Some(other) => c.error(
            &p,
            format!("`rules` must be a list, found {}", kind_of(other)),
        ),
        None => {}
    }
    Some(RuleTable { rules })
}

fn read_zones(c: &mut Checker, path: &YPath, v: &Value) -> BTreeMap<String, Tz> {
    let codes = jurisdiction_codes();
    let mut zones = BTreeMap::new();
    let Some(m) = c.map(path, v, "`timezones`", &codes, &[]) else {
        return zones;
    };
    for (k, v) in m {
        let Value::String(code) = k else { continue };
        let p = path.key(code);
        let Some(name) = c.string(&p, v, "a time zone") else {
            continue;
        };
        match name.parse::<Tz>() {
            Ok(tz) => {
                zones.insert(code.clone(), tz);
            }
            Err(_) => {
                c.error_hint(
                    &p,
                    format!("unknown time zone \"{name}\""),
                    "use an IANA zone name such as Europe/Brussels",
                );
                // A stand-in, so the rules of this jurisdiction raise no
                // second error; the table fails to load anyway.
                zones.insert(code.clone(), Tz::UTC);
            }
        }
    }
    zones
}

/// `holidays: {CODE: {source, dates: [YYYY-MM-DD, ...]}}`.
fn read_holidays(
    c: &mut Checker,
    path: &YPath,
    v: &Value,
) -> BTreeMap<String, std::sync::Arc<BTreeSet<NaiveDate>>> {
    let codes = jurisdiction_codes();
    let mut out = BTreeMap::new();
    let Some(m) = c.map(path, v, "`holidays`", &codes, &[]) else {
        return out;
    };
    for (k, v) in m {
        let Value::String(code) = k else { continue };
        let p = path.key(code);
        let Some(cal) = c.map(
            &p,
            v,
            "a holiday calendar",
            &["source", "dates"],
            &["source", "dates"],
        ) else {
            continue;
        };
        if let Some(src) = cal.get("source") {
            c.string(&p.key("source"), src, "a source URL");
        }
        let mut dates = BTreeSet::new();
        match cal.get("dates") {
            Some(Value::Sequence(items)) => {
                for (i, d) in items.iter().enumerate() {
                    if let Some(d) = read_date(c, &p.key("dates").index(i), d) {
                        dates.insert(d);
                    }
                }
            }
            Some(other) => c.error(
                &p.key("dates"),
                format!(
                    "`dates` must be a list of YYYY-MM-DD, found {}",
                    kind_of(other)
                ),
            ),
            None => {}
        }
        out.insert(code.clone(), std::sync::Arc::new(dates));
    }
    out
}

/// A string that must be one of `allowed`.
fn choice<'l>(
    c: &mut Checker,
    path: &YPath,
    v: &Value,
    what: &str,
    allowed: &[&'l str],
) -> Option<&'l str> {
    let s = c.string(path, v, what)?;
    if let Some(found) = allowed.iter().find(|a| **a == s) {
        return Some(found);
    }
    let hint = match did_you_mean(&s, allowed.iter().copied()) {
        Some(m) => format!("did you mean `{m}`?"),
        None => format!("one of: {}", allowed.join(", ")),
    };
    c.error_hint(path, format!("unknown {what} \"{s}\""), hint);
    None
}

fn read_deadline(c: &mut Checker, path: &YPath, v: &Value) -> Option<Deadline> {
    let s = c.string(path, v, "a deadline")?;
    let d = Deadline::parse(&s);
    if d.is_none() {
        c.error_hint(path, format!("invalid deadline \"{s}\""), DEADLINE_HINT);
    }
    d
}

fn read_date(c: &mut Checker, path: &YPath, v: &Value) -> Option<NaiveDate> {
    let s = c.string(path, v, "a date")?;
    let d = NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok();
    if d.is_none() {
        c.error_hint(path, format!("invalid date \"{s}\""), "write YYYY-MM-DD");
    }
    d
}

fn read_name(c: &mut Checker, path: &YPath, v: &Value, what: &str) -> Option<String> {
    let s = c.string(path, v, what)?;
    if s.is_empty() || !s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') {
        c.error(path, format!("{what} \"{s}\" must use only a-z and _"));
        return None;
    }
    Some(s)
}

fn read_rule(
    c: &mut Checker,
    path: &YPath,
    v: &Value,
    zones: &BTreeMap<String, Tz>,
) -> Option<Rule> {
    let m = c.map(path, v, "a rule", RULE_KEYS, RULE_REQUIRED)?;
    let codes = jurisdiction_codes();
    let moments = Moment::ALL.map(Moment::as_str);
    let recipients = Recipient::ALL.map(Recipient::as_str);
    let at = |k: &str| (m.get(k), path.key(k));

    let id = match at("id") {
        (Some(v), p) => c.string(&p, v, "a rule id").filter(|id| {
            let ok = is_id(id);
            if !ok {
                c.error(&p, format!("rule id \"{id}\" must use only a-z, 0-9 and -"));
            }
            ok
        }),
        _ => None,
    };
    let jurisdiction = match at("jurisdiction") {
        (Some(v), p) => choice(c, &p, v, "jurisdiction", &codes),
        _ => None,
    };
    let timezone = jurisdiction.and_then(|j| {
        let tz = zones.get(j).copied();
        if tz.is_none() {
            c.error(
                &path.key("jurisdiction"),
                format!("jurisdiction {j} has no entry under `timezones`"),
            );
        }
        tz
    });
    let recipient = match at("recipient") {
        (Some(v), p) => choice(c, &p, v, "recipient", &recipients).and_then(Recipient::parse),
        _ => None,
    };
    let title = match at("title") {
        (Some(v), p) => c.string(&p, v, "`title`"),
        _ => None,
    };
    let start = match at("start") {
        (Some(v), p) => choice(c, &p, v, "start moment", &moments).and_then(Moment::parse),
        _ => None,
    };
    let deadline = match at("deadline") {
        (Some(v), p) => read_deadline(c, &p, v),
        _ => None,
    };
    let phases = match at("phases") {
        (Some(v), p) => read_phases(c, &p, v),
        _ => Vec::new(),
    };
    let min_affected = match at("min_affected") {
        (Some(v), p) => c.uint(&p, v, "`min_affected`").unwrap_or(0),
        _ => 0,
    };
    let triggers = match at("triggers") {
        (Some(v), p) => read_triggers(c, &p, v),
        _ => None,
    };
    let law_enforcement_delay = match at("law_enforcement_delay") {
        (Some(v), p) => c.boolean(&p, v, "`law_enforcement_delay`").unwrap_or(false),
        _ => false,
    };
    let exception = match at("exception") {
        (Some(v), p) => read_name(c, &p, v, "an exception name"),
        _ => None,
    };
    let on_exception = match at("on_exception") {
        (Some(v), p) => read_name(c, &p, v, "an exception name"),
        _ => None,
    };
    let when_input = match at("when_input") {
        (Some(v), p) => read_name(c, &p, v, "an input name"),
        _ => None,
    };
    let any_residence = match at("any_residence") {
        (Some(v), p) => c.boolean(&p, v, "`any_residence`").unwrap_or(false),
        _ => false,
    };
    let with_government_notice = match at("with_government_notice") {
        (Some(v), p) => c
            .boolean(&p, v, "`with_government_notice`")
            .unwrap_or(false),
        _ => false,
    };
    let effective_from = match at("effective_from") {
        (Some(v), p) => read_date(c, &p, v),
        _ => None,
    };
    let effective_until = match at("effective_until") {
        (Some(v), p) => read_date(c, &p, v),
        _ => None,
    };
    if let (Some(from), Some(until)) = (effective_from, effective_until) {
        if until < from {
            c.error(
                &path.key("effective_until"),
                format!("`effective_until` {until} is before `effective_from` {from}"),
            );
        }
    }
    let source = match at("source") {
        (Some(v), p) => c.string(&p, v, "`source`").filter(|s| {
            let ok = s.starts_with("https://") || s.starts_with("http://");
            if !ok {
                c.error_hint(
                    &p,
                    "`source` must be a URL",
                    "cite the statute or regulator page",
                );
            }
            ok
        }),
        _ => None,
    };
    let note = match at("note") {
        (Some(v), p) => c.string(&p, v, "`note`"),
        _ => None,
    };
    Some(Rule {
        id: id?,
        jurisdiction: jurisdiction?.to_string(),
        recipient: recipient?,
        title: title?,
        start: start?,
        deadline: deadline?,
        phases,
        min_affected,
        triggers: triggers?,
        law_enforcement_delay,
        exception,
        on_exception,
        when_input,
        any_residence,
        with_government_notice,
        effective_from,
        effective_until,
        source: source?,
        note,
        timezone: timezone?,
        holidays: Default::default(),
    })
}

fn read_phases(c: &mut Checker, path: &YPath, v: &Value) -> Vec<Phase> {
    let Value::Sequence(items) = v else {
        c.error(
            path,
            format!("`phases` must be a list, found {}", kind_of(v)),
        );
        return Vec::new();
    };
    let mut phases: Vec<Phase> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(m) = c.map(&p, v, "a phase", PHASE_KEYS, &["name", "deadline"]) else {
            continue;
        };
        let name = m
            .get("name")
            .and_then(|v| read_name(c, &p.key("name"), v, "a phase name"));
        let deadline = m
            .get("deadline")
            .and_then(|v| read_deadline(c, &p.key("deadline"), v));
        let note = m
            .get("note")
            .and_then(|v| c.string(&p.key("note"), v, "`note`"));
        if let (Some(name), Some(deadline)) = (name, deadline) {
            if phases.iter().any(|ph| ph.name == name) {
                c.error(&p.key("name"), format!("phase \"{name}\" is listed twice"));
            }
            phases.push(Phase {
                name,
                deadline,
                note,
            });
        }
    }
    phases
}

fn read_triggers(c: &mut Checker, path: &YPath, v: &Value) -> Option<Triggers> {
    let items = match v {
        Value::String(s) if s == "any_personal_data" => return Some(Triggers::AnyPersonalData),
        Value::Sequence(items) if !items.is_empty() => items,
        _ => {
            c.error_hint(
                path,
                format!("invalid `triggers` {}", show(v)),
                "write any_personal_data, or a list of {all: [...], any: [...], min_affected: N}",
            );
            return None;
        }
    };
    let mut groups = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(m) = c.map(&p, v, "a trigger group", GROUP_KEYS, &[]) else {
            continue;
        };
        if m.is_empty() {
            c.error(
                &p,
                "a trigger group needs `all`, `any`, `min_affected` or `decision`",
            );
        }
        let mut elements = |key: &str| -> Vec<String> {
            let Some(v) = m.get(key) else {
                return Vec::new();
            };
            let kp = p.key(key);
            let Value::Sequence(list) = v else {
                c.error(&kp, format!("`{key}` must be a list, found {}", kind_of(v)));
                return Vec::new();
            };
            list.iter()
                .enumerate()
                .filter_map(|(j, e)| choice(c, &kp.index(j), e, "data element", DATA_ELEMENTS))
                .map(str::to_string)
                .collect()
        };
        let all = elements("all");
        let any = elements("any");
        let min_affected = m
            .get("min_affected")
            .and_then(|v| c.uint(&p.key("min_affected"), v, "`min_affected`"))
            .unwrap_or(0);
        let decision = m
            .get("decision")
            .and_then(|v| read_name(c, &p.key("decision"), v, "a decision name"));
        groups.push(TriggerGroup {
            all,
            any,
            min_affected,
            decision,
        });
    }
    Some(Triggers::Groups(groups))
}
