//! Plans: a read-only run of a runbook against the platforms, to see what
//! it would revoke, pause and uninstall, what it would leave alone and why,
//! and what a real incident would lack, without changing anything.
//!
//! The runbook runs on the real engine (for_each, when, templates, retries
//! on reads) over a scratch store, with an executor that refuses every
//! write: each write is recorded as the request it would send. The report
//! is kept in the main store with its inputs and time.

pub mod compare;
pub mod report;

use std::sync::Arc;

use serde_json::{json, Value as Json};

use crate::engine::{Declaration, Engine, EngineError, Settings, SystemClock};
use crate::integrations::Executor;
use crate::library::{Library, LoadedRunbook};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("a plan needs an executor that refuses writes; this one would send them")]
    NotReadOnly,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a plan's reads go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The real platforms, with the configured credentials.
    Live,
    /// The built-in simulator's tenants.
    Simulator,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Live => "live",
            Target::Simulator => "simulator",
        }
    }
}

pub struct PlanRequest<'a> {
    pub runbook: &'a LoadedRunbook,
    pub inputs: Json,
    pub by: String,
    pub target: Target,
}

/// Allocates a plan and keeps it as running (with its inputs and time);
/// returns its id. [`run`] does the work.
pub async fn begin(
    store: &Store,
    req: &PlanRequest<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, PlanError> {
    let id = store.next_plan_id(now)?;
    let head = json!({
        "plan": id,
        "status": "running",
        "runbook": req.runbook.runbook.name,
        "inputs": req.inputs,
        "planned_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "planned_by": req.by,
        "target": req.target.name(),
    });
    store.put_plan(&id, &head).await?;
    Ok(id)
}

/// Runs plan `id` (from [`begin`]) and keeps its report in `store`;
/// returns the report. A plan that fails is kept as failed, with why.
pub async fn run(
    store: &Store,
    id: &str,
    lib: Arc<Library>,
    executor: Arc<Executor>,
    settings: Settings,
    req: PlanRequest<'_>,
) -> Result<Json, PlanError> {
    let head = store.plan(id)?.unwrap_or_else(|| json!({"plan": id}));
    match work(lib, executor, settings, &req).await {
        Ok(mut report) => {
            if let (Json::Object(r), Json::Object(h)) = (&mut report, head) {
                for (k, v) in h {
                    // The report's own status (complete or incomplete)
                    // replaces "running".
                    r.entry(k).or_insert(v);
                }
            }
            store.put_plan(id, &report).await?;
            Ok(report)
        }
        Err(e) => {
            let mut failed = head;
            failed["status"] = json!("failed");
            // Engine and store errors carry no secret: the executor
            // redacts everything it hands on.
            failed["error"] = json!(e.to_string());
            store.put_plan(id, &failed).await?;
            Err(e)
        }
    }
}

async fn work(
    lib: Arc<Library>,
    executor: Arc<Executor>,
    settings: Settings,
    req: &PlanRequest<'_>,
) -> Result<Json, PlanError> {
    // The engine never sends a write in a plan; the executor refusing them
    // too means no bug in either alone can change a platform.
    if !executor.read_only() {
        return Err(PlanError::NotReadOnly);
    }
    let scratch = Store::scratch()?;
    let settings = Settings {
        plan: true,
        drill: false,
        ..settings
    };
    let registry = settings.registry.clone();
    let roles = settings.roles.clone();
    let engine = Engine::new(
        Arc::new(scratch.clone()),
        executor.clone(),
        Arc::new(SystemClock),
        lib.clone(),
        settings,
    );
    let run_id = engine
        .declare(
            &req.runbook.runbook,
            Declaration {
                runbook_file: req.runbook.file.clone(),
                runbook_source: req.runbook.source.clone(),
                inputs: req.inputs.clone(),
                declared_by: req.by.clone(),
                token: None,
                severity: crate::store::Severity::Sev4,
                channel: None,
            },
        )
        .await?;
    engine.run(&run_id).await?;
    let snap = scratch.snapshot(&run_id)?;
    let mut items = std::collections::BTreeMap::new();
    for s in &req.runbook.runbook.steps {
        items.insert(s.id.clone(), scratch.item_runs(&run_id, &s.id)?);
    }
    let events = scratch.events(&run_id)?;
    Ok(report::build(&report::Facts {
        runbook: &req.runbook.runbook,
        snapshot: &snap,
        items: &items,
        events: &events,
        library: &lib,
        executor: &executor,
        registry: &registry,
        roles: &roles,
    }))
}
