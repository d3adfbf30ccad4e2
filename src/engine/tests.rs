//! The driver, run against an in-memory journal and a scripted platform:
//! no sled, no HTTP, no wall clock. What the end-to-end tests show over a
//! real store and a loopback mock, these show about the loop itself (what
//! is recorded before an effect, what a resume redoes, what a crash in a
//! step leaves), quickly and exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value as Json};

use super::journal::{Actions, Journal, Result};
use super::{Declaration, Engine, FakeClock, Settings};
use crate::integrations::{CallError, Success};
use crate::library::Library;
use crate::store::{
    EventKind, Incident, IncidentStatus, ItemRun, NewEvent, NoticeDraft, StepRun, StepStatus,
    StoreError, TimelineEvent,
};

/// A journal in memory. `refuse_item_writes_after` makes the n-th item
/// write (and every one after it) fail, as a full disk would.
#[derive(Default)]
struct Memory {
    state: Mutex<State>,
    refuse_item_writes_after: Option<usize>,
    /// Refuses the write that admits a fan-out's items (`started_below`).
    refuse_starts: bool,
}

#[derive(Default)]
struct State {
    ids: u32,
    incidents: BTreeMap<String, Incident>,
    steps: BTreeMap<(String, String), StepRun>,
    items: BTreeMap<(String, String, u32), ItemRun>,
    item_writes: usize,
    /// The event kinds of each step write, in order.
    step_writes: Vec<(String, Vec<String>)>,
    events: BTreeMap<String, Vec<TimelineEvent>>,
    notices: Vec<NoticeDraft>,
}

impl State {
    fn append(&mut self, incident: &str, at: DateTime<Utc>, ev: NewEvent) -> TimelineEvent {
        let list = self.events.entry(incident.to_string()).or_default();
        let te = TimelineEvent {
            seq: list.len() as u64 + 1,
            at,
            kind: ev.kind.name().to_string(),
            step: ev.step,
            item: ev.item,
            actor: ev.actor,
            message: ev.message,
            data: ev.data,
        };
        list.push(te.clone());
        te
    }
}

impl Memory {
    fn kinds(&self, incident: &str) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.events[incident].iter().map(|e| e.kind.clone()).collect()
    }
    fn item(&self, incident: &str, step: &str, i: u32) -> ItemRun {
        let s = self.state.lock().unwrap();
        s.items[&(incident.into(), step.into(), i)].clone()
    }
}

#[async_trait]
impl Journal for Memory {
    async fn next_incident_id(&self, at: DateTime<Utc>) -> Result<String> {
        let mut s = self.state.lock().unwrap();
        s.ids += 1;
        Ok(format!("INC-{}-{:04}", at.format("%Y%m%d"), s.ids))
    }
    async fn create_incident(&self, inc: &Incident, ev: NewEvent) -> Result<TimelineEvent> {
        let mut s = self.state.lock().unwrap();
        s.incidents.insert(inc.id.clone(), inc.clone());
        Ok(s.append(&inc.id, inc.declared_at, ev))
    }
    async fn incident(&self, id: &str) -> Result<Incident> {
        let s = self.state.lock().unwrap();
        s.incidents
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NoIncident(id.into()))
    }
    async fn incidents(&self) -> Result<Vec<Incident>> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .incidents
            .values()
            .cloned()
            .collect())
    }
    async fn set_incident_status(
        &self,
        id: &str,
        status: IncidentStatus,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent> {
        let mut s = self.state.lock().unwrap();
        let inc = s
            .incidents
            .get_mut(id)
            .ok_or_else(|| StoreError::NoIncident(id.into()))?;
        inc.status = status;
        inc.finished_at = (!status.is_open()).then_some(at);
        Ok(s.append(id, at, ev))
    }
    async fn step_runs(&self, incident: &str) -> Result<BTreeMap<String, StepRun>> {
        let s = self.state.lock().unwrap();
        Ok(s.steps
            .iter()
            .filter(|((i, _), _)| i == incident)
            .map(|((_, step), r)| (step.clone(), r.clone()))
            .collect())
    }
    async fn step_run(&self, incident: &str, step: &str) -> Result<StepRun> {
        let s = self.state.lock().unwrap();
        Ok(s.steps
            .get(&(incident.into(), step.into()))
            .cloned()
            .unwrap_or_default())
    }
    async fn put_step(
        &self,
        incident: &str,
        step: &str,
        run: &StepRun,
        at: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<TimelineEvent>> {
        let mut s = self.state.lock().unwrap();
        let prior = s.steps.get(&(incident.into(), step.into()));
        if self.refuse_starts && run.started_below != prior.and_then(|p| p.started_below) {
            return Err(StoreError::Unusable {
                path: "memory".into(),
                what: "the disk is full".into(),
                fix: "free some space",
            });
        }
        s.steps.insert((incident.into(), step.into()), run.clone());
        let kinds = events.iter().map(|e| e.kind.name().to_string()).collect();
        s.step_writes.push((step.to_string(), kinds));
        Ok(events
            .into_iter()
            .map(|ev| s.append(incident, at, ev))
            .collect())
    }
    async fn item_runs(&self, incident: &str, step: &str) -> Result<BTreeMap<u32, ItemRun>> {
        let s = self.state.lock().unwrap();
        Ok(s.items
            .iter()
            .filter(|((i, st, _), _)| i == incident && st == step)
            .map(|((_, _, n), r)| (*n, r.clone()))
            .collect())
    }
    async fn put_item(
        &self,
        incident: &str,
        step: &str,
        index: u32,
        run: &ItemRun,
        at: DateTime<Utc>,
        ev: Option<NewEvent>,
    ) -> Result<Option<TimelineEvent>> {
        let mut s = self.state.lock().unwrap();
        s.item_writes += 1;
        if self
            .refuse_item_writes_after
            .is_some_and(|n| s.item_writes > n)
        {
            return Err(StoreError::Unusable {
                path: "memory".into(),
                what: "the disk is full".into(),
                fix: "free some space",
            });
        }
        s.items
            .insert((incident.into(), step.into(), index), run.clone());
        Ok(ev.map(|ev| s.append(incident, at, ev)))
    }
    async fn digest_items(
        &self,
        incident: &str,
        step: &str,
        digest: &mut crate::store::audit::ItemsDigest,
        from: u32,
        below: Option<u32>,
    ) -> Result<()> {
        for (i, r) in self.item_runs(incident, step).await? {
            if i >= from && below.is_none_or(|b| i < b) {
                digest.add(i, &serde_json::to_vec(&r).unwrap());
            }
        }
        Ok(())
    }
    async fn append(
        &self,
        incident: &str,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent> {
        Ok(self.state.lock().unwrap().append(incident, at, ev))
    }
    async fn events(&self, incident: &str) -> Result<Vec<TimelineEvent>> {
        let s = self.state.lock().unwrap();
        Ok(s.events.get(incident).cloned().unwrap_or_default())
    }
    async fn put_notice(
        &self,
        mut draft: NoticeDraft,
        ev: NewEvent,
    ) -> Result<(NoticeDraft, TimelineEvent)> {
        let mut s = self.state.lock().unwrap();
        draft.version = 1 + s
            .notices
            .iter()
            .filter(|n| {
                (&n.incident, &n.step, &n.jurisdiction)
                    == (&draft.incident, &draft.step, &draft.jurisdiction)
            })
            .count() as u32;
        s.notices.push(draft.clone());
        let te = s.append(&draft.incident, draft.drafted_at, ev);
        Ok((draft, te))
    }
    async fn approve_notices(
        &self,
        _incident: &str,
        _steps: &[String],
        _by: &str,
        _at: DateTime<Utc>,
    ) -> Result<Vec<TimelineEvent>> {
        Ok(vec![])
    }
}

/// One call as the platform saw it.
#[derive(Debug, Clone)]
struct Seen {
    action: String,
    grant: Option<String>,
    key: String,
}

/// A directory holding consent grants, answering the two Microsoft Graph
/// actions the runbooks below use. `busy` answers 503 (Retry-After 2s) to
/// the first delete of each grant it names; `panics_on` is a bug in an
/// action, reached by deleting that grant.
struct Directory {
    grants: Mutex<BTreeSet<String>>,
    seen: Mutex<Vec<Seen>>,
    busy: Mutex<BTreeSet<String>>,
    panics_on: Option<String>,
}

impl Directory {
    fn with(grants: &[&str]) -> Directory {
        Directory {
            grants: Mutex::new(grants.iter().map(|g| g.to_string()).collect()),
            seen: Mutex::default(),
            busy: Mutex::default(),
            panics_on: None,
        }
    }
    fn remaining(&self) -> Vec<String> {
        self.grants.lock().unwrap().iter().cloned().collect()
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Actions for Directory {
    async fn call(
        &self,
        _caller: crate::integrations::Caller<'_>,
        integration: &str,
        action: &str,
        with: &Json,
        idempotency_key: &str,
        _timeout: Option<Duration>,
    ) -> std::result::Result<Success, CallError> {
        assert_eq!(integration, "microsoft-graph");
        let grant = with["grant_id"].as_str().map(str::to_string);
        self.seen.lock().unwrap().push(Seen {
            action: action.into(),
            grant: grant.clone(),
            key: idempotency_key.into(),
        });
        match action {
            "list_app_grants" => {
                let list: Vec<Json> = self
                    .grants
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|g| json!({"id": g}))
                    .collect();
                Ok(Success {
                    status: 200,
                    output: Json::Array(list),
                    already_done: false,
                })
            }
            "delete_grant" => {
                let grant = grant.expect("a grant id");
                if self.panics_on.as_deref() == Some(grant.as_str()) {
                    panic!("index out of bounds in the response reader");
                }
                if self.busy.lock().unwrap().remove(&grant) {
                    return Err(CallError::Retriable {
                        status: Some(503),
                        retry_after: Some(Duration::from_secs(2)),
                        message: "503 Service Unavailable".into(),
                    });
                }
                let existed = self.grants.lock().unwrap().remove(&grant);
                Ok(Success {
                    status: if existed { 204 } else { 404 },
                    output: Json::Null,
                    already_done: !existed,
                })
            }
            other => panic!("the runbook calls only two actions, not {other}"),
        }
    }
    fn preview(
        &self,
        _integration: &str,
        _action: &str,
        _with: &Json,
    ) -> std::result::Result<Json, String> {
        Err("plans are not run here".into())
    }
    fn redact(&self, text: &str) -> String {
        text.to_string()
    }
}

const RUNBOOK: &str = r#"
version: 1
name: revoke-grants
steps:
  - id: find
    action: microsoft-graph.list_app_grants
    with: { service_principal_id: "sp-1" }
  - id: revoke
    action: microsoft-graph.delete_grant
    needs: [find]
    for_each: steps.find.output
    concurrency: 2
    with: { grant_id: "{{item.id}}" }
    retry: { attempts: 3, backoff: 1s, max_backoff: 10s }
"#;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap()
}

struct Rig {
    engine: Engine,
    journal: Arc<Memory>,
    platform: Arc<Directory>,
    clock: FakeClock,
}

fn rig(journal: Memory, platform: Directory) -> Rig {
    let journal = Arc::new(journal);
    let platform = Arc::new(platform);
    let clock = FakeClock::new(start());
    let library = Arc::new(Library::load(&Default::default()).expect("the bundled library"));
    let engine = Engine::new(
        journal.clone(),
        platform.clone(),
        Arc::new(clock.clone()),
        library,
        Settings {
            drill: false,
            ..Settings::default()
        },
    );
    Rig {
        engine,
        journal,
        platform,
        clock,
    }
}

impl Rig {
    async fn declare(&self) -> String {
        self.declare_runbook(RUNBOOK).await
    }

    async fn declare_runbook(&self, src: &str) -> String {
        let rb = crate::runbook::load("revoke-grants.yaml", src, &self.engine.library.known())
            .expect("the test runbook validates");
        self.engine
            .declare(
                &rb,
                Declaration {
                    runbook_file: "revoke-grants.yaml".into(),
                    runbook_source: src.into(),
                    inputs: json!({}),
                    declared_by: "U0RESP01".into(),
                    token: None,
                    severity: Default::default(),
                    channel: None,
                },
            )
            .await
            .expect("declared")
    }
}

/// Two fan-outs over one listing, the second after the first: the first
/// must leave the listing for the second, which (as its last reader) may
/// take it.
const AGAIN: &str = r#"
  - id: again
    action: microsoft-graph.delete_grant
    needs: [revoke]
    for_each: steps.find.output
    with: { grant_id: "{{item.id}}" }
"#;

#[tokio::test]
async fn a_listing_read_by_two_fan_outs_reaches_both_and_stays_in_the_journal() {
    let r = rig(Memory::default(), Directory::with(&["g1", "g2", "g3"]));
    let id = r
        .declare_runbook(&format!("{}{}", RUNBOOK.trim_end(), AGAIN))
        .await;

    let status = r.engine.run(&id).await.expect("ran");

    assert_eq!(status, IncidentStatus::Completed);
    let deletes = |pass: &str| {
        let s = r.journal.state.lock().unwrap();
        (0..3)
            .map(|i| s.items[&(id.clone(), pass.to_string(), i)].already_done)
            .collect::<Vec<_>>()
    };
    // The second pass saw every grant, each already gone.
    assert_eq!(deletes("revoke"), [false, false, false]);
    assert_eq!(deletes("again"), [true, true, true]);
    assert_eq!(r.platform.seen().len(), 1 + 3 + 3);
    // The driver gave up its copy; the journal kept the listing whole.
    let s = r.journal.state.lock().unwrap();
    assert_eq!(
        s.steps[&(id.clone(), "find".to_string())].output,
        json!([{"id": "g1"}, {"id": "g2"}, {"id": "g3"}])
    );
}

#[tokio::test]
async fn a_refused_item_is_retried_with_its_key_and_every_grant_ends_gone() {
    let platform = Directory::with(&["g1", "g2", "g3"]);
    platform.busy.lock().unwrap().insert("g2".into());
    let r = rig(Memory::default(), platform);
    let id = r.declare().await;

    let status = r.engine.run(&id).await.expect("ran");

    assert_eq!(status, IncidentStatus::Completed);
    assert!(
        r.platform.remaining().is_empty(),
        "{:?}",
        r.platform.remaining()
    );
    let g2: Vec<Seen> = r
        .platform
        .seen()
        .into_iter()
        .filter(|s| s.grant.as_deref() == Some("g2"))
        .collect();
    assert_eq!(g2.len(), 2, "refused once, then deleted: {g2:?}");
    assert!(g2.iter().all(|s| s.key == g2[0].key), "{g2:?}");
    assert_eq!(
        r.clock.sleeps(),
        vec![Duration::from_secs(2)],
        "the wait is the platform's Retry-After"
    );
    let item = r.journal.item(&id, "revoke", 1);
    assert_eq!((item.status, item.attempts), (StepStatus::Succeeded, 2));
    let kinds = r.journal.kinds(&id);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == EventKind::ItemRetry.name())
            .count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some(EventKind::IncidentCompleted.name())
    );
}

#[tokio::test]
async fn a_resume_redoes_only_the_item_in_flight_and_with_the_same_key() {
    let r = rig(Memory::default(), Directory::with(&["g2"]));
    let id = r.declare().await;
    // As a daemon killed mid-fan-out left it: g1 deleted and recorded, the
    // delete of g2 recorded as started (attempt 1) with no outcome.
    let key = |i: u32| super::idempotency_key(&id, "revoke", i);
    {
        let mut s = r.journal.state.lock().unwrap();
        let finished = |output: Json| StepRun {
            status: StepStatus::Succeeded,
            output,
            ..StepRun::default()
        };
        s.steps.insert(
            (id.clone(), "find".into()),
            finished(json!([{"id": "g1"}, {"id": "g2"}])),
        );
        s.steps.insert(
            (id.clone(), "revoke".into()),
            StepRun {
                status: StepStatus::Running,
                items: Some(2),
                ..StepRun::default()
            },
        );
        let done = ItemRun {
            status: StepStatus::Succeeded,
            attempts: 1,
            ..ItemRun::pending(key(0))
        };
        let in_flight = ItemRun {
            status: StepStatus::Running,
            attempts: 1,
            ..ItemRun::pending(key(1))
        };
        s.items.insert((id.clone(), "revoke".into(), 0), done);
        s.items.insert((id.clone(), "revoke".into(), 1), in_flight);
    }

    let status = r.engine.resume(&id).await.expect("resumed");

    assert_eq!(status, IncidentStatus::Completed);
    let seen = r.platform.seen();
    assert_eq!(seen.len(), 1, "only the item in flight is called: {seen:?}");
    assert_eq!(
        (seen[0].action.as_str(), seen[0].key.as_str()),
        ("delete_grant", key(1).as_str())
    );
    assert!(r.platform.remaining().is_empty());
    assert_eq!(r.journal.item(&id, "revoke", 1).attempts, 2);
    assert!(r
        .journal
        .kinds(&id)
        .contains(&"incident.resumed".to_string()));
}

#[tokio::test]
async fn no_call_starts_whose_start_could_not_be_recorded() {
    // The write that lets the deletes start fails, as a full disk would.
    let journal = Memory {
        refuse_starts: true,
        ..Memory::default()
    };
    let r = rig(journal, Directory::with(&["g1", "g2", "g3"]));
    let id = r.declare().await;

    let err = r.engine.run(&id).await.expect_err("the journal failed");

    assert!(err.to_string().contains("the disk is full"), "{err}");
    let actions: Vec<String> = r.platform.seen().into_iter().map(|s| s.action).collect();
    assert_eq!(actions, ["list_app_grants"], "no delete without its record");
    assert_eq!(r.platform.remaining(), ["g1", "g2", "g3"]);
    let inc = r.journal.state.lock().unwrap().incidents[&id].clone();
    assert_eq!(
        inc.status,
        IncidentStatus::Running,
        "a run the journal stopped stays open, to resume"
    );
}

#[tokio::test]
async fn a_fan_out_starts_no_item_once_an_outcome_could_not_be_recorded() {
    // `find` writes its one call twice (started, done); the deletes'
    // outcomes (two calls at a time) then fail to record, as on a full disk.
    let journal = Memory {
        refuse_item_writes_after: Some(2),
        ..Memory::default()
    };
    let grants = ["g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8"];
    let r = rig(journal, Directory::with(&grants));
    let id = r.declare().await;

    let err = r.engine.run(&id).await.expect_err("the journal failed");

    assert!(err.to_string().contains("the disk is full"), "{err}");
    let deleted: Vec<String> = r
        .platform
        .seen()
        .into_iter()
        .filter(|s| s.action == "delete_grant")
        .map(|s| s.key)
        .collect();
    // In flight when the first record failed: at most the two calls and
    // the two items whose outcome was being recorded; none after.
    assert!(
        (2..=4).contains(&deleted.len()),
        "only those in flight: {deleted:?}"
    );
    assert_eq!(r.platform.remaining().len(), grants.len() - deleted.len());
    let inc = r.journal.state.lock().unwrap().incidents[&id].clone();
    assert_eq!(inc.status, IncidentStatus::Running, "open, to resume");
}

#[tokio::test]
async fn a_step_that_panics_fails_and_the_incident_still_finishes() {
    let mut platform = Directory::with(&["g1", "g2"]);
    platform.panics_on = Some("g1".into());
    let r = rig(Memory::default(), platform);
    let id = r.declare().await;

    let status = r.engine.run(&id).await.expect("ran");

    assert_eq!(status, IncidentStatus::Failed);
    let step = r.journal.state.lock().unwrap().steps[&(id.clone(), "revoke".into())].clone();
    assert_eq!(step.status, StepStatus::Failed);
    let error = step.error.unwrap_or_default();
    assert!(error.contains("quench crashed"), "{error}");
    assert_eq!(
        r.journal.kinds(&id).last().map(String::as_str),
        Some(EventKind::IncidentFailed.name())
    );
}

#[tokio::test]
async fn a_fan_out_records_its_start_and_its_items_in_one_write() {
    let r = rig(Memory::default(), Directory::with(&["g1", "g2"]));
    let id = r.declare().await;
    assert_eq!(
        r.engine.run(&id).await.expect("ran"),
        IncidentStatus::Completed
    );
    let writes_of = |name: &str| -> Vec<Vec<String>> {
        let s = r.journal.state.lock().unwrap();
        s.step_writes
            .iter()
            .filter(|(step, _)| step == name)
            .map(|(_, kinds)| kinds.clone())
            .collect()
    };
    let writes = writes_of("revoke");
    // One flush fewer before the first call: nothing leaves between them.
    assert_eq!(
        writes.first(),
        Some(&vec![
            EventKind::StepStarted.name().to_string(),
            EventKind::StepFannedOut.name().to_string()
        ]),
        "{writes:?}"
    );
    // A step that does not fan out still records its start on its own.
    let find = writes_of("find");
    assert_eq!(
        find.first(),
        Some(&vec![EventKind::StepStarted.name().to_string()])
    );
    assert!(r.platform.remaining().is_empty());
}
