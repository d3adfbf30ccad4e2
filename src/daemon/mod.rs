//! What the daemon does for its callers (REST and Slack alike): declare,
//! decide, note; with the engines that run incidents (live, and drills on
//! the built-in simulator) and one driver per running incident.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value as Json;

pub mod access;
mod channel;
pub mod leadership;
pub mod metrics;
mod runner;

pub use channel::{Channel, Pending};

use crate::engine::{Declaration, Engine, EngineError, Resolution, ResolveError};
use crate::store::{IncidentStatus, Severity, Store, StoreError, TimelineEvent};
use crate::timeline::notes::{note_event, NoteFacts};
use metrics::Metrics;
use runner::Runner;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoIncident(_) => OpError::NotFound(e.to_string()),
            other => OpError::Internal(other.to_string()),
        }
    }
}

impl From<EngineError> for OpError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Store(s) => s.into(),
            other => OpError::Internal(other.to_string()),
        }
    }
}

impl From<crate::notices::lifecycle::NoticeError> for OpError {
    fn from(e: crate::notices::lifecycle::NoticeError) -> Self {
        use crate::notices::lifecycle::NoticeError as N;
        match e {
            N::Store(s) => s.into(),
            N::NoSuchNotice { .. } => OpError::NotFound(e.to_string()),
            N::NotApproved { .. } => OpError::Conflict(e.to_string()),
        }
    }
}

impl From<ResolveError> for OpError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Engine(e) => e.into(),
            ResolveError::NoStep { .. } => OpError::NotFound(e.to_string()),
            ResolveError::Forbidden { .. } => OpError::Forbidden(e.to_string()),
            ResolveError::WrongKind { .. }
            | ResolveError::NotWaiting { .. }
            | ResolveError::AlreadyDecided { .. } => OpError::Conflict(e.to_string()),
        }
    }
}

/// What a daemon is built from (see `cli::serve`, and the tests).
pub struct DaemonParts {
    /// The store the engines' journal is: the API, pages and Slack read it.
    pub store: Store,
    /// Calls the real platforms (or the configured base_url overrides).
    pub live: Engine,
    /// Calls the built-in simulator; approvals automatic. None: no drills.
    pub drill: Option<Engine>,
    /// The tokens `/api/*` and the pages accept, and what each may do.
    pub access: access::Access,
    /// Slack, when it is configured.
    pub channel: Option<Arc<dyn Channel>>,
    /// Read-only executors for plans; None: no plans of that kind.
    pub planners: Planners,
}

/// The executors plans read through: they refuse every write.
#[derive(Clone, Default)]
pub struct Planners {
    /// The real platforms, with the configured credentials.
    pub live: Option<Arc<crate::integrations::Executor>>,
    /// The built-in simulator.
    pub simulated: Option<Arc<crate::integrations::Executor>>,
}

/// A request for a plan, from the API or Slack.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub runbook: String,
    pub inputs: Json,
    pub by: String,
    pub simulated: bool,
}

/// A request to declare an incident, from the API or Slack.
#[derive(Debug, Clone)]
pub struct DeclareRequest {
    pub runbook: String,
    pub inputs: Json,
    pub severity: Option<String>,
    pub by: String,
    /// The label of the credential it came with.
    pub token: Option<String>,
    pub drill: bool,
    pub channel: Option<String>,
}

#[derive(Clone)]
pub struct Daemon {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    live: Engine,
    drill: Option<Engine>,
    access: access::Access,
    channel: Option<Arc<dyn Channel>>,
    planners: Planners,
    /// Plans still running, by id.
    plans: std::sync::Mutex<std::collections::HashMap<String, tokio::task::JoinHandle<()>>>,
    runner: Arc<Runner>,
    metrics: Metrics,
    started: Instant,
}

impl Daemon {
    pub fn new(parts: DaemonParts) -> Daemon {
        Daemon {
            inner: Arc::new(Inner {
                store: parts.store,
                live: parts.live,
                drill: parts.drill,
                access: parts.access,
                channel: parts.channel,
                planners: parts.planners,
                plans: Default::default(),
                runner: Arc::default(),
                metrics: Metrics::default(),
                started: Instant::now(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Why this daemon takes no writes, naming who does: `None` when it
    /// leads (or owns an embedded store). Adapters ask it only once a
    /// request has proved who sent it, so a stranger learns nothing.
    pub async fn standby_reason(&self) -> Option<String> {
        if self.store().leads() {
            return None;
        }
        let leader = match self.store().leader().await {
            Some(Ok(l)) if l.live => format!("the leader is {}", l.holder),
            Some(Ok(_)) => "no daemon leads it right now (a takeover is under way)".to_string(),
            Some(Err(e)) => format!("the store cannot say who leads: {e}"),
            None => String::new(),
        };
        Some(format!(
            "this daemon is a standby of the shared store and writes nothing; {leader}: send writes there"
        ))
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.live
    }

    pub(crate) fn access(&self) -> &access::Access {
        &self.inner.access
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started.elapsed()
    }

    pub fn active_drivers(&self) -> usize {
        self.inner.runner.active()
    }

    fn engine_for(&self, drill: bool) -> Result<&Engine, OpError> {
        if drill {
            self.inner.drill.as_ref().ok_or_else(|| {
                OpError::Unavailable("this daemon runs no drills (no simulator)".into())
            })
        } else {
            Ok(&self.inner.live)
        }
    }

    /// Starts the background work: metrics from the event feed, Slack
    /// updates, and a driver for every incident a stopped daemon left
    /// running. Returns the ids resumed.
    pub fn start(&self) -> Result<Vec<String>, OpError> {
        self.inner.metrics.follow(self.inner.live.subscribe());
        if let Some(channel) = &self.inner.channel {
            channel.follow(self.clone());
        }
        let mut resumed = Vec::new();
        for inc in self.store().incidents()? {
            if inc.status == IncidentStatus::Running {
                let engine = self.engine_for(inc.drill)?.clone();
                let id = inc.id.clone();
                resumed.push(id.clone());
                let runner = self.inner.runner.clone();
                tokio::spawn(async move {
                    // On the record (and in Slack) before the driver runs it on.
                    if let Err(e) = engine.record_resume(&id).await {
                        tracing::error!(incident = %id, error = %e, "cannot record the resume");
                    }
                    runner.kick(engine, id);
                });
            }
        }
        Ok(resumed)
    }

    /// `runbook_and_inputs` on the blocking pool: parsing and checking a
    /// runbook is CPU work, and however large the file, the API, /healthz
    /// and shutdown keep answering meanwhile.
    async fn load_off_workers(
        engine: &Engine,
        name: &str,
        inputs: &Json,
    ) -> Result<(crate::library::LoadedRunbook, Json), OpError> {
        let (engine, name, inputs) = (engine.clone(), name.to_string(), inputs.clone());
        tokio::task::spawn_blocking(move || Self::runbook_and_inputs(&engine, &name, &inputs))
            .await
            .map_err(|e| OpError::Internal(format!("loading the runbook: {e}")))?
    }

    /// A known runbook by name and its typed inputs.
    fn runbook_and_inputs(
        engine: &Engine,
        name: &str,
        inputs: &Json,
    ) -> Result<(crate::library::LoadedRunbook, Json), OpError> {
        let loaded = engine
            .library()
            .named_runbook(name)
            .map_err(|d| match d.0.first() {
                Some(first) => OpError::NotFound(format!(
                    "{}{}",
                    first.message,
                    first
                        .hint
                        .as_deref()
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default()
                )),
                None => OpError::Invalid(d.to_string()),
            })?;
        let inputs = crate::runbook::inputs::from_json(&loaded.runbook, inputs)
            .map_err(|e| OpError::Invalid(e.to_string()))?;
        Ok((loaded, inputs))
    }

    /// Starts a plan (a read-only run) and returns its id at once; the
    /// report is kept in the store when it is done (`/plans/ID`).
    pub async fn plan(&self, req: PlanRequest) -> Result<String, OpError> {
        let planner = if req.simulated {
            self.inner.planners.simulated.clone()
        } else {
            self.inner.planners.live.clone()
        }
        .ok_or_else(|| {
            OpError::Unavailable(format!(
                "this daemon makes no {} plans",
                if req.simulated { "simulated" } else { "live" }
            ))
        })?;
        let engine = self.inner.live.clone();
        let (loaded, inputs) = Self::load_off_workers(&engine, &req.runbook, &req.inputs).await?;
        let target = if req.simulated {
            crate::plan::Target::Simulator
        } else {
            crate::plan::Target::Live
        };
        let request = crate::plan::PlanRequest {
            runbook: &loaded,
            inputs: inputs.clone(),
            by: req.by.clone(),
            target,
        };
        let id = crate::plan::begin(self.store(), &request, engine.now())
            .await
            .map_err(|e| OpError::Internal(e.to_string()))?;
        let (store, plan_id) = (self.store().clone(), id.clone());
        let task = tokio::spawn(async move {
            let request = crate::plan::PlanRequest {
                runbook: &loaded,
                inputs,
                by: req.by,
                target,
            };
            let lib = engine.library().clone();
            let settings = engine.settings().clone();
            if let Err(e) =
                crate::plan::run(&store, &plan_id, lib, planner, settings, request).await
            {
                tracing::error!(plan = %plan_id, error = %e, "plan failed");
            }
        });
        self.inner
            .plans
            .lock()
            .expect("plans")
            .insert(id.clone(), task);
        Ok(id)
    }

    /// Resolves once plan `id` has finished (at once for one that has, or
    /// that this daemon did not start).
    pub async fn plan_finished(&self, id: &str) {
        let task = self.inner.plans.lock().expect("plans").remove(id);
        if let Some(t) = task {
            let _ = t.await;
        }
    }

    pub async fn declare(&self, req: DeclareRequest) -> Result<String, OpError> {
        let engine = self.engine_for(req.drill)?.clone();
        let severity = match req.severity.as_deref() {
            None => Severity::default(),
            Some(s) => Severity::parse(s).ok_or_else(|| {
                OpError::Invalid(format!(
                    "severity \"{s}\" is not one of {}",
                    Severity::NAMES.join(", ")
                ))
            })?,
        };
        let (loaded, inputs) = Self::load_off_workers(&engine, &req.runbook, &req.inputs).await?;
        let id = engine
            .declare(
                &loaded.runbook,
                Declaration {
                    runbook_file: loaded.file,
                    runbook_source: loaded.source,
                    inputs,
                    declared_by: req.by,
                    token: req.token,
                    severity,
                    channel: req.channel,
                },
            )
            .await?;
        self.inner.runner.kick(engine, id.clone());
        Ok(id)
    }

    /// Records a person's decision on a waiting step, then runs the
    /// incident on. A refusal (wrong role) is itself recorded.
    pub async fn resolve(&self, id: &str, res: Resolution) -> Result<(), OpError> {
        let inc = self.store().incident(id)?;
        let engine = self.engine_for(inc.drill)?.clone();
        engine.resolve(id, res).await?;
        self.inner.runner.kick(engine, id.to_string());
        Ok(())
    }

    /// Adds a note (and the clock fact it carries) to the timeline; returns
    /// it once it is stored.
    pub async fn note(
        &self,
        id: &str,
        text: &str,
        by: &str,
        token: Option<&str>,
        facts: &NoteFacts,
    ) -> Result<TimelineEvent, OpError> {
        let inc = self.store().incident(id)?;
        let engine = self.engine_for(inc.drill)?;
        let ev = note_event(text, by, facts, engine.now())
            .map_err(|e| OpError::Invalid(e.to_string()))?
            .token(token);
        let te = self.store().append(id, engine.now(), ev).await?;
        engine.announce(id, Some(te.clone()));
        Ok(te)
    }

    /// A new version of a notice (which needs a new approval); returns it
    /// and the version it replaces.
    pub async fn edit_notice(
        &self,
        id: &str,
        key: &str,
        body: String,
        by: &str,
        token: Option<&str>,
    ) -> Result<(crate::store::NoticeDraft, u32), OpError> {
        let engine = &self.inner.live;
        let (d, was, te) =
            crate::notices::lifecycle::edit(self.store(), id, key, body, by, token, engine.now())
                .await?;
        engine.announce(id, Some(te));
        Ok((d, was))
    }

    /// Records that an approved notice was sent.
    pub async fn notice_sent(
        &self,
        id: &str,
        key: &str,
        by: &str,
        token: Option<&str>,
    ) -> Result<TimelineEvent, OpError> {
        let engine = &self.inner.live;
        let te =
            crate::notices::lifecycle::mark_sent(self.store(), id, key, by, token, engine.now())
                .await?;
        engine.announce(id, Some(te.clone()));
        Ok(te)
    }

    /// The governance KPIs over this daemon's store.
    pub fn kpis(&self, since: Option<chrono::DateTime<chrono::Utc>>) -> Result<Json, OpError> {
        let engine = &self.inner.live;
        let rows = crate::timeline::kpis::rows(
            self.store(),
            &engine.library().known(),
            since,
            engine.now(),
        )?;
        Ok(crate::timeline::kpis::summarize(&rows, since))
    }

    /// One incident's recovery review, as of now.
    /// `events_cap`: rows of the full event log it carries.
    pub fn review(
        &self,
        id: &str,
        events_cap: usize,
    ) -> Result<crate::timeline::review::Review, OpError> {
        let engine = &self.inner.live;
        Ok(crate::timeline::review::read(
            self.store(),
            id,
            engine.library(),
            &engine.settings().roles,
            engine.now(),
            engine.settings().zone,
            events_cap,
        )?)
    }

    /// The index page's content under `filter`.
    pub fn overview(
        &self,
        filter: &crate::timeline::overview::Filter,
    ) -> Result<crate::timeline::overview::Overview, OpError> {
        filter.check().map_err(OpError::Invalid)?;
        let engine = &self.inner.live;
        let now = engine.now();
        let incidents = self.store().incidents()?;
        let rows = crate::timeline::kpis::rows(self.store(), &engine.library().known(), None, now)?;
        Ok(crate::timeline::overview::overview(
            &incidents,
            &rows,
            filter,
            now,
            engine.settings().zone,
        ))
    }

    /// Opens Slack's Socket Mode connection when it is configured.
    pub async fn connect_channel(&self) -> Result<(), OpError> {
        match &self.inner.channel {
            Some(c) => c.connect(self.clone()).await.map_err(OpError::Unavailable),
            None => Ok(()),
        }
    }

    /// Stops the drivers and flushes the store (graceful shutdown).
    pub async fn stop(&self) {
        if let Some(c) = &self.inner.channel {
            c.disconnect().await;
        }
        let n = self.inner.runner.stop().await;
        // A plan changes nothing, so one cut short is simply run again;
        // its record says so rather than "running" for ever.
        let plans: Vec<(String, tokio::task::JoinHandle<()>)> =
            self.inner.plans.lock().expect("plans").drain().collect();
        for (id, task) in plans {
            if task.is_finished() {
                continue;
            }
            task.abort();
            if let Ok(Some(mut p)) = self.store().plan(&id) {
                p["status"] = serde_json::json!("failed");
                p["error"] =
                    serde_json::json!("the daemon stopped before the plan finished; run it again");
                let _ = self.store().put_plan(&id, &p).await;
            }
        }
        self.store().flush().await;
        if n > 0 {
            tracing::info!(
                incidents = n,
                "stopped with incidents still running; the next start resumes them"
            );
        }
    }
}
