//! Builds an engine for a command: the library, the store, and where
//! integration calls go (the simulator for drills, the real platforms with
//! `--live` or for real incidents).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::Env;
use crate::engine::{Engine, Settings, SystemClock};
use crate::integrations::{Executor, Routing, Secrets, Simulator};
use crate::library::Library;
use crate::store::Store;

pub struct Wired {
    pub engine: Engine,
    /// Kept alive while the engine may call it.
    _simulator: Option<Simulator>,
}

pub async fn wire(
    env: &Env,
    lib: Arc<Library>,
    store: Store,
    live: bool,
    drill: bool,
    max_wait: Duration,
) -> anyhow::Result<Wired> {
    let mut simulator = None;
    let routing = if live {
        let file = env
            .config
            .file_secrets()
            .map_err(|d| anyhow::anyhow!("{d}"))?;
        Routing {
            base_urls: env
                .config
                .integrations
                .iter()
                .filter_map(|(k, v)| v.base_url.clone().map(|u| (k.clone(), u)))
                .collect(),
            secrets: Secrets::resolve(&lib.catalog.secret_names(), &file),
        }
    } else {
        let sim = Simulator::start(&lib.catalog)
            .await
            .context("starting the built-in simulator")?;
        let r = Routing {
            base_urls: sim.base_urls(),
            secrets: Secrets::simulated(&lib.catalog.secret_names()),
        };
        simulator = Some(sim);
        r
    };
    let executor =
        Arc::new(Executor::new(&lib.catalog, routing).context("building the HTTP client")?);
    let settings = Settings {
        drill,
        max_wait,
        organization: env.config.organization_json(),
        roles: env.config.roles.clone(),
    };
    let engine = Engine::new(
        store.clone(),
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
