//! Notes people add to a timeline, and the facts some of them carry for the
//! regulatory clocks (a moment learned, a law-enforcement pause, an
//! exception decided). The CLI, the REST API and Slack all build them here.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::notices::clocks::Moment;
use crate::store::EventKind;
use crate::store::NewEvent;

/// What a note also records. At most one of these is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteFacts {
    /// `occurred|discovered|aware|determined|confirmed|assessed`, optionally `=RFC3339`.
    #[serde(default)]
    pub moment: Option<String>,
    #[serde(default)]
    pub pause: bool,
    #[serde(default)]
    pub resume: bool,
    #[serde(default)]
    pub exception: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoteError(pub String);

/// How far ahead of this machine's clock a moment may be: another
/// machine's clock, not a time yet to come.
const FUTURE_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The longest note: a paragraph or a pasted message, not a document.
pub const MAX_TEXT: usize = 20_000;

/// The event a note records, as of `now`.
pub fn note_event(
    text: &str,
    by: &str,
    facts: &NoteFacts,
    now: DateTime<Utc>,
) -> Result<NewEvent, NoteError> {
    if text.trim().is_empty() {
        return Err(NoteError("a note needs some text".into()));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT {
        return Err(NoteError(format!(
            "the note is {chars} characters; at most {MAX_TEXT} (attach long material elsewhere and link it)"
        )));
    }
    let set = [
        facts.moment.is_some(),
        facts.pause,
        facts.resume,
        facts.exception.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if set > 1 {
        return Err(NoteError(
            "a note records at most one of moment, pause, resume, exception".into(),
        ));
    }
    if let Some(m) = &facts.moment {
        let (name, at) = match m.split_once('=') {
            Some((n, t)) => {
                let at = DateTime::parse_from_rfc3339(t)
                    .map_err(|e| {
                        NoteError(format!(
                            "moment {m}: \"{t}\" is not an RFC 3339 time ({e}); write e.g. 2026-11-28T21:04:00Z"
                        ))
                    })?
                    .with_timezone(&Utc);
                if at > now + FUTURE_SKEW {
                    // A deadline counted from it would lie past any real one.
                    return Err(NoteError(format!(
                        "moment {m}: {} is in the future (it is now {}); a moment records when something happened",
                        at.to_rfc3339(),
                        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )));
                }
                (n, at)
            }
            None => (m.as_str(), now),
        };
        let Some(moment) = Moment::parse(name) else {
            let all: Vec<&str> = Moment::ALL.iter().map(|m| m.as_str()).collect();
            let hint = if name == "determined" {
                // One word stood for four laws' determinations; each is
                // its own moment now, so recording one starts only its rules.
                let four: Vec<&str> = Moment::DETERMINATIONS.iter().map(|m| m.as_str()).collect();
                format!("say which law's determination: {}; ", four.join(", "))
            } else {
                crate::source::diagnostic::did_you_mean(name, all.iter().copied())
                    .map(|m| format!("did you mean {m}? "))
                    .unwrap_or_default()
            };
            return Err(NoteError(format!(
                "unknown moment \"{name}\"; {hint}one of: {}",
                all.join(", ")
            )));
        };
        return Ok(NewEvent::new(
            EventKind::MomentRecorded,
            by,
            format!("{}: {text}", moment.as_str()),
        )
        .data(json!({"moment": moment.as_str(), "at": at.to_rfc3339()})));
    }
    Ok(if facts.pause {
        NewEvent::new(
            EventKind::ClockPaused,
            by,
            format!("Law-enforcement delay: {text}"),
        )
        .data(json!({"at": now.to_rfc3339()}))
    } else if facts.resume {
        NewEvent::new(
            EventKind::ClockResumed,
            by,
            format!("Law-enforcement delay ended: {text}"),
        )
        .data(json!({"at": now.to_rfc3339()}))
    } else if let Some(x) = &facts.exception {
        // A misspelt exception would apply to no rule and look recorded.
        let known: std::collections::BTreeSet<&str> = crate::timeline::clocks::table()
            .rules
            .iter()
            .flat_map(|r| {
                [r.exception.as_deref(), r.on_exception.as_deref()]
                    .into_iter()
                    .flatten()
                    .chain(r.triggers.decisions())
            })
            .collect();
        if !known.contains(x.as_str()) {
            let hint = crate::source::diagnostic::did_you_mean(x, known.iter().copied())
                .map(|m| format!("did you mean {m}? "))
                .unwrap_or_default();
            return Err(NoteError(format!(
                "unknown exception \"{x}\"; {hint}the rule table names: {}",
                known.into_iter().collect::<Vec<_>>().join(", ")
            )));
        }
        NewEvent::new(
            EventKind::ExceptionApplied,
            by,
            format!("Exception {x}: {text}"),
        )
        .data(json!({"exception": x}))
    } else {
        NewEvent::new(EventKind::Note, by, text)
    })
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // any instant will do here
mod tests {
    use super::*;

    #[test]
    fn a_moment_must_be_one_the_rule_table_knows() {
        let now = Utc::now();
        let facts = |m: &str| NoteFacts {
            moment: Some(m.into()),
            ..NoteFacts::default()
        };
        let ev = note_event(
            "Texas counsel determined",
            "U0LEGAL1",
            &facts("tx_breach_determined"),
            now,
        )
        .unwrap();
        assert_eq!(ev.data["moment"], "tx_breach_determined");
        let e = note_event("x", "U0LEGAL1", &facts("determined"), now).unwrap_err();
        assert!(
            e.0.starts_with("unknown moment \"determined\"; say which law's determination: ny_inadvertent_disclosure_determined, tx_breach_determined, pipeda_real_risk_determined, au_eligible_breach_believed; "),
            "{}",
            e.0
        );
        let e = note_event("x", "U0LEGAL1", &facts("tx_breach_determind"), now).unwrap_err();
        assert!(
            e.0.contains("did you mean tx_breach_determined?"),
            "{}",
            e.0
        );
    }

    #[test]
    fn an_exception_must_be_one_the_rule_table_names() {
        let now = Utc::now();
        let facts = |x: &str| NoteFacts {
            exception: Some(x.into()),
            ..NoteFacts::default()
        };
        let ev = note_event(
            "PDPC directed no notice",
            "U0LEGAL1",
            &facts("sg_notification_prohibited"),
            now,
        )
        .unwrap();
        assert_eq!(ev.kind, crate::store::EventKind::ExceptionApplied);
        let e = note_event("x", "U0LEGAL1", &facts("inadvertant_disclosure"), now).unwrap_err();
        assert!(
            e.0.starts_with("unknown exception \"inadvertant_disclosure\"; did you mean inadvertent_disclosure? "),
            "{}",
            e.0
        );
    }

    #[test]
    fn a_moment_in_the_future_or_an_endless_note_is_refused() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let moment = |m: &str| NoteFacts {
            moment: Some(m.into()),
            ..NoteFacts::default()
        };
        let e =
            note_event("x", "U0LEGAL1", &moment("aware=9999-12-31T00:00:00Z"), now).unwrap_err();
        assert!(
            e.0.starts_with("moment aware=9999-12-31T00:00:00Z: 9999-12-31T00:00:00+00:00 is in the future (it is now 2026-12-01T12:00:00Z)"),
            "{}",
            e.0
        );
        // Another machine's clock a little ahead is not the future.
        let ev = note_event("x", "U0LEGAL1", &moment("aware=2026-12-01T12:04:00Z"), now).unwrap();
        assert_eq!(ev.data["at"], "2026-12-01T12:04:00+00:00");
        let long = "a".repeat(MAX_TEXT + 1);
        let e = note_event(&long, "U0LEGAL1", &NoteFacts::default(), now).unwrap_err();
        assert!(e.0.contains("at most 20000"), "{}", e.0);
    }
}
