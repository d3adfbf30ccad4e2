//! Slack follows the stored timeline, never the in-memory feed: each
//! incident has a courier that reads the events after the last one it
//! handled (its cursor, kept in the store), posts those responders must
//! see, and keeps one live status message current by editing it in place.
//!
//! Exactly once: before a post the courier stores which event it is
//! posting, and every post carries that event in its Slack metadata. After
//! a crash a post in doubt is looked up in the channel before it is sent
//! again. Slack being down or rate limited delays posts (backoff, honouring
//! Retry-After) and never touches the incident: the engine only announces
//! that something changed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use slack_morphism::prelude::*;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::api::{event_metadata, Failure, Outgoing};
use super::message::{decision_blocks, escape, fit, person, SECTION_MAX};
use super::{room, Slack};
use crate::daemon::Daemon;
use crate::store::EventKind;
use crate::store::TimelineEvent;

/// Slack allows about one chat.update per second per channel; a fan-out
/// of thousands of items makes one edit per second, not thousands.
const EDIT_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Where an incident lives in Slack and how far its courier got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct RoomState {
    /// `channel` (its own) or `thread` (a thread in the declaring channel).
    pub mode: String,
    pub channel: String,
    /// The live status message (in thread mode, the thread's root).
    pub status_ts: Option<String>,
    /// A status post was being made when the daemon stopped.
    #[serde(default)]
    pub status_pending: bool,
    /// Setup done in the channel (topic, bookmark, invite, pin, announce).
    #[serde(default)]
    pub setup: Vec<String>,
    /// Why the incident has no channel of its own, when it fell back.
    pub fallback: Option<String>,
    /// The last timeline event handled.
    #[serde(default)]
    pub posted: u64,
    /// The event being posted when the daemon stopped, if any.
    pub pending: Option<u64>,
    /// Decision requests by step: where they were posted, so a button is
    /// taken only from its own message, and replaced once decided.
    #[serde(default)]
    pub asks: BTreeMap<String, Ask>,
    /// The final status was written: nothing left to do.
    #[serde(default)]
    pub closed: bool,
}

/// One request for a decision, as posted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Ask {
    pub ts: String,
    pub text: String,
    /// Its buttons were replaced by who decided.
    #[serde(default)]
    pub decided: bool,
    /// Earlier posts of the same request (asked again after a restart).
    #[serde(default)]
    pub earlier: Vec<String>,
}

impl Ask {
    /// Whether the message `ts` is this request.
    pub(super) fn posted_as(&self, ts: &str) -> bool {
        self.ts == ts || self.earlier.iter().any(|e| e == ts)
    }
}

impl RoomState {
    pub(super) fn thread_ts(&self) -> Option<&str> {
        if self.mode == "thread" {
            self.status_ts.as_deref()
        } else {
            None
        }
    }
}

fn state_key(id: &str) -> String {
    format!("slack/{id}")
}

pub(super) fn load_state(d: &Daemon, id: &str) -> Option<RoomState> {
    let store = d.store();
    if let Some(v) = store.meta(&state_key(id)).ok().flatten() {
        return serde_json::from_value(v).ok();
    }
    // Before the outbox: a thread whose root was posted; what happened up
    // to now was posted as it happened.
    let old = store.meta(&format!("slack-thread/{id}")).ok().flatten()?;
    let last = store.events(id).ok()?.last().map(|e| e.seq).unwrap_or(0);
    Some(RoomState {
        mode: "thread".into(),
        channel: old["channel"].as_str()?.to_string(),
        status_ts: old["ts"].as_str().map(str::to_string),
        setup: vec![],
        posted: last,
        ..RoomState::default()
    })
}

async fn save(d: &Daemon, id: &str, st: &RoomState) -> Result<(), Failure> {
    let v = serde_json::to_value(st).expect("room state serializes");
    d.store()
        .put_meta(&state_key(id), &v)
        .await
        .map_err(|e| Failure::local(format!("cannot store the Slack cursor: {e}"), true))
}

/// The couriers, one per incident with something to post.
#[derive(Clone, Default)]
struct Couriers {
    bells: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl Couriers {
    /// Wakes the incident's courier, starting one if none runs.
    fn ring(&self, slack: &Slack, d: &Daemon, id: &str) {
        let mut bells = self.bells.lock().expect("couriers");
        if let Some(b) = bells.get(id) {
            b.notify_one();
            return;
        }
        let bell = Arc::new(Notify::new());
        bells.insert(id.to_string(), bell.clone());
        let (courier_slack, d, id, me) = (slack.clone(), d.clone(), id.to_string(), self.clone());
        let task = tokio::spawn(async move {
            let mut courier = Courier {
                slack: courier_slack,
                d,
                id: id.clone(),
                bell,
                last_status: None,
                last_edit: None,
            };
            loop {
                courier.run().await;
                // An event stored after the courier's last look rang a bell
                // nobody will hear: check again under the lock `ring` takes.
                let mut bells = me.bells.lock().expect("couriers");
                if !has_work(&courier.d, &id) {
                    bells.remove(&id);
                    return;
                }
            }
        });
        let mut tasks = slack.inner.tasks.lock().expect("slack tasks");
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

pub(super) fn spawn(slack: Slack, d: Daemon) {
    if slack.inner.token.is_none() {
        tracing::info!("no Slack bot token: slash commands work, channel updates are off");
        return;
    }
    let couriers = Couriers::default();
    let mut rx = d.engine().subscribe();
    // Whatever a previous run left unposted, or an incident still open.
    if let Ok(incidents) = d.store().incidents() {
        for inc in incidents {
            if has_work(&d, &inc.id) {
                couriers.ring(&slack, &d, &inc.id);
            }
        }
    }
    let task = tokio::spawn({
        let slack = slack.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok((id, _)) => couriers.ring(&slack, &d, &id),
                    // The feed only says "look again"; a lag loses nothing,
                    // as each courier reads the store.
                    Err(RecvError::Lagged(_)) => {
                        let open: Vec<String> = couriers
                            .bells
                            .lock()
                            .expect("couriers")
                            .keys()
                            .cloned()
                            .collect();
                        for id in open {
                            couriers.ring(&slack, &d, &id);
                        }
                        if let Ok(incidents) = d.store().incidents() {
                            for inc in incidents.iter().filter(|i| i.status.is_open()) {
                                couriers.ring(&slack, &d, &inc.id);
                            }
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }
    });
    slack.inner.tasks.lock().expect("slack tasks").push(task);
}

/// Whether Slack is behind on this incident: it is open, or it has events
/// not handled yet, or its final status is not written.
fn has_work(d: &Daemon, id: &str) -> bool {
    let open = d.store().incident(id).is_ok_and(|i| i.status.is_open());
    match load_state(d, id) {
        None => open,
        Some(st) => {
            open || !st.closed
                || d.store()
                    .events_after(id, st.posted)
                    .is_ok_and(|e| !e.is_empty())
        }
    }
}

/// Stops every courier; their cursors are in the store, so the next start
/// carries on where they were.
pub(super) fn stop(slack: &Slack) {
    for t in slack.inner.tasks.lock().expect("slack tasks").drain(..) {
        t.abort();
    }
}

/// Which events responders see as messages of their own; the rest shows
/// in the live status.
fn posted_kind(kind: &str) -> bool {
    matches!(
        kind,
        "incident.completed"
            | "incident.failed"
            | "approval.requested"
            | "manual.requested"
            | "approval.granted"
            | "approval.rejected"
            | "approval.refused"
            | "decision.late"
            | "slack.refused"
            | "manual.done"
            | "step.failed"
            | "notice.approved"
            | "notice.edited"
            | "notice.sent"
            | "moment.recorded"
            | "clock.paused"
            | "clock.resumed"
            | "exception.applied"
            | "note"
    )
}

enum Next {
    /// Nothing to do until the incident moves.
    Idle,
    /// A coalesced status edit is due then.
    At(Instant),
    /// The incident is over and Slack shows all of it.
    Done,
}

struct Courier {
    slack: Slack,
    d: Daemon,
    id: String,
    bell: Arc<Notify>,
    /// The status text last written (None after a start: write it once).
    last_status: Option<String>,
    last_edit: Option<Instant>,
}

impl Courier {
    async fn run(&mut self) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            match self.sync().await {
                Ok(Next::Done) => return,
                Ok(Next::Idle) => {
                    backoff = BACKOFF_FIRST;
                    self.bell.notified().await;
                }
                Ok(Next::At(at)) => {
                    backoff = BACKOFF_FIRST;
                    tokio::select! {
                        _ = self.bell.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                Err(f) => {
                    // Slack's Retry-After when it gave one, never less than the backoff.
                    let wait = f.retry_after.unwrap_or_default().max(backoff);
                    tracing::warn!(incident = %self.id, error = %f, wait_ms = wait.as_millis() as u64, "Slack is not taking posts; retrying");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    async fn sync(&mut self) -> Result<Next, Failure> {
        let d = self.d.clone();
        let id = self.id.clone();
        let mut st = match load_state(&d, &id) {
            Some(st) => st,
            None => match room::open(&self.slack, &d, &id).await? {
                Some(st) => {
                    save(&d, &id, &st).await?;
                    st
                }
                // Nowhere to post (thread mode, no channel declared from,
                // none configured): done once the incident is, idle till then
                // (returning Done for an open one would have the courier
                // start again at once, and spin).
                None => {
                    let open = d
                        .store()
                        .incident(&id)
                        .map_err(store_failure)?
                        .status
                        .is_open();
                    return Ok(if open { Next::Idle } else { Next::Done });
                }
            },
        };
        if st.status_ts.is_none() {
            self.post_status(&mut st).await?;
        }
        room::setup(&self.slack, &d, &id, &mut st, |st| {
            let d = d.clone();
            let id = id.clone();
            async move { save(&d, &id, &st).await }
        })
        .await?;
        // The events not handled yet, in order.
        let events = d
            .store()
            .events_after(&id, st.posted)
            .map_err(store_failure)?;
        let mut moved = false;
        for ev in &events {
            if posted_kind(&ev.kind) {
                self.post_event(&mut st, ev).await?;
            } else {
                st.posted = ev.seq;
                moved = true;
            }
        }
        if moved {
            save(&d, &id, &st).await?;
        }
        self.status(&mut st).await
    }

    /// Posts the status message: first, so it is the room's top.
    async fn post_status(&mut self, st: &mut RoomState) -> Result<(), Failure> {
        if st.status_pending {
            if let Some(ts) = self
                .slack
                .find_posted(&st.channel, None, &self.id, 0)
                .await?
            {
                st.status_ts = Some(ts);
                st.status_pending = false;
                return save(&self.d, &self.id, st).await;
            }
        }
        st.status_pending = true;
        save(&self.d, &self.id, st).await?;
        let text = self.status_text()?;
        let ts = self
            .slack
            .send(
                &st.channel,
                None,
                false,
                Outgoing {
                    text: text.clone(),
                    blocks: None,
                    metadata: Some(event_metadata(&self.id, 0)),
                    link: self.slack.page_link(&self.id),
                },
            )
            .await?;
        st.status_ts = Some(ts);
        st.status_pending = false;
        self.last_status = Some(text);
        self.last_edit = Some(Instant::now());
        save(&self.d, &self.id, st).await
    }

    fn status_text(&self) -> Result<String, Failure> {
        self.slack
            .status_of(&self.d, &self.id)
            .map_err(store_failure)
    }

    /// Edits the status message when it changed, at most once a second;
    /// the final state is always written.
    async fn status(&mut self, st: &mut RoomState) -> Result<Next, Failure> {
        let Some(ts) = st.status_ts.clone() else {
            return Ok(Next::Idle);
        };
        let finished = !self
            .d
            .store()
            .incident(&self.id)
            .map_err(store_failure)?
            .status
            .is_open();
        // Within a second of the last edit, look again when it is up: the
        // text reads the whole timeline, so a fast fan-out computes it once
        // a second, not once per event.
        if let Some(last) = self.last_edit {
            let due = last + EDIT_EVERY;
            if Instant::now() < due {
                return Ok(Next::At(due));
            }
        }
        let text = self.status_text()?;
        if self.last_status.as_deref() != Some(text.as_str()) {
            self.slack
                .edit(
                    &st.channel,
                    &ts,
                    Outgoing::text(text.clone()).linked(self.slack.page_link(&self.id)),
                )
                .await?;
            self.last_status = Some(text);
            self.last_edit = Some(Instant::now());
        }
        if finished {
            st.closed = true;
            save(&self.d, &self.id, st).await?;
            return Ok(Next::Done);
        }
        Ok(Next::Idle)
    }

    async fn post_event(&mut self, st: &mut RoomState, ev: &TimelineEvent) -> Result<(), Failure> {
        let thread = st.thread_ts().map(str::to_string);
        // Posted before the daemon stopped, or not? Slack knows.
        let found = if st.pending == Some(ev.seq) {
            self.slack
                .find_posted(&st.channel, thread.as_deref(), &self.id, ev.seq)
                .await?
        } else {
            None
        };
        let (text, blocks, broadcast) = self.message(ev);
        let ts = match found {
            Some(ts) => ts,
            None => {
                st.pending = Some(ev.seq);
                save(&self.d, &self.id, st).await?;
                self.slack
                    .send(
                        &st.channel,
                        thread.as_deref(),
                        broadcast,
                        Outgoing {
                            text: text.clone(),
                            blocks,
                            metadata: Some(event_metadata(&self.id, ev.seq)),
                            link: self.slack.page_link(&self.id),
                        },
                    )
                    .await?
            }
        };
        let step = ev.step.clone().unwrap_or_default();
        match EventKind::parse(&ev.kind) {
            Some(EventKind::ApprovalRequested | EventKind::ManualRequested) => {
                let ask = st.asks.entry(step).or_default();
                if !ask.ts.is_empty() {
                    ask.earlier.push(std::mem::take(&mut ask.ts));
                }
                ask.ts = ts;
                ask.text = text;
                ask.decided = false;
            }
            // The request's buttons give way to who decided, and when.
            Some(
                EventKind::ApprovalGranted | EventKind::ApprovalRejected | EventKind::ManualDone,
            ) => {
                if let Some(ask) = st.asks.get_mut(&step).filter(|a| !a.decided) {
                    let word = match EventKind::parse(&ev.kind) {
                        Some(EventKind::ApprovalGranted) => ":white_check_mark: Approved",
                        Some(EventKind::ApprovalRejected) => ":x: Rejected",
                        _ => ":white_check_mark: Done",
                    };
                    let decided = format!(
                        "{}\n{word} by {} at {}",
                        ask.text,
                        person(&ev.actor),
                        ev.at.format("%Y-%m-%d %H:%M UTC")
                    );
                    // chat.update keeps a message's blocks unless it is given
                    // new ones, so the buttons go only with a new block list.
                    let msg = Outgoing {
                        blocks: Some(vec![SlackSectionBlock::new()
                            .with_text(md!("{}", fit(&decided, SECTION_MAX, None)))
                            .into()]),
                        text: decided,
                        metadata: None,
                        link: self.slack.page_link(&self.id),
                    };
                    match self.slack.edit(&st.channel, &ask.ts, msg).await {
                        Ok(()) => ask.decided = true,
                        Err(f) if f.transient => return Err(f),
                        // The decision itself is posted; stale buttons are
                        // refused when pressed.
                        Err(_) => ask.decided = true,
                    }
                }
            }
            _ => {}
        }
        st.pending = None;
        st.posted = ev.seq;
        save(&self.d, &self.id, st).await
    }

    /// The message for one event: text, buttons, and whether a thread
    /// reply is also shown in the channel.
    fn message(
        &self,
        ev: &TimelineEvent,
    ) -> (
        String,
        Option<Vec<slack_morphism::prelude::SlackBlock>>,
        bool,
    ) {
        let id = self.id.as_str();
        match EventKind::parse(&ev.kind) {
            Some(kind @ (EventKind::ApprovalRequested | EventKind::ManualRequested)) => {
                let step = ev.step.clone().unwrap_or_default();
                let text = format!(
                    ":raised_hand: *{}* `{}`: {}",
                    escape(id),
                    escape(&step),
                    escape(&ev.message)
                );
                let blocks =
                    decision_blocks(id, &step, kind == EventKind::ApprovalRequested, &text);
                (text, Some(blocks), true)
            }
            Some(EventKind::IncidentCompleted | EventKind::IncidentFailed) => {
                let mut text = escape(&ev.message);
                // A copy of the chain head outside the store: `quench audit
                // verify` can be checked against it later.
                if let Ok(h) = self.d.store().audit_head(id) {
                    text.push_str(&format!("\nAudit chain head: `sha256:{h}`"));
                }
                (text, None, true)
            }
            Some(
                EventKind::StepFailed
                | EventKind::ApprovalRefused
                | EventKind::DecisionLate
                | EventKind::SlackRefused,
            ) => (format!(":warning: {}", escape(&ev.message)), None, false),
            _ => (
                format!("{}: {}", person(&ev.actor), escape(&ev.message)),
                None,
                false,
            ),
        }
    }
}

fn store_failure(e: crate::store::StoreError) -> Failure {
    Failure::local(format!("store: {e}"), true)
}

/// What the declaration says about where it came from.
pub(super) fn declared(events: &[TimelineEvent]) -> Json {
    events
        .iter()
        .find(|e| e.kind == EventKind::IncidentDeclared)
        .map(|e| e.data.clone())
        .unwrap_or_else(|| json!({}))
}
