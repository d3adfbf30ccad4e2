//! The regulatory clocks of one incident, from what its timeline records:
//! the exposure (runbook inputs), the moments learned (`moment.recorded`),
//! law-enforcement delays (`clock.paused` / `clock.resumed`) and decided
//! exceptions (`exception.applied`). Everything is derived from the
//! append-only timeline, so the clocks can always be recomputed.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{json, Value as Json};

use crate::notices::clocks::{span, Exposure, Moment, Moments, Pause, RuleTable, Status};
use crate::store::EventKind;
use crate::store::{Incident, TimelineEvent};

/// The rule table is compiled in and validated by tests; loading it cannot
/// fail at run time unless the binary itself is broken.
pub fn table() -> &'static RuleTable {
    static T: std::sync::OnceLock<RuleTable> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        RuleTable::bundled().unwrap_or_else(|d| panic!("bundled rules.yaml is invalid:\n{d}"))
    })
}

fn strings(v: &Json) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// When an event says a thing happened: its `at`, else when it was recorded.
pub(crate) fn at_of(e: &TimelineEvent) -> DateTime<Utc> {
    e.data
        .get("at")
        .and_then(Json::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(e.at)
}

/// What the incident exposed, where, and the moments and pauses recorded.
pub fn inputs_of(inc: &Incident, events: &[TimelineEvent]) -> (Exposure, Moments, Vec<Pause>) {
    let mut exposure = Exposure {
        jurisdictions: strings(&inc.inputs["jurisdictions"]),
        data_elements: strings(&inc.inputs["data_elements"]),
        affected: inc.inputs["records"].as_u64().unwrap_or(0),
        exceptions: BTreeSet::new(),
        residents: crate::runbook::inputs::residents(&inc.inputs["residents"]),
        flags: inc
            .inputs
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| **v == Json::Bool(true))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let mut moments = Moments::new(inc.declared_at);
    let mut pauses: Vec<Pause> = vec![];
    for e in events {
        match EventKind::parse(&e.kind) {
            Some(EventKind::MomentRecorded) => {
                let names = e.data.get("moment").and_then(Json::as_str).unwrap_or("");
                for m in Moment::recorded(names) {
                    moments = moments.with(m, at_of(e));
                }
            }
            Some(EventKind::ClockPaused) => pauses.push(Pause {
                from: at_of(e),
                until: None,
            }),
            Some(EventKind::ClockResumed) => {
                if let Some(p) = pauses.iter_mut().rev().find(|p| p.until.is_none()) {
                    p.until = Some(at_of(e));
                }
            }
            // California's AG copy counts from the residents' notice: the
            // first US-CA customers notice recorded as sent.
            Some(EventKind::NoticeSent)
                if e.data["audience"] == "customers"
                    && e.data["jurisdiction"] == "US-CA"
                    && !moments
                        .recorded
                        .contains_key(&Moment::UsCaResidentsNotified) =>
            {
                moments = moments.with(Moment::UsCaResidentsNotified, e.at);
            }
            Some(EventKind::ExceptionApplied) => {
                if let Some(x) = e.data.get("exception").and_then(Json::as_str) {
                    exposure.exceptions.insert(x.to_string());
                }
            }
            _ => {}
        }
    }
    (exposure, moments, pauses)
}

/// Every applicable clock as JSON, most urgent first.
pub fn clocks_json(inc: &Incident, events: &[TimelineEvent], now: DateTime<Utc>) -> Vec<Json> {
    let (exposure, moments, pauses) = inputs_of(inc, events);
    let mut clocks = table().clocks(&exposure, &moments, &pauses, now);
    clocks.sort_by_key(|c| (c.due.is_none(), c.due));
    clocks
        .iter()
        .map(|c| {
            let (people, from) = exposure.count_for(&c.rule.jurisdiction);
            json!({
                "rule": c.rule.id,
                "title": c.rule.title,
                "jurisdiction": c.rule.jurisdiction,
                "recipient": c.rule.recipient.as_str(),
                "deadline": c.rule.deadline.to_string(),
                "starts_at": c.rule.start.as_str(),
                "status": c.status.to_string(),
                "start": c.start.map(|t| t.to_rfc3339()),
                "due": c.due.map(|t| t.to_rfc3339()),
                "left": c.left.map(|l| if l < chrono::TimeDelta::zero() { format!("-{}", span(-l)) } else { span(l) }),
                "overdue": c.status == Status::Overdue,
                "describe": c.describe(),
                "phases": c.phases.iter().map(|p| json!({"phase": p.phase.name, "due": p.due.map(|t| t.to_rfc3339()), "overdue": p.overdue})).collect::<Vec<_>>(),
                "source": c.rule.source,
                // Which number its thresholds compared: the jurisdiction's
                // residents, or the total records.
                "counted": {"people": people, "from": from},
                "min_affected": c.rule.min_affected,
            })
        })
        .collect()
}

/// One line per clock, for terminals.
pub fn render_text(clocks: &[Json]) -> String {
    let mut out = String::new();
    for c in clocks {
        let flag = if c["overdue"] == true { "OVERDUE " } else { "" };
        // A threshold says which number it compared.
        let counted = match c["min_affected"].as_u64() {
            Some(min) if min > 0 => format!(
                " (at least {min} people; counted {} from {})",
                c["counted"]["people"],
                c["counted"]["from"].as_str().unwrap_or("?")
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "  {flag}{} · {} · {}{counted}: {}\n",
            c["jurisdiction"].as_str().unwrap_or(""),
            c["recipient"].as_str().unwrap_or(""),
            c["title"].as_str().unwrap_or(""),
            c["describe"].as_str().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_us_ca_customers_notice_sent_is_when_californians_were_notified() {
        let inc: Incident = serde_json::from_value(json!({
            "id": "INC-1", "runbook": "r", "title": "t", "status": "waiting",
            "declared_at": "2026-03-02T17:00:00Z", "declared_by": "U0RESP01", "severity": "sev1",
            "inputs": {"jurisdictions": ["US-CA", "EU"], "data_elements": ["name", "ssn"], "records": 600},
            "drill": false, "runbook_file": "r.yaml", "runbook_source": "", "finished_at": null
        }))
        .unwrap();
        let sent = |seq: u64, at: &str, j: &str| TimelineEvent {
            seq,
            at: DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc),
            kind: "notice.sent".into(),
            step: Some("draft-customer-notices".into()),
            item: None,
            actor: "U0LEGAL1".into(),
            message: "sent".into(),
            data: json!({"version": 1, "audience": "customers", "jurisdiction": j}),
        };
        let events = [
            sent(1, "2026-03-10T12:00:00Z", "EU"),
            sent(2, "2026-03-20T16:00:00Z", "US-CA"),
            sent(3, "2026-03-25T16:00:00Z", "US-CA"),
        ];
        let (_, moments, _) = inputs_of(&inc, &events);
        assert_eq!(
            moments
                .get(Moment::UsCaResidentsNotified)
                .map(|t| t.to_rfc3339()),
            Some("2026-03-20T16:00:00+00:00".to_string()),
            "the first US-CA customers notice, not the EU one or a later version"
        );
        let clocks = clocks_json(&inc, &events, inc.declared_at);
        let ag = clocks
            .iter()
            .find(|c| c["rule"] == "us-ca-attorney-general")
            .unwrap();
        assert_eq!(ag["due"], "2026-04-04T16:00:00+00:00");
    }
}
