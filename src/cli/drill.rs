//! `quench drill RUNBOOK`: declare a drill incident and run it to the end,
//! against the built-in simulator unless `--live`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{report_diagnostics, Env};
use crate::engine::{Declaration, Engine};
use crate::runbook::inputs;
use crate::source::duration::parse_duration;
use crate::store::EventKind;
use crate::store::{IncidentStatus, Store};
use crate::timeline;
use serde_json::Value as Json;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// A runbook file or the name of a known runbook.
    pub runbook: String,
    /// An input value, typed by the runbook (a list is a,b,c). Repeatable.
    #[arg(long = "input", value_name = "K=V")]
    pub inputs: Vec<String>,
    /// Call the real platforms (with the configured secrets) instead of the
    /// simulator. Always on for `declare`.
    #[arg(long)]
    pub live: bool,
    /// The longest a `wait` step really waits in a drill; longer ones are cut and recorded.
    #[arg(long, default_value = "5s", value_parser = parse_wait)]
    pub max_wait: Duration,
    /// Severity of the drill incident (sev1..sev4).
    #[arg(long, default_value = "sev2")]
    pub severity: crate::store::Severity,
    /// A read-only run on the live platforms: what the runbook would
    /// revoke, pause and uninstall, and what a real incident would lack.
    /// Reads are sent; no write ever is.
    #[arg(long, conflicts_with = "live")]
    pub plan: bool,
    /// With --plan: plan against the built-in simulator instead.
    #[arg(long, requires = "plan")]
    pub simulated: bool,
    /// With --plan: how to print the report (--json prints JSON too).
    #[arg(long, value_enum, default_value = "text", requires = "plan")]
    pub format: PlanFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    Text,
    Markdown,
    Json,
}

/// The library, the runbook and its typed inputs; Err: the exit code
/// after the problem was printed.
fn load(
    env: &Env,
    args: &DrillArgs,
) -> Result<
    (
        Arc<crate::library::Library>,
        crate::library::LoadedRunbook,
        Json,
    ),
    ExitCode,
> {
    let lib = match env.library() {
        Ok(l) => Arc::new(l),
        Err(d) => return Err(report_diagnostics(&d)),
    };
    let loaded = match lib.runbook(&args.runbook) {
        Ok(r) => r,
        Err(d) => return Err(report_diagnostics(&d)),
    };
    match inputs::parse(&loaded.runbook, &args.inputs) {
        Ok(i) => Ok((lib, loaded, i)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// `drill RUNBOOK --plan`: a read-only run; the report is kept in the store.
pub(super) async fn plan(env: &Env, args: DrillArgs) -> anyhow::Result<ExitCode> {
    let (lib, loaded, inputs) = match load(env, &args) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let store = Store::open(&env.data_dir)?;
    let (executor, _simulator) = super::wiring::plan_executor(env, &lib, !args.simulated).await?;
    let settings = super::wiring::settings(env, false, args.max_wait)?;
    let target = if args.simulated {
        crate::plan::Target::Simulator
    } else {
        crate::plan::Target::Live
    };
    let req = crate::plan::PlanRequest {
        runbook: &loaded,
        inputs,
        by: super::people::default_actor(),
        target,
    };
    let id = crate::plan::begin(&store, &req, chrono::Utc::now()).await?;
    eprintln!("{id}: planning {} (reads only)...", loaded.runbook.name);
    let report = crate::plan::run(&store, &id, lib, executor, settings, req).await?;
    match (env.json, args.format) {
        (true, _) | (_, PlanFormat::Json) => println!("{}", serde_json::to_string(&report)?),
        (_, PlanFormat::Markdown) => print!("{}", crate::plan::report::render_markdown(&report)),
        (_, PlanFormat::Text) => print!("{}", crate::plan::report::render_text(&report)),
    }
    // An incomplete plan (a platform that could not be read) is not a
    // rehearsal anyone should rely on.
    Ok(if report["status"] == "complete" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `declare`/`drill` with `--server URL` (or QUENCH_SERVER): the incident
/// is declared through the daemon's API and runs there.
pub(super) async fn declare_remote(
    env: &Env,
    args: DrillArgs,
    url: &str,
    drill: bool,
) -> anyhow::Result<ExitCode> {
    let remote = match env.remote(url, true) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut inputs = serde_json::Map::new();
    for pair in &args.inputs {
        let Some((k, v)) = pair.split_once('=') else {
            eprintln!("error: --input \"{pair}\" must be written name=value");
            return Ok(ExitCode::from(2));
        };
        inputs.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let body = serde_json::json!({
        "runbook": args.runbook,
        "inputs": inputs,
        "severity": args.severity,
        "by": remote.by(None),
        "drill": drill,
    });
    let answer = match remote.post("/api/v1/incidents", &body).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: the declaration was not accepted: {e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let base = remote.base();
    let id = answer["id"].as_str().unwrap_or_default();
    if env.json {
        println!("{answer}");
    } else {
        println!("{id} declared on {base}; timeline: {base}/incidents/{id}");
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_wait(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("invalid duration \"{s}\": write e.g. 500ms, 5s, 2m"))
}

/// `drill` (simulated unless --live, people steps automatic) or `declare`
/// (a real incident: live platforms, people steps wait for people).
pub(super) async fn run(env: &Env, args: DrillArgs, drill: bool) -> anyhow::Result<ExitCode> {
    let (lib, loaded, inputs) = match load(env, &args) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let store = Store::open(&env.data_dir)?;
    let catalog_lib = lib.clone();
    let wired = super::wiring::wire(
        env,
        lib,
        store.clone(),
        args.live || !drill,
        drill,
        args.max_wait,
    )
    .await?;
    let engine = wired.engine.clone();

    let progress = progress_task(&engine, loaded.runbook.steps.len());
    let declared_by = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let id = engine
        .declare(
            &loaded.runbook,
            Declaration {
                runbook_file: loaded.file.clone(),
                runbook_source: loaded.source.clone(),
                inputs,
                declared_by,
                token: None,
                severity: args.severity,
                channel: None,
            },
        )
        .await?;
    let Some(status) = super::wiring::until_stopped(&id, engine.run(&id)).await else {
        return Ok(ExitCode::from(130));
    };
    let status = status?;
    drop(engine);
    drop(wired);
    let _ = progress.await;

    let snap = store.snapshot(&id)?;
    let mut report = timeline::report(&loaded.runbook, &snap);
    let compared =
        crate::plan::compare::against_last_plan(&store, &loaded.runbook, &snap, |i, a| {
            catalog_lib.catalog.is_write(i, a)
        })?;
    if let Some(c) = &compared {
        report["plan"] = c.clone();
    }
    // A drill filled in for people and credentials: say what, and keep it
    // in the timeline for the page and exports.
    let mut rehearsal_text = String::new();
    if drill {
        let live = super::wiring::live_secrets(env, &catalog_lib);
        let events = store.events(&id)?;
        let notices = store.notices(&id)?;
        let roles = &env.config.roles;
        let r = crate::timeline::rehearsal::rehearsal(
            &loaded.runbook,
            &catalog_lib.catalog,
            &events,
            &notices,
            roles,
            |name| live.as_ref().is_none_or(|s| s.has(name)),
        );
        rehearsal_text = crate::timeline::rehearsal::render_text(&r);
        let n = rehearsal_text.lines().count().saturating_sub(1);
        let ev = crate::store::NewEvent::new(
            EventKind::DrillRehearsal,
            "quench",
            format!("Rehearsal: {n} thing(s) a real incident would need that the drill filled in"),
        )
        .data(r.clone());
        store.append(&id, chrono::Utc::now(), ev).await?;
        report["rehearsal"] = r;
    }
    if env.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let events = store.events(&id)?;
        println!("{}", timeline::render_text(&snap.incident, &events));
        let ttc = report["time_to_contain_ms"]
            .as_i64()
            .map(|ms| {
                crate::source::duration::duration_text(Duration::from_millis(ms.max(0) as u64))
            })
            .unwrap_or_else(|| "not reached".into());
        let platforms = report["verification"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let verified = platforms
            .iter()
            .filter(|p| p["status"] == "verified")
            .count();
        for p in platforms.iter().filter(|p| p["status"] != "verified") {
            println!(
                "  {} {}: {}",
                p["platform"].as_str().unwrap_or("?"),
                p["status"].as_str().unwrap_or("?"),
                p["problems"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Json::as_str)
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            );
        }
        let shown = if platforms.is_empty() {
            String::new()
        } else {
            format!(" · verified on {verified} of {} platforms", platforms.len())
        };
        if let Some(c) = &compared {
            println!("  {}", crate::plan::compare::text(c));
        }
        print!("{rehearsal_text}");
        println!(
            "Drill {id}: {} · time to contain {ttc}{shown} · `quench timeline {id}` shows this again",
            status.name()
        );
    }
    // A completed drill whose re-reads found the tool still there (steps
    // under on_failure: continue) did not contain it.
    let unverified = report["verification"]
        .as_array()
        .is_some_and(|v| v.iter().any(|p| p["status"] == "not verified"));
    Ok(match status {
        IncidentStatus::Completed if unverified => ExitCode::from(1),
        IncidentStatus::Completed => ExitCode::SUCCESS,
        // A declared incident parked on people is doing its job.
        IncidentStatus::Waiting if !drill => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// Shows progress while the engine runs: a bar on a terminal, plain lines
/// otherwise (CI logs). Always on stderr, so stdout stays the report.
pub(super) fn progress_task(engine: &Engine, steps: usize) -> tokio::task::JoinHandle<()> {
    let mut rx = engine.subscribe();
    let tty = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let bar = tty.then(|| {
            let b = indicatif::ProgressBar::new(steps as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        loop {
            match rx.recv().await {
                Ok((id, ev)) => {
                    let line = format!("{id} {:<18} {}", ev.kind, ev.message);
                    match &bar {
                        Some(b) => {
                            if matches!(
                                EventKind::parse(&ev.kind),
                                Some(
                                    EventKind::StepSucceeded
                                        | EventKind::StepFailed
                                        | EventKind::StepSkipped
                                )
                            ) {
                                b.inc(1);
                            }
                            b.set_message(ev.message.clone());
                            if matches!(
                                EventKind::parse(&ev.kind),
                                Some(
                                    EventKind::StepFailed
                                        | EventKind::ItemRetry
                                        | EventKind::WaitCut
                                        | EventKind::IncidentFailed
                                )
                            ) {
                                b.println(line);
                            }
                        }
                        // Plain logs get the step-level story; items are in the timeline.
                        None if !ev.kind.starts_with("item.")
                            || ev.kind == EventKind::ItemRetry
                            || ev.kind == EventKind::ItemFailed =>
                        {
                            eprintln!("{line}")
                        }
                        None => {}
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    if bar.is_none() {
                        eprintln!("({n} progress lines skipped; the timeline has them all)");
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    })
}
