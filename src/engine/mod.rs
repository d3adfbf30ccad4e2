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

pub mod clock;
mod resolve;
pub mod retry;
mod step;

pub use step::{duration_text, idempotency_key};

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::integrations::Executor;
use crate::library::Library;
use crate::runbook::{self, Diagnostics, OnFailure, Runbook};
use crate::store::{
    Incident, IncidentStatus, NewEvent, StepRun, StepStatus, Store, StoreError, TimelineEvent,
};
pub use clock::{Clock, FakeClock, SystemClock};
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
    pub registry: crate::integrations::inventory::Registry,
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
    pub severity: String,
    /// The Slack channel it was declared from: its updates go there.
    pub channel: Option<String>,
}

#[derive(Clone)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) executor: Arc<Executor>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) library: Arc<Library>,
    pub(crate) settings: Settings,
    events: broadcast::Sender<(String, TimelineEvent)>,
    /// Held while a person's decision is checked and recorded, so of two
    /// decisions on one step exactly one finds it waiting. One process
    /// owns the store (sled's lock), and every decision (Slack, API, CLI
    /// through the daemon) goes through its engine, whose siblings share
    /// this lock.
    pub(crate) deciding: Arc<tokio::sync::Mutex<()>>,
}

impl Engine {
    pub fn new(
        store: Store,
        executor: Arc<Executor>,
        clock: Arc<dyn Clock>,
        library: Arc<Library>,
        settings: Settings,
    ) -> Self {
        let (events, _) = broadcast::channel(1024);
        Engine {
            store,
            executor,
            clock,
            library,
            settings,
            events,
            deciding: Default::default(),
        }
    }

    /// The same store, clock, library and event feed, calling another
    /// executor with other settings: the daemon's drill engine beside its
    /// live one, so one subscription sees both.
    /// The same engine (store, executor, clock) with other settings.
    pub fn with_settings(&self, settings: Settings) -> Engine {
        Engine {
            settings,
            ..self.clone()
        }
    }

    pub fn sibling(&self, executor: Arc<Executor>, settings: Settings) -> Engine {
        Engine {
            executor,
            settings,
            ..self.clone()
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
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
        let te = self.store.append(id, self.clock.now(), ev).await?;
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
        let te = self
            .store
            .put_step(id, step, run, self.clock.now(), ev)
            .await?;
        self.announce(id, te);
        Ok(())
    }

    /// Writes an item's state with its event (now) and announces it.
    pub(crate) async fn put_item(
        &self,
        id: &str,
        step: &str,
        idx: u32,
        run: &crate::store::ItemRun,
        ev: NewEvent,
    ) -> Result<(), EngineError> {
        let te = self
            .store
            .put_item(id, step, idx, run, self.clock.now(), ev)
            .await?;
        self.announce(id, Some(te));
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
        let id = self.store.next_incident_id(now)?;
        let inc = Incident {
            id: id.clone(),
            runbook: rb.name.clone(),
            title: rb.title.clone(),
            status: IncidentStatus::Running,
            declared_at: now,
            declared_by: d.declared_by.clone(),
            severity: d.severity.clone(),
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
            "incident.declared",
            &d.declared_by,
            format!("{what} declared: {} ({})", rb.title, d.severity),
        )
        .data(json!({"runbook": rb.name, "inputs": d.inputs, "drill": self.settings.drill, "channel": d.channel}))
        .token(d.token.as_deref());
        let te = self.store.create_incident(&inc, ev).await?;
        self.announce(&id, Some(te));
        Ok(id)
    }

    /// Resumes every incident that was running when the process stopped.
    pub async fn resume_all(&self) -> Vec<(String, Result<IncidentStatus, EngineError>)> {
        let open = match self.store.incidents() {
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
        let in_flight: Vec<String> = self
            .store
            .step_runs(id)?
            .into_iter()
            .filter(|(_, r)| r.status == StepStatus::Running)
            .map(|(s, _)| s)
            .collect();
        let msg = if in_flight.is_empty() {
            "Resumed after a restart".to_string()
        } else {
            format!(
                "Resumed after a restart; retrying in-flight steps with their idempotency keys: {}",
                in_flight.join(", ")
            )
        };
        self.record(id, NewEvent::new("incident.resumed", "quench", msg))
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
    pub async fn run(&self, id: &str) -> Result<IncidentStatus, EngineError> {
        let inc = self.store.incident(id)?;
        if !inc.status.is_open() {
            return Ok(inc.status);
        }
        // Parsing is CPU work: on the blocking pool, the daemon's workers
        // keep answering while a large runbook loads.
        let (rb, inc) = {
            let engine = self.clone();
            tokio::task::spawn_blocking(move || engine.runbook_of(&inc).map(|rb| (rb, inc)))
                .await
                .map_err(|e| EngineError::Internal(format!("loading the runbook: {e}")))??
        };
        let rb = Arc::new(rb);
        let inc = Arc::new(inc);
        let mut runs: BTreeMap<String, StepRun> = self.store.step_runs(id)?;
        let mut active: HashSet<String> = HashSet::new();
        let mut set: JoinSet<(String, Result<StepRun, EngineError>)> = JoinSet::new();
        // Which step each task runs, to name the one that panicked.
        let mut task_step: std::collections::HashMap<tokio::task::Id, String> =
            std::collections::HashMap::new();
        let mut fatal: Option<EngineError> = None;
        let after_write = if self.settings.plan {
            self.after_writes(&rb)
        } else {
            BTreeMap::new()
        };

        loop {
            // Skipping a blocked step can make others ready (or blocked), so
            // schedule until a pass changes nothing.
            let mut changed = fatal.is_none();
            while changed {
                changed = false;
                for s in &rb.steps {
                    if active.contains(&s.id) {
                        continue;
                    }
                    let status = runs
                        .get(&s.id)
                        .map(|r| r.status)
                        .unwrap_or(StepStatus::Pending);
                    let startable = match status {
                        StepStatus::Pending => s
                            .needs
                            .iter()
                            .all(|n| runs.get(n).is_some_and(|r| r.status.is_final())),
                        // In flight when the process stopped: pick it up again.
                        StepStatus::Running => true,
                        _ => false,
                    };
                    if !startable {
                        continue;
                    }
                    changed = true;
                    if status == StepStatus::Pending {
                        // A plan changes nothing, so what reads a write's
                        // effect (a verification, a recovery) has nothing true
                        // to read; a failed abort step stops only what
                        // depends on it: containment elsewhere goes on.
                        let skip = match after_write.get(&s.id) {
                            Some(write) => Some((
                                None,
                                NewEvent::new(
                                    "plan.after_write",
                                    "plan",
                                    format!("{} would run after {write}", s.id),
                                )
                                .data(serde_json::json!({"after": write})),
                            )),
                            None => blocked_by(&rb, &runs, s).map(|why| {
                                let ev = NewEvent::new(
                                    "step.skipped",
                                    "quench",
                                    format!("{} skipped: {why}", s.id),
                                );
                                (Some(why), ev)
                            }),
                        };
                        if let Some((error, ev)) = skip {
                            let run = StepRun {
                                status: StepStatus::Skipped,
                                finished_at: Some(self.clock.now()),
                                error,
                                ..StepRun::default()
                            };
                            let ev = ev.step(&s.id);
                            if let Err(e) = self.put_step(id, &s.id, &run, Some(ev)).await {
                                fatal = Some(e);
                                changed = false;
                                break;
                            }
                            runs.insert(s.id.clone(), run);
                            continue;
                        }
                    }
                    active.insert(s.id.clone());
                    let ctx = step::context(&inc, &runs, &self.settings);
                    let me = self.clone();
                    let (rb, inc, sid) = (rb.clone(), inc.clone(), s.id.clone());
                    let prior = runs.get(&s.id).cloned().unwrap_or_default();
                    let task = set.spawn(async move {
                        let step = rb.step(&sid).expect("scheduled steps exist");
                        let r = me.run_step(&inc, step, prior, ctx, &rb).await;
                        (sid, r)
                    });
                    task_step.insert(task.id(), s.id.clone());
                }
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
                    let why = if e.is_panic() {
                        panic_text(e.into_panic())
                    } else {
                        "it was cancelled".to_string()
                    };
                    let run = StepRun {
                        status: StepStatus::Failed,
                        finished_at: Some(self.clock.now()),
                        error: Some(format!("quench crashed running this step ({why}); this is a bug in quench, please report it")),
                        ..runs.get(&sid).cloned().unwrap_or_default()
                    };
                    let ev = NewEvent::new(
                        "step.failed",
                        "quench",
                        format!("{sid} failed: quench crashed running it ({why})"),
                    )
                    .step(&sid);
                    tracing::error!(incident = %id, step = %sid, panic = %why, "a step crashed; it is recorded as failed");
                    let stored = self.put_step(id, &sid, &run, Some(ev)).await.map(|()| run);
                    (sid, stored)
                }
            };
            active.remove(&sid);
            match result {
                Ok(run) => {
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

        let now = self.clock.now();
        let all_final = rb
            .steps
            .iter()
            .all(|s| runs.get(&s.id).is_some_and(|r| r.status.is_final()));
        let aborting: Vec<&str> = rb
            .steps
            .iter()
            .filter(|s| s.on_failure == OnFailure::Abort)
            .filter(|s| {
                runs.get(&s.id)
                    .is_some_and(|r| r.status == StepStatus::Failed)
            })
            .map(|s| s.id.as_str())
            .collect();
        let (status, ev) = if all_final && !aborting.is_empty() {
            let first = aborting[0];
            let err = runs
                .get(first)
                .and_then(|r| r.error.clone())
                .unwrap_or_default();
            let blocked: Vec<&str> = runs
                .iter()
                .filter(|(_, r)| r.status == StepStatus::Skipped && r.error.is_some())
                .map(|(s, _)| s.as_str())
                .collect();
            let tail = if blocked.is_empty() {
                String::new()
            } else {
                format!("; skipped as dependents: {}", blocked.join(", "))
            };
            (
                IncidentStatus::Failed,
                NewEvent::new(
                    "incident.failed",
                    "quench",
                    format!(
                        "Failed: {} failed under on_failure: abort (first: {first}: {err}); every step that did not depend on {} ran to the end{tail}",
                        aborting.join(", "),
                        if aborting.len() > 1 { "them" } else { "it" },
                    ),
                )
                .step(first)
                .data(json!({"failed": aborting, "skipped": blocked})),
            )
        } else if all_final {
            let failed: Vec<&str> = runs
                .iter()
                .filter(|(_, r)| r.status == StepStatus::Failed)
                .map(|(s, _)| s.as_str())
                .collect();
            let msg = if failed.is_empty() {
                "Completed: every step finished".to_string()
            } else {
                format!(
                    "Completed with failed steps under on_failure: continue: {}",
                    failed.join(", ")
                )
            };
            (
                IncidentStatus::Completed,
                NewEvent::new("incident.completed", "quench", msg),
            )
        } else {
            let parked: Vec<&str> = runs
                .iter()
                .filter(|(_, r)| r.status == StepStatus::Waiting)
                .map(|(s, _)| s.as_str())
                .collect();
            // A failure under abort no longer stops the rest, so it must not
            // hide behind a wait: say the incident will end failed.
            let doomed = if aborting.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} failed under on_failure: abort, so the incident will end failed",
                    aborting.join(", ")
                )
            };
            (
                IncidentStatus::Waiting,
                NewEvent::new(
                    "incident.waiting",
                    "quench",
                    format!("Waiting on people: {}{doomed}", parked.join(", ")),
                )
                .data(json!({"failed": aborting})),
            )
        };
        // A rerun that parks on the same people again (a resume, a kick
        // that changed nothing) says nothing new: one `incident.waiting`
        // per distinct wait, not one per run.
        let same_wait = status == IncidentStatus::Waiting
            && inc.status == IncidentStatus::Waiting
            && self
                .store
                .events(id)?
                .iter()
                .rev()
                .find(|e| e.kind == "incident.waiting")
                .is_some_and(|last| last.message == ev.message);
        if (status != inc.status || status != IncidentStatus::Running) && !same_wait {
            let te = self.store.set_incident_status(id, status, now, ev).await?;
            self.announce(id, Some(te));
        }
        Ok(status)
    }
}

/// What a panic said, as text.
pub fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Why a pending step must not run: a step it needs failed under
/// `on_failure: abort`, or was itself skipped for that reason (recorded as a
/// skipped step with an `error`, so a resume sees the same).
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

    /// step -> the write it (transitively) needs, for every step that needs
    /// one: in a plan these would run after that write.
    fn after_writes(&self, rb: &Runbook) -> BTreeMap<String, String> {
        fn first_write(
            engine: &Engine,
            rb: &Runbook,
            id: &str,
            memo: &mut BTreeMap<String, Option<String>>,
        ) -> Option<String> {
            if let Some(m) = memo.get(id) {
                return m.clone();
            }
            // Cycles are refused at load; the placeholder only ends recursion.
            memo.insert(id.to_string(), None);
            let found = rb.step(id).and_then(|s| {
                s.needs.iter().find_map(|n| {
                    let need = rb.step(n)?;
                    if engine.is_write(need) {
                        Some(n.clone())
                    } else {
                        first_write(engine, rb, n, memo)
                    }
                })
            });
            memo.insert(id.to_string(), found.clone());
            found
        }
        let mut memo = BTreeMap::new();
        rb.steps
            .iter()
            .filter_map(|s| first_write(self, rb, &s.id, &mut memo).map(|w| (s.id.clone(), w)))
            .collect()
    }
}

fn blocked_by(
    rb: &Runbook,
    runs: &BTreeMap<String, StepRun>,
    step: &runbook::Step,
) -> Option<String> {
    step.needs.iter().find_map(|n| {
        let r = runs.get(n)?;
        match r.status {
            StepStatus::Failed if rb.step(n).is_some_and(|s| s.on_failure == OnFailure::Abort) => {
                Some(format!("needs {n}, which failed (on_failure: abort)"))
            }
            StepStatus::Skipped if r.error.is_some() => Some(format!(
                "needs {n}, which was skipped because a step it needs failed"
            )),
            _ => None,
        }
    })
}
