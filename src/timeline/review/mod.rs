//! The recovery review: one incident as a marketing-ops lead and a DPO read
//! it. Everything is derived from the record (the runbook as declared, the
//! step and item runs, the append-only timeline, the notice versions), so
//! the page, the postmortem and the standalone export say the same thing.
//! This module decides what the review says; `page` and `postmortem` only
//! lay it out.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value as Json;

use super::display::{duration_text, shown, Shown};
use super::gantt;
use crate::integrations::Catalog;
use crate::runbook::{Phase, Runbook, StepKind};
use crate::store::{ItemRun, NoticeDraft, Snapshot, StepStatus, Store, StoreError, TimelineEvent};

/// A fan-out's items listed on the page; the rest are counted, and every
/// item's record stays in the store and the JSON API.
pub const ITEMS_SHOWN: usize = 200;
/// Rows of the full event log on the page; the exports carry every event.
pub const EVENTS_SHOWN: usize = 5000;

/// What the store holds about one incident.
#[derive(Debug, Clone)]
pub struct Record {
    pub snap: Snapshot,
    pub events: Vec<TimelineEvent>,
    /// Each notice's latest version.
    pub notices: Vec<NoticeDraft>,
    /// Per fan-out step, its items' runs.
    pub items: BTreeMap<String, BTreeMap<u32, ItemRun>>,
}

impl Record {
    pub fn read(store: &Store, id: &str) -> Result<Record, StoreError> {
        let snap = store.snapshot(id)?;
        let events = store.events(id)?;
        let notices = crate::notices::lifecycle::latest(store.notices(id)?);
        let mut items = BTreeMap::new();
        for (step, run) in &snap.steps {
            if run.items.is_some() {
                items.insert(step.clone(), store.item_runs(id, step)?);
            }
        }
        Ok(Record {
            snap,
            events,
            notices,
            items,
        })
    }
}

/// The review of incident `id` as the store has it now.
pub fn read(
    store: &Store,
    id: &str,
    library: &crate::library::Library,
    roles: &BTreeMap<String, Vec<String>>,
    now: DateTime<Utc>,
    zone: Tz,
    events_cap: usize,
) -> Result<Review, StoreError> {
    let rec = Record::read(store, id)?;
    let inc = &rec.snap.incident;
    // The runbook as declared; one that no longer loads still has a
    // review, without phases.
    let rb = crate::runbook::load(&inc.runbook_file, &inc.runbook_source, &library.known()).ok();
    Ok(review(
        &rec,
        &Lens {
            runbook: rb.as_ref(),
            catalog: &library.catalog,
            roles,
            now,
            zone,
            events_cap,
        },
    ))
}

/// What the review is read against: the runbook as declared (None when it
/// no longer loads: the review still shows the record, without phases),
/// the catalog, who holds each role, the time, and the display zone.
pub struct Lens<'a> {
    pub runbook: Option<&'a Runbook>,
    pub catalog: &'a Catalog,
    pub roles: &'a BTreeMap<String, Vec<String>>,
    pub now: DateTime<Utc>,
    pub zone: Tz,
    /// Rows of the full event log to carry: `EVENTS_SHOWN` on a page,
    /// every one in a postmortem.
    pub events_cap: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub at: Shown,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub incident: Header,
    pub summary: Summary,
    pub impact: Impact,
    pub gantt: gantt::Chart,
    pub platforms: Vec<Platform>,
    pub people: Vec<Task>,
    pub clocks: Vec<ClockRow>,
    pub notices: Vec<NoticeRow>,
    pub key_events: Vec<EventRow>,
    /// The account regulators ask for (`timeline::chronology`): fan-outs
    /// summed per step, reads left out.
    pub chronology: Vec<Entry>,
    pub events: Vec<EventRow>,
    pub events_total: usize,
    pub events_cut: usize,
    pub followups: Vec<String>,
    pub rehearsal: Option<Rehearsal>,
    pub zone: String,
    pub generated: Shown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Header {
    pub id: String,
    pub title: String,
    pub runbook: String,
    pub severity: String,
    pub status: String,
    pub open: bool,
    pub drill: bool,
    pub declared: Shown,
    pub declared_by: String,
    pub finished: Option<Shown>,
    /// From declaration to the end, or to now while open.
    pub elapsed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// "1.8 s", or why there is no figure ("not yet", "not contained").
    pub contain: String,
    pub verified: Vec<Verified>,
    pub verified_ok: usize,
    pub verified_total: usize,
    pub notified: Vec<Notified>,
    pub steps_automatic: usize,
    pub steps_people: usize,
    pub people_wait: String,
    pub still_open: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub platform: String,
    pub status: String,
    pub ok: bool,
    pub after: Option<String>,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Notified {
    pub jurisdiction: String,
    pub audience: String,
    /// Time from declaration to the first notice sent, or "not sent".
    pub after: String,
    pub sent: bool,
    pub by: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    pub tool: Option<String>,
    pub records: u64,
    pub jurisdictions: Vec<String>,
    pub residents: Vec<String>,
    pub data_elements: Vec<String>,
    /// Per platform, how many of its objects quench changed.
    pub platforms: Vec<(String, u64)>,
    pub objects_changed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Platform {
    pub integration: String,
    pub name: String,
    pub changes: Vec<Change>,
    pub verification: Option<Verified>,
    /// What quench could not do there and a person has to.
    pub for_people: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub step: String,
    pub what: String,
    pub status: String,
    pub total: usize,
    pub changed: usize,
    pub already: usize,
    pub failed: usize,
    pub skipped: usize,
    pub items: Vec<ItemRow>,
    pub items_more: usize,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemRow {
    pub n: u32,
    pub label: String,
    pub status: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub step: String,
    pub kind: String,
    pub text: String,
    /// The roles asked, with their members from the config.
    pub asked: String,
    pub asked_at: Option<Shown>,
    pub answered_by: Option<String>,
    pub answer: String,
    pub answered_at: Option<Shown>,
    pub took: Option<String>,
    pub open: bool,
    pub automatic: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClockRow {
    pub jurisdiction: String,
    pub recipient: String,
    pub title: String,
    pub deadline: String,
    pub status: String,
    /// Due, in the jurisdiction's own zone.
    pub due: Option<Shown>,
    pub left: Option<String>,
    pub overdue: bool,
    /// "met" / "met late" once a matching notice went out.
    pub met: Option<String>,
    pub met_on_time: bool,
    pub describe: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoticeRow {
    pub audience: String,
    pub jurisdiction: String,
    pub version: u32,
    pub template: String,
    pub drafted: Shown,
    pub drafted_by: String,
    pub approved_by: Option<String>,
    pub approved: Option<Shown>,
    pub sent_by: Option<String>,
    pub sent: Option<Shown>,
    pub state: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Empty for a row the review derived (a phase's start or end).
    pub seq: String,
    pub at: Shown,
    pub offset: String,
    pub kind: String,
    pub step: String,
    pub actor: String,
    pub message: String,
    pub class: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub heading: String,
    pub items: Vec<String>,
}

mod chart;
mod events;
mod obligations;
mod people;
mod platforms;

/// Per step, the stretches it waited on people.
type Waits = BTreeMap<String, Vec<(DateTime<Utc>, DateTime<Utc>)>>;
/// A step in runbook order: its id, phase, and definition (none when the
/// runbook no longer loads).
type StepRef<'a> = (String, Option<Phase>, Option<&'a crate::runbook::Step>);

/// What every section reads, computed once.
struct Facts<'a> {
    rec: &'a Record,
    lens: &'a Lens<'a>,
    steps: Vec<StepRef<'a>>,
    /// The end of the axis: the incident's end, or now while it runs.
    end: DateTime<Utc>,
    waits: Waits,
    clocks: Vec<Json>,
    sent: BTreeMap<(String, String), &'a TimelineEvent>,
}

const PHASES: [Phase; 3] = [Phase::Contain, Phase::Notify, Phase::Recover];

fn phase_name(p: Option<Phase>) -> &'static str {
    p.map(Phase::name).unwrap_or("other")
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_at(s: &Json) -> Option<DateTime<Utc>> {
    s.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

pub fn review(rec: &Record, lens: &Lens) -> Review {
    let snap = &rec.snap;
    let inc = &snap.incident;
    let zone = lens.zone;
    let open = inc.status.is_open();
    let end = if open {
        lens.now
    } else {
        inc.finished_at
            .or_else(|| rec.events.last().map(|e| e.at))
            .unwrap_or(lens.now)
    };
    // Steps in runbook order with their phase; without the runbook, the
    // recorded runs by name.
    let steps: Vec<StepRef> = match lens.runbook {
        Some(rb) => rb
            .steps
            .iter()
            .map(|s| (s.id.clone(), s.phase, Some(s)))
            .collect(),
        None => snap.steps.keys().map(|k| (k.clone(), None, None)).collect(),
    };
    let f = Facts {
        rec,
        lens,
        steps,
        end,
        waits: people::people_waits(&rec.events, end),
        clocks: super::clocks::clocks_json(inc, &rec.events, lens.now),
        sent: obligations::first_sent(&rec.events),
    };
    let (steps, waits) = (&f.steps, &f.waits);
    // Steps a person does: approvals, manual tasks, and actions the
    // platform offers no API for (recorded as manual tasks).
    let manual: std::collections::BTreeSet<&str> = rec
        .events
        .iter()
        .filter(|e| e.kind.starts_with("manual."))
        .filter_map(|e| e.step.as_deref())
        .collect();
    let people_steps: std::collections::BTreeSet<&str> = steps
        .iter()
        .filter(|(id, _, s)| {
            matches!(
                s.map(|s| &s.kind),
                Some(StepKind::Approval { .. } | StepKind::Manual { .. })
            ) || manual.contains(id.as_str())
        })
        .map(|(id, _, _)| id.as_str())
        .collect();
    let chart = chart::chart(&f);
    let verification = platforms::verification(&f);
    let (platforms, objects) = platforms::platforms(&f, &verification);
    let people = people::tasks(rec, lens);
    let clocks = obligations::clock_rows(&f);
    let notices = obligations::notice_rows(&f);
    let notified = obligations::notified(&f);
    let jurisdictions = strings(&inc.inputs["jurisdictions"]);

    // Counts of machine and people steps that ran.
    let ran = |id: &str| {
        snap.steps
            .get(id)
            .is_some_and(|r| r.started_at.is_some() && r.status != StepStatus::Skipped)
    };
    let steps_people = steps
        .iter()
        .filter(|(id, _, _)| ran(id) && people_steps.contains(id.as_str()))
        .count();
    let steps_automatic = steps
        .iter()
        .filter(|(id, _, _)| ran(id) && !people_steps.contains(id.as_str()))
        .count();
    let people_wait: TimeDelta = waits
        .iter()
        .filter(|(id, _)| people_steps.contains(id.as_str()))
        .flat_map(|(_, w)| w.iter().map(|(a, b)| *b - *a))
        .sum();

    let contain_ms = lens
        .runbook
        .and_then(|rb| super::time_to_contain_ms(rb, snap));
    let contain_failed = steps.iter().any(|(id, p, _)| {
        *p == Some(Phase::Contain)
            && snap
                .steps
                .get(id)
                .is_some_and(|r| r.status == StepStatus::Failed)
    });
    let contain = match contain_ms {
        Some(ms) => duration_text(TimeDelta::milliseconds(ms)),
        None if contain_failed => "not contained: a containment step failed".into(),
        None if open => "not yet".into(),
        None if lens.runbook.is_none() => "unknown (the runbook no longer loads)".into(),
        None => "not contained".into(),
    };

    // Follow-ups and what is still open.
    let mut followups = Vec::new();
    for t in people.iter().filter(|t| t.open) {
        followups.push(format!("{} {} ({}): {}", t.kind, t.step, t.asked, t.text));
    }
    for p in &platforms {
        for c in p
            .changes
            .iter()
            .filter(|c| c.failed > 0 || c.status == "failed")
        {
            let n = if c.failed > 0 {
                format!("{} of {} item(s) failed", c.failed, c.total)
            } else {
                c.error.clone().unwrap_or_else(|| "failed".into())
            };
            followups.push(format!("{}: {} ({}): {n}", p.name, c.what, c.step));
        }
        if let Some(v) = p
            .verification
            .as_ref()
            .filter(|v| !v.ok && v.status != "pending")
        {
            followups.push(format!(
                "{}: containment {}: {}",
                p.name,
                v.status,
                v.problems.join("; ")
            ));
        }
    }
    for n in notices.iter().filter(|n| n.state != "sent") {
        followups.push(format!(
            "{} notice for {} (v{}): {}",
            n.audience, n.jurisdiction, n.version, n.state
        ));
    }
    for c in clocks.iter().filter(|c| c.overdue) {
        followups.push(format!(
            "OVERDUE: {} ({}, {})",
            c.title, c.jurisdiction, c.describe
        ));
    }
    let mut still_open: Vec<String> = steps
        .iter()
        .filter_map(|(id, _, _)| {
            let r = snap.steps.get(id)?;
            matches!(r.status, StepStatus::Waiting | StepStatus::Running)
                .then(|| format!("{id} ({})", r.status.name()))
        })
        .collect();
    still_open.extend(followups.iter().cloned());

    let (key_events, events) = events::rows(&f);
    let rehearsal = events::rehearsal(rec);
    let mut residents: Vec<String> = crate::runbook::inputs::residents(&inc.inputs["residents"])
        .into_iter()
        .map(|(j, n)| format!("{j}: {n}"))
        .collect();
    residents.sort();
    let impact = Impact {
        tool: inc.inputs["tool"].as_str().map(str::to_string),
        records: inc.inputs["records"].as_u64().unwrap_or(0),
        jurisdictions,
        residents,
        data_elements: strings(&inc.inputs["data_elements"]),
        objects_changed: objects.values().sum(),
        platforms: objects.into_iter().collect(),
    };

    Review {
        incident: Header {
            id: inc.id.clone(),
            title: inc.title.clone(),
            runbook: inc.runbook.clone(),
            severity: inc.severity.name().to_string(),
            status: inc.status.name().to_string(),
            open,
            drill: inc.drill,
            declared: shown(inc.declared_at, zone),
            declared_by: inc.declared_by.clone(),
            finished: inc.finished_at.map(|t| shown(t, zone)),
            elapsed: duration_text(end - inc.declared_at),
        },
        summary: Summary {
            contain,
            verified_ok: verification.iter().filter(|v| v.ok).count(),
            verified_total: verification.len(),
            verified: verification,
            notified,
            steps_automatic,
            steps_people,
            people_wait: duration_text(people_wait),
            still_open,
        },
        impact,
        gantt: chart,
        platforms,
        people,
        clocks,
        notices,
        key_events,
        chronology: lens
            .runbook
            .map(|rb| super::chronology::chronology(rb, snap, &rec.events, lens.catalog))
            .unwrap_or_default()
            .into_iter()
            .map(|e| Entry {
                at: shown(e.at, zone),
                text: e.text,
            })
            .collect(),
        events_total: rec.events.len(),
        events_cut: rec.events.len().saturating_sub(lens.events_cap),
        events,
        followups,
        rehearsal,
        zone: zone.name().to_string(),
        generated: shown(lens.now, zone),
    }
}
