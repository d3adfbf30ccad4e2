//! The engine's two ports: the journal it records every transition in,
//! and the actions it performs. The engine sees only these traits, so its
//! driver can be run against an in-memory journal and scripted actions
//! (the tests below), and a second store backend only has to implement
//! `Journal` for the engine to run on it.
//!
//! The contract a journal keeps: a write returns only once it is durable
//! (the engine starts an effect right after recording that it will), and
//! an event written with a state change is written in the same
//! transaction as that change.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::integrations::{CallError, Caller, Executor, Success};
use crate::store::audit::ItemsDigest;
use crate::store::{
    Incident, IncidentStatus, ItemRun, NewEvent, NoticeDraft, StepRun, Store, StoreError,
    TimelineEvent,
};

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where an incident's state and timeline are kept.
#[async_trait]
pub trait Journal: Send + Sync + 'static {
    /// A new, human-sized incident id for a declaration at `at`.
    async fn next_incident_id(&self, at: DateTime<Utc>) -> Result<String>;
    /// Records a new incident and its first event.
    async fn create_incident(&self, inc: &Incident, ev: NewEvent) -> Result<TimelineEvent>;
    async fn incident(&self, id: &str) -> Result<Incident>;
    async fn incidents(&self) -> Result<Vec<Incident>>;
    /// Sets an incident's status, with the event that says why.
    async fn set_incident_status(
        &self,
        id: &str,
        status: IncidentStatus,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent>;

    async fn step_runs(&self, incident: &str) -> Result<BTreeMap<String, StepRun>>;
    /// A step's run; a step not started yet has the default (pending) run.
    async fn step_run(&self, incident: &str, step: &str) -> Result<StepRun>;
    async fn put_step(
        &self,
        incident: &str,
        step: &str,
        run: &StepRun,
        at: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<TimelineEvent>>;

    async fn item_runs(&self, incident: &str, step: &str) -> Result<BTreeMap<u32, ItemRun>>;
    /// Writes an item's record, with its event when it has one (a fan-out's
    /// items that succeed have none: their step summarises them).
    async fn put_item(
        &self,
        incident: &str,
        step: &str,
        index: u32,
        run: &ItemRun,
        at: DateTime<Utc>,
        ev: Option<NewEvent>,
    ) -> Result<Option<TimelineEvent>>;
    /// Adds the step's item records from index `from` on (below `below`,
    /// when given) to `digest`, in index order, as stored: a fan-out's
    /// `items.summary` carries the digest of them all.
    async fn digest_items(
        &self,
        incident: &str,
        step: &str,
        digest: &mut ItemsDigest,
        from: u32,
        below: Option<u32>,
    ) -> Result<()>;

    /// Appends an event on its own.
    async fn append(
        &self,
        incident: &str,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent>;
    async fn events(&self, incident: &str) -> Result<Vec<TimelineEvent>>;

    /// Stores a notice draft as its next version, with its event.
    async fn put_notice(
        &self,
        draft: NoticeDraft,
        ev: NewEvent,
    ) -> Result<(NoticeDraft, TimelineEvent)>;
    /// Marks the latest version of each notice drafted by `steps` approved.
    async fn approve_notices(
        &self,
        incident: &str,
        steps: &[String],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<TimelineEvent>>;
}

/// The embedded store is the default journal. Its reads are sled's (in
/// memory, quick): they run inline rather than on the blocking pool.
#[async_trait]
impl Journal for Store {
    async fn next_incident_id(&self, at: DateTime<Utc>) -> Result<String> {
        Store::next_incident_id(self, at)
    }
    async fn create_incident(&self, inc: &Incident, ev: NewEvent) -> Result<TimelineEvent> {
        Store::create_incident(self, inc, ev).await
    }
    async fn incident(&self, id: &str) -> Result<Incident> {
        Store::incident(self, id)
    }
    async fn incidents(&self) -> Result<Vec<Incident>> {
        Store::incidents(self)
    }
    async fn set_incident_status(
        &self,
        id: &str,
        status: IncidentStatus,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent> {
        Store::set_incident_status(self, id, status, at, ev).await
    }
    async fn step_runs(&self, incident: &str) -> Result<BTreeMap<String, StepRun>> {
        Store::step_runs(self, incident)
    }
    async fn step_run(&self, incident: &str, step: &str) -> Result<StepRun> {
        Store::step_run(self, incident, step)
    }
    async fn put_step(
        &self,
        incident: &str,
        step: &str,
        run: &StepRun,
        at: DateTime<Utc>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<TimelineEvent>> {
        Store::put_step(self, incident, step, run, at, events).await
    }
    async fn item_runs(&self, incident: &str, step: &str) -> Result<BTreeMap<u32, ItemRun>> {
        Store::item_runs(self, incident, step)
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
        Store::put_item(self, incident, step, index, run, at, ev).await
    }
    async fn digest_items(
        &self,
        incident: &str,
        step: &str,
        digest: &mut ItemsDigest,
        from: u32,
        below: Option<u32>,
    ) -> Result<()> {
        Store::digest_items(self, incident, step, digest, from, below)
    }
    async fn append(
        &self,
        incident: &str,
        at: DateTime<Utc>,
        ev: NewEvent,
    ) -> Result<TimelineEvent> {
        Store::append(self, incident, at, ev).await
    }
    async fn events(&self, incident: &str) -> Result<Vec<TimelineEvent>> {
        Store::events(self, incident)
    }
    async fn put_notice(
        &self,
        draft: NoticeDraft,
        ev: NewEvent,
    ) -> Result<(NoticeDraft, TimelineEvent)> {
        Store::put_notice(self, draft, ev).await
    }
    async fn approve_notices(
        &self,
        incident: &str,
        steps: &[String],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<TimelineEvent>> {
        Store::approve_notices(self, incident, steps, by, at).await
    }
}

/// What the engine asks of the platforms.
#[async_trait]
pub trait Actions: Send + Sync + 'static {
    /// Performs one item's call, with the item's idempotency key, retries
    /// inside the call excluded (the engine owns the retry policy).
    async fn call(
        &self,
        caller: Caller<'_>,
        integration: &str,
        action: &str,
        with: &Json,
        idempotency_key: &str,
        timeout: Option<Duration>,
    ) -> std::result::Result<Success, CallError>;
    /// What a call would send, without sending it (a plan's write).
    fn preview(
        &self,
        integration: &str,
        action: &str,
        with: &Json,
    ) -> std::result::Result<Json, String>;
    /// Text with every secret and issued token this side knows replaced,
    /// before it is recorded.
    fn redact(&self, text: &str) -> String;
}

#[async_trait]
impl Actions for Executor {
    async fn call(
        &self,
        caller: Caller<'_>,
        integration: &str,
        action: &str,
        with: &Json,
        idempotency_key: &str,
        timeout: Option<Duration>,
    ) -> std::result::Result<Success, CallError> {
        self.call_for(caller, integration, action, with, idempotency_key, timeout)
            .await
    }
    fn preview(
        &self,
        integration: &str,
        action: &str,
        with: &Json,
    ) -> std::result::Result<Json, String> {
        Executor::preview(self, integration, action, with)
    }
    fn redact(&self, text: &str) -> String {
        Executor::redact(self, text)
    }
}
