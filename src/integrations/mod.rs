//! Integrations: manifests (data, not code), the HTTP executor, the
//! per-integration rate limiter, secrets, and the built-in simulator.

pub mod executor;
pub mod inventory;
pub mod jwt;
pub mod manifest;
mod oauth;
mod paginate;
pub mod rate_limit;
pub(crate) mod response;
pub mod secrets;
pub mod simulator;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::runbook::{Diagnostics, Known};
pub use executor::{CallError, Executor, Routing, Success};
pub use manifest::Manifest;
pub use rate_limit::Caller;
pub use secrets::{Secret, Secrets};
pub use simulator::Simulator;

/// Every known integration, by name: bundled manifests, overridden or
/// extended by files in the integrations folder.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    manifests: BTreeMap<String, Arc<Manifest>>,
    /// Where each manifest came from (`bundled:hubspot.yaml` or a path).
    pub origins: BTreeMap<String, String>,
}

impl Catalog {
    /// Loads the bundled manifests, then `dir` (if it exists). Every problem
    /// in every file is reported together.
    pub fn load(dir: Option<&Path>) -> Result<Catalog, Diagnostics> {
        let mut cat = Catalog::default();
        crate::bundled::load_each(&crate::bundled::MANIFESTS, dir, |file, src, diags| {
            cat.add(file, src, diags)
        })?;
        Ok(cat)
    }

    fn add(&mut self, file: &str, src: &str, diags: &mut Diagnostics) {
        match manifest::load(file, src) {
            Ok(m) => {
                self.origins.insert(m.name.clone(), file.to_string());
                self.manifests.insert(m.name.clone(), Arc::new(m));
            }
            Err(d) => diags.0.extend(d.0),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Manifest>> {
        self.manifests.get(name)
    }

    /// The manifest's declaration of `integration.action`.
    pub fn action(&self, integration: &str, action: &str) -> Option<&manifest::Action> {
        self.get(integration)?.actions.get(action)
    }

    /// Whether `integration.action` changes a platform: an API call that
    /// is not a read (a person's UI task is not).
    pub fn is_write(&self, integration: &str, action: &str) -> bool {
        self.action(integration, action)
            .is_some_and(|a| a.manual.is_none() && !a.reads())
    }

    pub fn manifests(&self) -> impl Iterator<Item = &Arc<Manifest>> {
        self.manifests.values()
    }

    /// Every secret name any manifest reads.
    pub fn secret_names(&self) -> std::collections::BTreeSet<String> {
        self.manifests
            .values()
            .flat_map(|m| m.secrets.iter().cloned())
            .collect()
    }

    /// What runbooks may reference.
    pub fn known(&self, known: &mut Known) {
        for m in self.manifests.values() {
            known
                .integrations
                .insert(m.name.clone(), m.actions.keys().cloned().collect());
        }
    }
}
