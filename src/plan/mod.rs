//! Plans: a read-only run of a runbook against the platforms, to see what
//! it would revoke, pause and uninstall, what it would leave alone and why,
//! and what a real incident would lack, without changing anything.
//!
//! The runbook runs on the real engine (for_each, when, templates, retries
//! on reads) over a scratch store, with an executor that refuses every
//! write: each write is recorded as the request it would send. The report
//! is kept in the main store with its inputs and time.

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

/// Runs a plan and keeps its report in `store`; returns the report.
pub async fn run(
    store: &Store,
    lib: Arc<Library>,
    executor: Arc<Executor>,
    settings: Settings,
    req: PlanRequest<'_>,
) -> Result<Json, PlanError> {
    // The engine never sends a write in a plan; the executor refusing them
    // too means no bug in either alone can change a platform.
    if !executor.read_only() {
        return Err(PlanError::NotReadOnly);
    }
    let now = chrono::Utc::now();
    let id = store.next_plan_id(now)?;
    let scratch = Store::scratch()?;
    let settings = Settings {
        plan: true,
        drill: false,
        ..settings
    };
    let registry = settings.registry.clone();
    let roles = settings.roles.clone();
    let engine = Engine::new(
        scratch.clone(),
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
                severity: "sev4".into(),
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
    let mut report = report::build(&report::Facts {
        runbook: &req.runbook.runbook,
        snapshot: &snap,
        items: &items,
        events: &events,
        library: &lib,
        executor: &executor,
        registry: &registry,
        roles: &roles,
    });
    let head = json!({
        "plan": id,
        "runbook": req.runbook.runbook.name,
        "inputs": req.inputs,
        "planned_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "planned_by": req.by,
        "target": req.target.name(),
    });
    if let (Json::Object(r), Json::Object(h)) = (&mut report, head) {
        for (k, v) in h {
            r.insert(k, v);
        }
    }
    store.put_plan(&id, &report).await?;
    Ok(report)
}
