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
    /// occurred|discovered|aware|determined|confirmed|assessed[=RFC3339].
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

pub async fn note(
    env: &Env,
    id: &str,
    text: &str,
    by: Option<String>,
    facts: NoteFacts,
) -> anyhow::Result<ExitCode> {
    use crate::notices::clocks::Moment;
    let store = Store::open(&env.data_dir)?;
    store.incident(id)?;
    let by = by.unwrap_or_else(default_actor);
    let now = chrono::Utc::now();
    let ev = if let Some(m) = &facts.moment {
        let (name, at) = match m.split_once('=') {
            Some((n, t)) => {
                let at = chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|e| anyhow::anyhow!("--moment {m}: \"{t}\" is not an RFC 3339 time ({e}); write e.g. 2026-11-28T21:04:00Z"))?
                    .with_timezone(&chrono::Utc);
                (n, at)
            }
            None => (m.as_str(), now),
        };
        let Some(moment) = Moment::parse(name) else {
            let all: Vec<&str> = Moment::ALL.iter().map(|m| m.as_str()).collect();
            anyhow::bail!(
                "--moment: unknown moment \"{name}\"; one of: {}",
                all.join(", ")
            );
        };
        NewEvent::new(
            "moment.recorded",
            &by,
            format!("{}: {text}", moment.as_str()),
        )
        .data(serde_json::json!({"moment": moment.as_str(), "at": at.to_rfc3339()}))
    } else if facts.pause {
        NewEvent::new(
            "clock.paused",
            &by,
            format!("Law-enforcement delay: {text}"),
        )
        .data(serde_json::json!({"at": now.to_rfc3339()}))
    } else if facts.resume {
        NewEvent::new(
            "clock.resumed",
            &by,
            format!("Law-enforcement delay ended: {text}"),
        )
        .data(serde_json::json!({"at": now.to_rfc3339()}))
    } else if let Some(x) = &facts.exception {
        NewEvent::new("exception.applied", &by, format!("Exception {x}: {text}"))
            .data(serde_json::json!({"exception": x}))
    } else {
        NewEvent::new("note", &by, text)
    };
    let ev = store.append(id, now, ev).await?;
    println!("{id}: {} #{} recorded", ev.kind, ev.seq);
    Ok(ExitCode::SUCCESS)
}

/// `quench resume [ID]`: runs on incidents a stopped process left running
/// (what the daemon does at start): finished steps are not redone, an
/// in-flight call is retried with the same idempotency key.
pub async fn resume(env: &Env, id: Option<String>) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => Arc::new(l),
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let store = Store::open(&env.data_dir)?;
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
