//! Builds an engine for a command: the library, the store, and where
//! integration calls go (the simulator for drills, the real platforms with
//! `--live` or for real incidents).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::Env;
use crate::engine::{Engine, Settings, SystemClock};
use crate::integrations::simulator::{StoreKeeper, TenantKeeper};
use crate::integrations::{Executor, Routing, Secrets, Simulator};
use crate::library::Library;
use crate::store::Store;

pub(super) struct Wired {
    pub engine: Engine,
    /// Kept alive while the engine may call it.
    _simulator: Option<Simulator>,
}

/// An executor and, for simulated runs, the simulator it talks to; with a
/// store, the simulated platforms' state is kept in it.
pub(super) async fn executor(
    env: &Env,
    lib: &Library,
    live: bool,
    store: Option<&Store>,
) -> anyhow::Result<(Arc<Executor>, Option<Simulator>)> {
    let (routing, simulator) = routing(env, lib, live, store).await?;
    let executor =
        Arc::new(Executor::new(&lib.catalog, routing).context("building the HTTP client")?);
    Ok((executor, simulator))
}

/// An executor for a plan: it sends reads only and refuses every write.
pub(super) async fn plan_executor(
    env: &Env,
    lib: &Library,
    live: bool,
) -> anyhow::Result<(Arc<Executor>, Option<Simulator>)> {
    // A plan changes nothing, so the simulator needs no keeper.
    let (mut routing, simulator) = routing(env, lib, live, None).await?;
    routing.read_only = true;
    let executor =
        Arc::new(Executor::new(&lib.catalog, routing).context("building the HTTP client")?);
    Ok((executor, simulator))
}

async fn routing(
    env: &Env,
    lib: &Library,
    live: bool,
    store: Option<&Store>,
) -> anyhow::Result<(Routing, Option<Simulator>)> {
    let mut simulator = None;
    let routing = if live {
        let file = env
            .config
            .file_secrets()
            .map_err(|d| anyhow::anyhow!("{d}"))?;
        let pick = |f: fn(&crate::config::IntegrationOverride) -> Option<String>| {
            env.config
                .integrations
                .iter()
                .filter_map(|(k, v)| f(v).map(|u| (k.clone(), u)))
                .collect()
        };
        Routing {
            base_urls: pick(|o| o.base_url.clone()),
            token_urls: pick(|o| o.token_url.clone()),
            secrets: Secrets::resolve(&lib.catalog.secret_names(), &file),
            simulated: false,
            read_only: false,
        }
    } else {
        let keeper = store.map(|s| Arc::new(StoreKeeper(s.clone())) as Arc<dyn TenantKeeper>);
        let sim = Simulator::start_keeping(&lib.catalog, keeper)
            .await
            .context("starting the built-in simulator")?;
        let r = sim.routing(&lib.catalog.secret_names());
        simulator = Some(sim);
        r
    };
    Ok((routing, simulator))
}

/// The secrets a `--live` run would have (environment and secrets file);
/// None when the secrets file does not load.
pub(super) fn live_secrets(env: &Env, lib: &Library) -> Option<Secrets> {
    let file = env.config.file_secrets().ok()?;
    Some(Secrets::resolve(&lib.catalog.secret_names(), &file))
}

pub(super) async fn wire(
    env: &Env,
    lib: Arc<Library>,
    store: Store,
    live: bool,
    drill: bool,
    max_wait: Duration,
) -> anyhow::Result<Wired> {
    let (executor, simulator) = executor(env, &lib, live, Some(&store)).await?;
    let settings = settings(env, drill, max_wait)?;
    let engine = Engine::new(
        Arc::new(store),
        executor,
        Arc::new(SystemClock),
        lib,
        settings,
    );
    Ok(Wired {
        engine,
        _simulator: simulator,
    })
}

/// The engine's settings from the config.
pub(super) fn settings(env: &Env, drill: bool, max_wait: Duration) -> anyhow::Result<Settings> {
    Ok(Settings {
        drill,
        max_wait,
        organization: env.config.organization_json(),
        roles: env.config.roles.clone(),
        registry: env.registry().map_err(|d| anyhow::anyhow!("{d}"))?,
        plan: false,
        zone: env.config.zone(),
    })
}

/// Runs `work` until it ends or the process is asked to stop (Ctrl-C,
/// SIGTERM). Stopping is safe at any point: every transition is already
/// durable, and an interrupted call is retried with the same idempotency
/// key by `quench resume`.
pub(super) async fn until_stopped<T>(
    id: &str,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    let stop = stop_signal();
    tokio::select! {
        out = work => Some(out),
        _ = stop => {
            eprintln!("stopped: {id} stays running in the store; `quench resume {id}` continues it where it was");
            None
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(super) async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
