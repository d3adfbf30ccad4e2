//! `quench serve`: the daemon. Holds the store, resumes what a stopped
//! daemon left running, serves the API, pages and Slack until SIGTERM or
//! Ctrl-C, then stops cleanly (every transition is already durable).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::{report_diagnostics, Env};
use crate::daemon::{Daemon, DaemonParts};
use crate::engine::{Engine, Settings, SystemClock};
use crate::slack::{Slack, SlackSettings};

pub(super) async fn run(env: &Env, listen: Option<String>) -> anyhow::Result<ExitCode> {
    let lib = match env.library() {
        Ok(l) => Arc::new(l),
        Err(d) => return Ok(report_diagnostics(&d)),
    };
    let (token_env, api_token) = env.api_token();
    // With `access:` the shared token is optional: each person has theirs.
    if api_token.is_none() && env.config.access.is_empty() {
        eprintln!("error: no API token: export {token_env}=<a long random value> (the variable is named by api_token_env in quench.yaml), or list per-person tokens under `access:` (`quench token new USER`); /api/* and the pages require one");
        return Ok(ExitCode::from(2));
    }
    if let Some(t) = &api_token {
        if t.trim() != t {
            eprintln!("error: {token_env} starts or ends with whitespace, so no request could present it; remove the spaces or newline");
            return Ok(ExitCode::from(2));
        }
        if t.len() < 16 {
            eprintln!("error: {token_env} is shorter than 16 characters; use a long random value (e.g. `openssl rand -hex 32`)");
            return Ok(ExitCode::from(2));
        }
    }
    let access = match crate::daemon::access::Access::new(
        &env.config.access,
        api_token.as_deref().map(|t| (token_env.as_str(), t)),
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: `access:` in the config: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let slack = match SlackSettings::from_config(env.config.slack.as_ref()) {
        Ok(Some(s)) => Some(Slack::new(s).context("building the Slack client")?),
        Ok(None) => None,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    // Checked before the store opens or the port binds: a bad lease must
    // not surface only once a standby would have tried to lead.
    let ttl = match env.config.lease() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let addr = listen
        .or_else(|| env.config.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let store = open_store(env).await?;

    let (live_exec, _) = super::wiring::executor(env, &lib, true, None).await?;
    let (drill_exec, simulator) = super::wiring::executor(env, &lib, false, Some(&store)).await?;
    // Plans read through executors that refuse every write.
    let (plan_live, _) = super::wiring::plan_executor(env, &lib, true).await?;
    let (plan_sim, plan_simulator) = super::wiring::plan_executor(env, &lib, false).await?;
    let planners = crate::daemon::Planners {
        live: Some(plan_live),
        simulated: Some(plan_sim),
    };
    let settings = super::wiring::settings(env, false, Duration::from_secs(5))?;
    let live = Engine::new(
        Arc::new(store.clone()),
        live_exec,
        Arc::new(SystemClock),
        lib,
        settings.clone(),
    );
    let drill = live.sibling(
        drill_exec,
        Settings {
            drill: true,
            ..settings
        },
    );
    let slack_on = slack.is_some();
    let daemon = Daemon::new(DaemonParts {
        store,
        live,
        drill: Some(drill),
        access,
        channel: slack
            .clone()
            .map(|s| Arc::new(s) as Arc<dyn crate::daemon::Channel>),
        planners,
    });
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| {
            format!("cannot listen on {addr} (--listen or `listen:` in quench.yaml)")
        })?;
    let local = listener.local_addr()?;
    let store_path = daemon.store().path().to_string();
    let shared = daemon.store().is_shared();
    let resumed = if shared {
        // A standby until it takes the lease (daemon::leadership).
        Vec::new()
    } else {
        let r = daemon.start()?;
        daemon.connect_channel().await?;
        r
    };
    // Scripts and tests read the bound address from this first line.
    // A deposed leader starting again (become_standby) says so in its log
    // rather than on stdout, which whoever started it may have stopped
    // reading: a write to that closed pipe would end it with SIGPIPE.
    match std::env::var("QUENCH_DEPOSED") {
        Ok(why) => {
            tracing::info!(reason = %why, "started again as a standby after being deposed");
        }
        Err(_) => println!("quench serve: listening on http://{local}"),
    }
    tracing::info!(
        %local,
        store = %store_path,
        slack = slack_on,
        resumed = resumed.len(),
        "daemon started"
    );
    for id in &resumed {
        tracing::info!(incident = %id, "resuming an incident left running");
    }
    if shared {
        let lease = crate::daemon::leadership::Lease {
            holder: holder(env, local),
            ttl,
        };
        let d = daemon.clone();
        tokio::spawn(async move {
            let why = crate::daemon::leadership::lead(d, lease).await;
            become_standby(&why);
        });
    }
    let store = daemon.store().clone();
    let faulted = store.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown_signal() => {}
            // sled does not recover from a failed write in-process: stop
            // cleanly so the supervisor starts a fresh one, which resumes
            // the incidents once the disk can take writes again.
            () = faulted.faulted() => {
                tracing::error!(reason = %faulted.fault().unwrap_or_default(), "the store cannot write; stopping so the supervisor restarts quench");
            }
        }
    };
    crate::server::serve(daemon, crate::slack::routes(slack), listener, stop).await?;
    // A clean stop hands the lease over at once rather than after it runs
    // out; bounded, as a database gone silent would never answer.
    match tokio::time::timeout(ttl, store.release()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not give the shared store's lease up"),
        Err(_) => tracing::warn!("the shared store did not answer the lease's release"),
    }
    drop((simulator, plan_simulator));
    if let Some(why) = store.fault() {
        // A shared store that failed a write is out of reach (the database
        // restarting, a network cut): no supervisor needed, this daemon
        // waits for it as a fresh standby and leads again if it can.
        if store.is_shared() {
            become_standby(&why);
        }
        eprintln!("error: {why}\n(stopped; incidents resume when quench starts again with a writable store)");
        return Ok(ExitCode::from(75));
    }
    tracing::info!("daemon stopped");
    Ok(ExitCode::SUCCESS)
}

/// The store, opened at once, or for a daemon that starts again after
/// being deposed (`become_standby`), once the shared store answers:
/// it most often lost its lease because the database went away, and it
/// must ride the outage out and retake or cede the lease when the
/// database returns, rather than exit and leave no daemon to do so. It
/// binds no port meanwhile (it has nothing to serve reads from: its copy
/// is rebuilt from the database), so a load balancer sees it down. A
/// first start still fails at once, so a wrong URL is said at once.
async fn open_store(env: &Env) -> anyhow::Result<crate::store::Store> {
    const FIRST: Duration = Duration::from_millis(200);
    const MOST: Duration = Duration::from_secs(5);
    if std::env::var_os("QUENCH_DEPOSED").is_none() {
        return env.open_store().await;
    }
    let mut wait = FIRST;
    let mut tries = 0u32;
    loop {
        let e = match env.open_store().await {
            Ok(store) => {
                if tries > 0 {
                    tracing::info!(tries, "the shared store answers again");
                }
                return Ok(store);
            }
            Err(e) => e,
        };
        match e.downcast_ref::<crate::store::StoreError>() {
            Some(se) if se.is_unreachable() => {}
            _ => return Err(e),
        }
        tries += 1;
        // The error names the store by host, port and database only.
        tracing::warn!(error = %e, tries, retry_in = ?wait, "the shared store is out of reach; waiting for it");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MOST);
    }
}

/// How this daemon is named to the others sharing its store: the address
/// people reach it at (`slack.public_url`, else the bound address) on
/// this host. A daemon restarted with the same name takes its own lease
/// back at once; the epoch still fences whatever ran under the old one.
fn holder(env: &Env, local: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    match env.config.slack.as_ref().and_then(|s| s.public_url.clone()) {
        Some(url) => format!("{url} ({host})"),
        None => format!("http://{local} on {host}"),
    }
}

/// A deposed leader stops at once: everything it was doing is abandoned
/// (its writes are fenced already, and the new leader retries what was in
/// flight with the same idempotency keys). It starts again as a fresh
/// standby by replacing itself with the same command, so no state of the
/// deposed run (drivers, Slack follower, its copy of the store) survives.
/// A standby that lost its connection to the database starts again the
/// same way, which is how it connects afresh.
fn become_standby(why: &str) {
    use std::os::unix::process::CommandExt;
    tracing::error!(reason = %why, "deposed, or out of touch with the shared store: starting again as a standby");
    let err = match std::env::current_exe() {
        Ok(exe) => std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("QUENCH_DEPOSED", why)
            .exec(),
        Err(e) => e,
    };
    // Only reached when the exec failed: stop rather than act unled.
    eprintln!("error: no longer leading or following the shared store ({why}) and could not start again as a standby: {err}");
    std::process::exit(75);
}

async fn shutdown_signal() {
    super::wiring::stop_signal().await;
    tracing::info!("shutting down: finishing requests, then stopping");
}
