//! What the law asks and how it was met: the clocks (due in each
//! jurisdiction's own zone), each notice's state, and time to notify.

use crate::store::EventKind;
use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;

use super::{parse_at, strings, ClockRow, Facts, NoticeRow, Notified};
use crate::store::TimelineEvent;
use crate::timeline::display::{duration_text, shown};

/// The first notice of each (jurisdiction, audience) recorded as sent.
pub(super) fn first_sent(events: &[TimelineEvent]) -> BTreeMap<(String, String), &TimelineEvent> {
    let mut out = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::NoticeSent) {
        let j = e.data["jurisdiction"].as_str().unwrap_or("-").to_string();
        let a = e.data["audience"].as_str().unwrap_or("").to_string();
        out.entry((j, a)).or_insert(e);
    }
    out
}

/// Which notice audience answers a rule's recipient.
fn audience_of(recipient: &str) -> Option<&'static str> {
    match recipient {
        "individuals" => Some("customers"),
        "authority" | "attorney_general" => Some("regulator"),
        _ => None,
    }
}

pub(super) fn clock_rows(f: &Facts) -> Vec<ClockRow> {
    let (clocks_json, sent) = (&f.clocks, &f.sent);
    let clocks: Vec<ClockRow> = clocks_json
        .iter()
        .map(|c| {
            let j = c["jurisdiction"].as_str().unwrap_or("").to_string();
            let recipient = c["recipient"].as_str().unwrap_or("").to_string();
            let tz = crate::timeline::clocks::table().zone(&j).unwrap_or(Tz::UTC);
            let due = parse_at(&c["due"]);
            let met_at = audience_of(&recipient)
                .and_then(|a| sent.get(&(j.clone(), a.to_string())))
                .map(|e| e.at);
            let (met, on_time) = match (met_at, due) {
                (Some(at), Some(d)) if at <= d => {
                    (Some(format!("met {}", shown(at, tz).local)), true)
                }
                (Some(at), Some(_)) => (Some(format!("met late {}", shown(at, tz).local)), false),
                (Some(at), None) => (Some(format!("met {}", shown(at, tz).local)), true),
                (None, _) => (None, false),
            };
            ClockRow {
                jurisdiction: j,
                recipient,
                title: c["title"].as_str().unwrap_or("").to_string(),
                deadline: c["deadline"].as_str().unwrap_or("").to_string(),
                status: c["status"].as_str().unwrap_or("").to_string(),
                due: due.map(|d| shown(d, tz)),
                left: c["left"].as_str().map(str::to_string),
                overdue: c["overdue"] == true && met.is_none(),
                met,
                met_on_time: on_time,
                describe: c["describe"].as_str().unwrap_or("").to_string(),
                source: c["source"].as_str().unwrap_or("").to_string(),
            }
        })
        .collect();
    clocks
}

pub(super) fn notice_rows(f: &Facts) -> Vec<NoticeRow> {
    let (rec, zone) = (f.rec, f.lens.zone);
    let notices: Vec<NoticeRow> = rec
        .notices
        .iter()
        .map(|d| {
            let sent = rec.events.iter().find(|e| {
                e.kind == EventKind::NoticeSent
                    && e.data["version"] == d.version
                    && e.data["audience"] == d.audience.as_str()
                    && e.data["jurisdiction"] == serde_json::json!(d.jurisdiction)
                    && e.step.as_deref() == Some(d.step.as_str())
            });
            let state = match (sent, &d.approved_by) {
                (Some(_), _) => "sent",
                (None, Some(_)) => "approved, not sent",
                _ => "draft, not approved",
            };
            NoticeRow {
                audience: d.audience.clone(),
                jurisdiction: d.jurisdiction.clone().unwrap_or_else(|| "-".into()),
                version: d.version,
                template: d.template.clone(),
                drafted: shown(d.drafted_at, zone),
                drafted_by: d.drafted_by.clone(),
                approved_by: d.approved_by.clone(),
                approved: d.approved_at.map(|t| shown(t, zone)),
                sent_by: sent.map(|e| e.actor.clone()),
                sent: sent.map(|e| shown(e.at, zone)),
                state: state.into(),
            }
        })
        .collect();
    notices
}

/// Per jurisdiction and audience, the first notice sent (or "not sent").
pub(super) fn notified(f: &Facts) -> Vec<Notified> {
    let snap = &f.rec.snap;
    let inc = &snap.incident;
    let (rec, sent) = (f.rec, &f.sent);
    let jurisdictions = strings(&inc.inputs["jurisdictions"]);
    let mut audiences: BTreeSet<String> = rec.notices.iter().map(|d| d.audience.clone()).collect();
    audiences.extend(sent.keys().map(|(_, a)| a.clone()));
    let mut notified = Vec::new();
    for j in &jurisdictions {
        for a in &audiences {
            let drafted = rec
                .notices
                .iter()
                .any(|d| d.jurisdiction.as_deref() == Some(j) && &d.audience == a);
            let first = sent.get(&(j.clone(), a.clone()));
            if !drafted && first.is_none() {
                continue;
            }
            notified.push(Notified {
                jurisdiction: j.clone(),
                audience: a.clone(),
                after: first
                    .map(|e| duration_text(e.at - inc.declared_at))
                    .unwrap_or_else(|| "not sent".into()),
                sent: first.is_some(),
                by: first.map(|e| e.actor.clone()),
            });
        }
    }
    notified
}
