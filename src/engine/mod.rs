//! The engine: runs an incident's step graph to completion (or until it
//! parks on a person), durably.
//!
//! The rule that makes resume safe: every transition is written (and
//! flushed) to the store *before* the effect it announces starts, and the
//! outcome after it ends. So on restart a finished step or item is never
//! redone, and one that was in flight is retried with the same idempotency
//! key. Independent steps run concurrently; for_each items run under the
//! step's `concurrency` limit; per-integration rate limits sit in the
//! executor, shared by every incident.

pub mod attempt;
pub mod journal;
mod parsed;
mod resolve;
pub mod retry;
pub mod schedule;
mod step;
#[cfg(test)]
mod tests;

pub use step::idempotency_key;

use crate::store::EventKind;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tracing::Instrument;

pub use crate::clock::{Clock, FakeClock, SystemClock};
use crate::library::Library;
use crate::runbook::{self, Diagnostics, Runbook};
use crate::store::{
    Incident, IncidentStatus, NewEvent, Severity, StepRun, StepStatus, StoreError, TimelineEvent,
};
use crate::template::{RenderError, Scope, Templates};
pub use journal::{Actions, Journal};
pub use resolve::{actor_of, Decision, Resolution, ResolveError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the runbook stored with incident {id} no longer validates against the installed integrations:\n{diags}")]
    Runbook { id: String, diags: Diagnostics },
    #[error("incident {id}: step \"{step}\" {problem}")]
    Step {
        id: String,
        step: String,
        problem: String,
    },
    /// A task of the engine's own died (a bug): said, not hidden.
    #[error("{0}")]
    Internal(String),
}

/// How an engine behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Drills grant approvals and finish manual steps automatically (and
    /// say so in the timeline), and cut long waits to `max_wait`.
    pub drill: bool,
    pub max_wait: Duration,
    /// `organization` for notice templates (from the config).
    pub organization: Json,
    /// role -> member ids (Slack user ids or user names), from the config.
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
    /// The approved-tools registry, for the `verdict` template helper.
    pub registry: crate::registry::Registry,
    /// A plan: reads run, writes are recorded as what would be sent,
    /// people's steps as who would be asked (assumed yes), waits as their
    /// length, and what needs a write's effect as "would run after" it.
    pub plan: bool,
    /// How pages and exports show times (`timezone:`, default UTC).
    pub zone: chrono_tz::Tz,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            drill: true,
            max_wait: Duration::from_secs(5),
            organization: json!({}),
            roles: Default::default(),
            registry: Default::default(),
            plan: false,
            zone: chrono_tz::Tz::UTC,
        }
    }
}

/// A request to start an incident.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub runbook_file: String,
    pub runbook_source: String,
    pub inputs: Json,
    pub declared_by: String,
    /// The label of the credential the declaration came with.
    pub token: Option<String>,
    pub severity: Severity,
    /// The Slack channel it was declared from: its updates go there.
    pub channel: Option<String>,
}

#[derive(Clone)]
pub struct Engine {
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) actions: Arc<dyn Actions>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) library: Arc<Library>,
    pub(crate) settings: Arc<Settings>,
    /// The step templates' registries, `verdict` over `settings.registry`.
    pub(crate) templates: Arc<Templates>,
    events: broadcast::Sender<(String, TimelineEvent)>,
    /// Held while a person's decision is checked and recorded, so of two
    /// decisions on one step exactly one finds it waiting. One process
    /// owns the store (sled's lock), and every decision (Slack, API, CLI
    /// through the daemon) goes through its engine, whose siblings share
    /// this lock.
    pub(crate) deciding: Arc<tokio::sync::Mutex<()>>,
    /// Runbooks parsed for earlier drives, shared with siblings (one library).
    parsed: Arc<parsed::Parsed>,
}

impl Engine {
    pub fn new(
        journal: Arc<dyn Journal>,
        actions: Arc<dyn Actions>,
        clock: Arc<dyn Clock>,
        library: Arc<Library>,
        settings: Settings,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Engine {
            journal,
            actions,
            clock,
            library,
            templates: templates_for(&settings),
            settings: Arc::new(settings),
            events,
            deciding: Default::default(),
            parsed: Default::default(),
        }
    }

    /// The same engine (journal, actions, clock) with other settings.
    pub fn with_settings(&self, settings: Settings) -> Engine {
        self.sibling(self.actions.clone(), settings)
    }

    /// The same journal, clock, library and event feed, performing other
    /// actions with other settings: the daemon's drill engine beside its
    /// live one, so one subscription sees both.
    pub fn sibling(&self, actions: Arc<dyn Actions>, settings: Settings) -> Engine {
        Engine {
            actions,
            templates: templates_for(&settings),
            settings: Arc::new(settings),
            ..self.clone()
        }
    }

    /// Renders one of the runbook's templates against a step's context.
    pub(crate) fn render(&self, src: &str, ctx: &Json) -> Result<String, RenderError> {
        self.templates.render_str(src, &Scope::new(ctx.clone()))
    }

    pub fn library(&self) -> &Arc<Library> {
        &self.library
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Every recorded event, as it is recorded (for progress displays and
    /// Slack). A slow subscriber misses events rather than slowing the
    /// engine; the store has them all.
    pub fn subscribe(&self) -> broadcast::Receiver<(String, TimelineEvent)> {
        self.events.subscribe()
    }

    /// Appends an event on its own (now) and announces it.
    pub(crate) async fn record(&self, id: &str, ev: NewEvent) -> Result<(), EngineError> {
        let te = self.journal.append(id, self.clock.now(), ev).await?;
        self.announce(id, Some(te));
        Ok(())
    }

    /// Writes a step's state with its event (now) and announces it.
    pub(crate) async fn put_step(
        &self,
        id: &str,
        step: &str,
        run: &StepRun,
        ev: Option<NewEvent>,
    ) -> Result<(), EngineError> {
        self.put_step_events(id, step, run, ev.into_iter().collect())
            .await
    }

    /// Writes a step's state with several events, in one write.
    pub(crate) async fn put_step_events(
        &self,
        id: &str,
        step: &str,
        run: &StepRun,
        events: Vec<NewEvent>,
    ) -> Result<(), EngineError> {
        let written = self
            .journal
            .put_step(id, step, run, self.clock.now(), events)
            .await?;
        for te in written {
            self.announce(id, Some(te));
        }
        Ok(())
    }

    /// Writes an item's state, with its event if any (now), and announces it.
    pub(crate) async fn put_item(
        &self,
        id: &str,
        step: &str,
        idx: u32,
        run: &crate::store::ItemRun,
        ev: Option<NewEvent>,
    ) -> Result<(), EngineError> {
        let te = self
            .journal
            .put_item(id, step, idx, run, self.clock.now(), ev)
            .await?;
        self.announce(id, te);
        Ok(())
    }

    pub(crate) fn announce(&self, id: &str, ev: Option<TimelineEvent>) {
        if let Some(ev) = ev {
            let _ = self.events.send((id.to_string(), ev));
        }
    }

    /// Records a new incident (status running). Inputs must already be
    /// typed against the runbook (see `cli::inputs`).
    pub async fn declare(&self, rb: &Runbook, d: Declaration) -> Result<String, EngineError> {
        let now = self.clock.now();
        let id = self.journal.next_incident_id(now).await?;
        let inc = Incident {
            id: id.clone(),
            runbook: rb.name.clone(),
            title: rb.title.clone(),
            status: IncidentStatus::Running,
            declared_at: now,
            declared_by: d.declared_by.clone(),
            severity: d.severity,
            inputs: d.inputs.clone(),
            drill: self.settings.drill,
            runbook_file: d.runbook_file,
            runbook_source: d.runbook_source,
            finished_at: None,
        };
        let what = if self.settings.drill {
            "Drill"
        } else {
            "Incident"
        };
        let ev = NewEvent::new(
            EventKind::IncidentDeclared,
            &d.declared_by,
            format!("{what} declared: {} ({})", rb.title, d.severity),
        )
        .data(json!({"runbook": rb.name, "inputs": d.inputs, "drill": self.settings.drill, "channel": d.channel}))
        .token(d.token.as_deref());
        let te = self.journal.create_incident(&inc, ev).await?;
        self.announce(&id, Some(te));
        Ok(id)
    }

    /// Resumes every incident that was running when the process stopped.
    pub async fn resume_all(&self) -> Vec<(String, Result<IncidentStatus, EngineError>)> {
        let open = match self.journal.incidents().await {
            Ok(list) => list
                .into_iter()
                .filter(|i| i.status == IncidentStatus::Running)
                .collect::<Vec<_>>(),
            Err(e) => return vec![(String::new(), Err(e.into()))],
        };
        let mut set = JoinSet::new();
        for inc in open {
            let me = self.clone();
            set.spawn(async move {
                let r = me.resume(&inc.id).await;
                (inc.id, r)
            });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            if let Ok(r) = r {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Runs a previously stopped incident on from its stored state.
    pub async fn resume(&self, id: &str) -> Result<IncidentStatus, EngineError> {
        self.record_resume(id).await?;
        self.run(id).await
    }

    /// Records that a stopped incident is being picked up again, naming the
    /// steps that were in flight (they are retried with their keys).
    pub async fn record_resume(&self, id: &str) -> Result<(), EngineError> {
        let mut in_flight: Vec<String> = Vec::new();
        for (s, r) in self.journal.step_runs(id).await? {
            if r.status != StepStatus::Running {
                continue;
            }
            // A fan-out records no attempt before its call: of the items
            // it admitted, those with no final record may have been sent.
            let Some(admitted) = r.started_below else {
                in_flight.push(s);
                continue;
            };
            let recorded = self
                .journal
                .item_runs(id, &s)
                .await?
                .range(..admitted)
                .filter(|(_, ir)| ir.status.is_final())
                .count() as u32;
            let open = admitted.saturating_sub(recorded);
            in_flight.push(if open == 0 {
                s
            } else {
                format!("{s} (up to {open} item(s) may have been sent with no outcome recorded)")
            });
        }
        let msg = if in_flight.is_empty() {
            "Resumed after a restart".to_string()
        } else {
            format!(
                "Resumed after a restart; retrying in-flight steps with their idempotency keys: {}",
                in_flight.join(", ")
            )
        };
        self.record(id, NewEvent::new(EventKind::IncidentResumed, "quench", msg))
            .await
    }

    pub(crate) fn runbook_of(&self, inc: &Incident) -> Result<Runbook, EngineError> {
        runbook::load(
            &inc.runbook_file,
            &inc.runbook_source,
            &self.library.known(),
        )
        .map_err(|diags| EngineError::Runbook {
            id: inc.id.clone(),
            diags,
        })
    }

    /// Drives the incident until every step is final or parked on a person.
    /// Every log line of its work carries the incident's id (a span field),
    /// and a step's its step id too.
    pub async fn run(&self, id: &str) -> Result<IncidentStatus, EngineError> {
        self.drive(id)
            .instrument(tracing::info_span!("incident", incident = %id))
            .await
    }

    async fn drive(&self, id: &str) -> Result<IncidentStatus, EngineError> {
        let inc = self.journal.incident(id).await?;
        if !inc.status.is_open() {
            return Ok(inc.status);
        }
        let (rb, inc) = match self.parsed.get(&inc.runbook_file, &inc.runbook_source) {
            Some(rb) => (rb, inc),
            None => {
                // Parsing is CPU work: on the blocking pool, the daemon's
                // workers keep answering while a large runbook loads.
                let engine = self.clone();
                let (rb, inc) = tokio::task::spawn_blocking(move || {
                    engine.runbook_of(&inc).map(|rb| (Arc::new(rb), inc))
                })
                .await
                .map_err(|e| EngineError::Internal(format!("loading the runbook: {e}")))??;
                self.parsed
                    .keep(&inc.runbook_file, &inc.runbook_source, rb.clone());
                (rb, inc)
            }
        };
        let inc = Arc::new(inc);
        let mut runs: BTreeMap<String, StepRun> = self.journal.step_runs(id).await?;
        let mut active: HashSet<String> = HashSet::new();
        let mut set: JoinSet<(String, Result<StepRun, EngineError>)> = JoinSet::new();
        // Which step each task runs, to name the one that panicked.
        let mut task_step: std::collections::HashMap<tokio::task::Id, String> =
            std::collections::HashMap::new();
        let mut fatal: Option<EngineError> = None;
        let reads: BTreeMap<String, step::reads::Reads> = rb
            .steps
            .iter()
            .map(|s| (s.id.clone(), step::reads::Reads::of(s, &rb)))
            .collect();
        let after_write = if self.settings.plan {
            schedule::after_writes(&rb, |s| self.is_write(s))
        } else {
            BTreeMap::new()
        };

        loop {
            let moves = if fatal.is_none() {
                schedule::moves(&rb, &runs, &active, &after_write)
            } else {
                Vec::new()
            };
            for m in moves {
                let sid = match m {
                    schedule::Move::Skip { step, why } => {
                        let run = StepRun {
                            status: StepStatus::Skipped,
                            finished_at: Some(self.clock.now()),
                            error: why.error(),
                            ..StepRun::default()
                        };
                        if let Err(e) = self.put_step(id, &step, &run, Some(why.event(&step))).await
                        {
                            fatal = Some(e);
                            break;
                        }
                        runs.insert(step, run);
                        continue;
                    }
                    schedule::Move::Start(step) => step,
                };
                active.insert(sid.clone());
                // The last step to read an output takes the driver's copy:
                // a listing is held once, not once more per reader.
                let take = step::reads::last_reads(&rb, &sid, &reads, |u| {
                    !active.contains(u) && runs.get(u).is_none_or(|r| !r.status.is_final())
                });
                let all = step::reads::Reads::all();
                let ctx = step::context(
                    &inc,
                    &mut runs,
                    &self.settings,
                    reads.get(&sid).unwrap_or(&all),
                    &take,
                );
                let me = self.clone();
                let (rb, inc) = (rb.clone(), inc.clone());
                let prior = runs.get(&sid).cloned().unwrap_or_default();
                let span = tracing::info_span!("step", step = %sid);
                let task = set.spawn(
                    {
                        let sid = sid.clone();
                        async move {
                            let step = rb.step(&sid).expect("scheduled steps exist");
                            let r = me.run_step(&inc, step, prior, ctx, &rb).await;
                            if let Ok(run) = &r {
                                tracing::info!(status = run.status.name(), "step ran");
                            }
                            (sid, r)
                        }
                    }
                    .instrument(span),
                );
                task_step.insert(task.id(), sid);
            }
            let Some(joined) = set.join_next_with_id().await else {
                break;
            };
            let (sid, result) = match joined {
                Ok((task, x)) => {
                    task_step.remove(&task);
                    x
                }
                // A bug in a step must not take the incident's driver with
                // it (the incident would stay active, driven by no one):
                // the step fails, saying so, and the rest runs on.
                Err(e) => {
                    let Some(sid) = task_step.remove(&e.id()) else {
                        continue;
                    };
                    let prior = runs.get(&sid).cloned().unwrap_or_default();
                    let stored = self.record_crash(id, &sid, prior, e).await;
                    (sid, stored)
                }
            };
            active.remove(&sid);
            match result {
                Ok(run) => {
                    observe_step(&rb, &sid, &run);
                    runs.insert(sid, run);
                }
                Err(e) => {
                    // A store error: stop scheduling, let running steps finish.
                    fatal.get_or_insert(e);
                }
            }
        }
        if let Some(e) = fatal {
            return Err(e);
        }

        let outcome = schedule::outcome(&rb, &runs);
        let status = outcome.status();
        let last_wait = if inc.status == IncidentStatus::Waiting {
            self.journal
                .events(id)
                .await?
                .into_iter()
                .rev()
                .find(|e| e.kind == EventKind::IncidentWaiting)
                .map(|e| e.message)
        } else {
            None
        };
        if outcome.is_news(inc.status, last_wait.as_deref()) {
            let te = self
                .journal
                .set_incident_status(id, status, self.clock.now(), outcome.event())
                .await?;
            self.announce(id, Some(te));
        }
        Ok(status)
    }
}

impl Engine {
    /// A step task that panicked (a bug) or was cancelled: recorded as a
    /// failed step, saying so, so the incident's driver and its other
    /// steps go on.
    async fn record_crash(
        &self,
        id: &str,
        sid: &str,
        prior: StepRun,
        e: tokio::task::JoinError,
    ) -> Result<StepRun, EngineError> {
        let why = if e.is_panic() {
            panic_text(e.into_panic())
        } else {
            "it was cancelled".to_string()
        };
        let run = StepRun {
            status: StepStatus::Failed,
            finished_at: Some(self.clock.now()),
            error: Some(format!("quench crashed running this step ({why}); this is a bug in quench, please report it")),
            ..prior
        };
        let ev = NewEvent::new(
            EventKind::StepFailed,
            "quench",
            format!("{sid} failed: quench crashed running it ({why})"),
        )
        .step(sid);
        tracing::error!(step = %sid, panic = %why, "a step crashed; it is recorded as failed");
        self.put_step(id, sid, &run, Some(ev)).await.map(|()| run)
    }
}

/// A step that ended, in `quench_step_seconds` (on the engine's clock).
fn observe_step(rb: &Runbook, sid: &str, run: &StepRun) {
    let (Some(start), Some(end)) = (run.started_at, run.finished_at) else {
        return;
    };
    if !run.status.is_final() {
        return;
    }
    let phase = rb.step(sid).and_then(|s| s.phase).map(|p| p.name());
    let took = (end - start).to_std().unwrap_or_default();
    crate::telemetry::global().step(&rb.name, phase, run.status.name(), took);
}

fn templates_for(settings: &Settings) -> Arc<Templates> {
    Arc::new(Templates::new(Arc::new(settings.registry.clone())))
}

/// What a panic said, as text.
pub fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

impl Engine {
    /// Whether a step changes a platform: an action whose method is not a
    /// read (a person's UI task is not).
    pub(crate) fn is_write(&self, step: &runbook::Step) -> bool {
        match &step.kind {
            runbook::StepKind::Action {
                integration,
                action,
            } => self.library.catalog.is_write(integration, action),
            _ => false,
        }
    }
}
