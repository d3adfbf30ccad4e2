//! `quench approve ID STEP`, `quench done ID STEP`, `quench note ID TEXT`:
//! a person resolves a parked step (offline: this process takes the store),
//! then the incident runs on from there.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{report_diagnostics, Env};
use crate::engine::{Decision, Resolution};
use crate::store::{NewEvent, Store};

pub fn default_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

pub async fn resolve(
    env: &Env,
    id: &str,
    step: &str,
    decision: Decision,
    by: Option<String>,
    note: Option<String>,
) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => Arc::new(l),
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let store = Store::open(&env.data_dir)?;
    let inc = store.incident(id)?;
    // A drill stays on the simulator; a real incident calls the real platforms.
    let wired = super::wiring::wire(
        env,
        lib,
        store.clone(),
        !inc.drill,
        inc.drill,
        Duration::from_secs(5),
    )
    .await?;
    let by = by.unwrap_or_else(default_actor);
    wired
        .engine
        .resolve(
            id,
            Resolution {
                step: step.to_string(),
                decision,
                by: by.clone(),
                note,
            },
        )
        .await?;
    let progress = super::drill::progress_task(&wired.engine, 0);
    let status = wired.engine.run(id).await?;
    drop(wired);
    let _ = progress.await;
    println!(
        "{id}: {step} resolved by {by}; incident is {}",
        status.name()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn note(env: &Env, id: &str, text: &str, by: Option<String>) -> anyhow::Result<ExitCode> {
    let store = Store::open(&env.data_dir)?;
    store.incident(id)?;
    let by = by.unwrap_or_else(default_actor);
    let ev = store
        .append(id, chrono::Utc::now(), NewEvent::new("note", &by, text))
        .await?;
    println!("{id}: note #{} recorded", ev.seq);
    Ok(ExitCode::SUCCESS)
}
