//! `quench approve ID STEP`, `quench done ID STEP`, `quench note ID TEXT`:
//! a person resolves a parked step (offline: this process takes the store),
//! then the incident runs on from there.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::remote::Access;
use super::{report_diagnostics, Env};
use crate::engine::{Decision, Resolution};

pub(super) fn default_actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".into())
}

pub(super) async fn resolve(
    env: &Env,
    id: &str,
    step: &str,
    decision: Decision,
    by: Option<String>,
    note: Option<String>,
) -> anyhow::Result<ExitCode> {
    let store = match env.access()? {
        Access::Local(store) => store,
        Access::Daemon(r) => {
            let by = r.by(by);
            let (path, body) = match decision {
                Decision::Done => (
                    format!("/api/v1/incidents/{id}/steps/{step}/done"),
                    serde_json::json!({"by": by, "note": note}),
                ),
                d => (
                    format!("/api/v1/incidents/{id}/approvals/{step}"),
                    serde_json::json!({"approve": d == Decision::Approve, "by": by, "note": note}),
                ),
            };
            let answer = r.post(&path, &body).await?;
            let recorded = crate::engine::actor_of(
                answer["by"].as_str().unwrap_or("?"),
                answer["via"].as_str(),
            );
            println!(
                "{id}: {step} resolved by {recorded} through the daemon at {}; it runs the incident on",
                r.base()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let by = by.unwrap_or_else(default_actor);
    let lib = match env.library() {
        Ok(l) => Arc::new(l),
        Err(d) => return Ok(report_diagnostics(&d)),
    };
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
    wired
        .engine
        .resolve(
            id,
            Resolution {
                step: step.to_string(),
                decision,
                by: by.clone(),
                via: None,
                token: None,
                note,
            },
        )
        .await?;
    let progress = super::drill::progress_task(&wired.engine, 0);
    let Some(status) = super::wiring::until_stopped(id, wired.engine.run(id)).await else {
        return Ok(ExitCode::from(130));
    };
    let status = status?;
    drop(wired);
    let _ = progress.await;
    println!(
        "{id}: {step} resolved by {by}; incident is {}",
        status.name()
    );
    Ok(ExitCode::SUCCESS)
}

/// What a note also records for the regulatory clocks.
#[derive(Debug, Default, clap::Args)]
pub struct NoteFacts {
    /// A moment the clocks start from, learned now or at a given time:
    /// occurred|discovered|aware|confirmed|assessed, or a law's own
    /// determination (ny_inadvertent_disclosure_determined,
    /// tx_breach_determined, pipeda_real_risk_determined,
    /// au_eligible_breach_believed), [=RFC3339].
    #[arg(long, value_name = "MOMENT[=TIME]")]
    pub moment: Option<String>,
    /// Law enforcement asked to delay notification: pause the clocks that allow it.
    #[arg(long, conflicts_with = "resume")]
    pub pause: bool,
    /// The law-enforcement delay has ended.
    #[arg(long)]
    pub resume: bool,
    /// A named exception the responders decided applies (e.g. inadvertent_disclosure).
    #[arg(long, value_name = "NAME")]
    pub exception: Option<String>,
}

pub(super) async fn note(
    env: &Env,
    id: &str,
    text: &str,
    by: Option<String>,
    facts: NoteFacts,
) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now();
    let store = match env.access()? {
        Access::Local(store) => store,
        Access::Daemon(r) => {
            let body = serde_json::json!({"text": text, "by": r.by(by), "moment": facts.moment,
                "pause": facts.pause, "resume": facts.resume, "exception": facts.exception});
            let ev = r
                .post(&format!("/api/v1/incidents/{id}/notes"), &body)
                .await?;
            println!(
                "{id}: {} #{} recorded by the daemon",
                ev["kind"].as_str().unwrap_or("note"),
                ev["seq"]
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let by = by.unwrap_or_else(default_actor);
    store.incident(id)?;
    let facts = crate::timeline::notes::NoteFacts {
        moment: facts.moment,
        pause: facts.pause,
        resume: facts.resume,
        exception: facts.exception,
    };
    let ev = crate::timeline::notes::note_event(text, &by, &facts, now)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ev = store.append(id, now, ev).await?;
    println!("{id}: {} #{} recorded", ev.kind, ev.seq);
    Ok(ExitCode::SUCCESS)
}

/// `quench resume [ID]`: runs on incidents a stopped process left running
/// (what the daemon does at start): finished steps are not redone, an
/// in-flight call is retried with the same idempotency key.
pub(super) async fn resume(env: &Env, id: Option<String>) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => Arc::new(l),
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let store = match env.access()? {
        Access::Local(store) => store,
        Access::Daemon(r) => {
            println!(
                "the daemon at {} holds the store and resumes running incidents itself when it starts",
                r.base()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let ids: Vec<String> = match id {
        Some(id) => vec![store.incident(&id)?.id],
        None => store
            .incidents()?
            .into_iter()
            .filter(|i| i.status == crate::store::IncidentStatus::Running)
            .map(|i| i.id)
            .collect(),
    };
    if ids.is_empty() {
        println!(
            "nothing to resume: no running incident in {}",
            env.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut worst = ExitCode::SUCCESS;
    for id in ids {
        let inc = store.incident(&id)?;
        let wired = super::wiring::wire(
            env,
            lib.clone(),
            store.clone(),
            !inc.drill,
            inc.drill,
            Duration::from_secs(5),
        )
        .await?;
        let progress = super::drill::progress_task(&wired.engine, 0);
        let Some(status) = super::wiring::until_stopped(&id, wired.engine.resume(&id)).await else {
            return Ok(ExitCode::from(130));
        };
        let status = status?;
        drop(wired);
        let _ = progress.await;
        println!("{id}: {}", status.name());
        if status == crate::store::IncidentStatus::Failed {
            worst = ExitCode::from(1);
        }
    }
    Ok(worst)
}
