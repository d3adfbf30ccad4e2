//! quench: incident-response runbooks for marketing teams.
//!
//! A map of the crate:
//! - [`runbook`]: the YAML runbook format, loading, and validation with
//!   `file:line:col` diagnostics.
//! - [`integrations`]: platform manifests (data), the HTTP executor with
//!   retries classification and per-integration rate limits, secrets, and
//!   the built-in simulator drills run against.
//! - [`engine`]: runs an incident's step graph concurrently and durably,
//!   resuming after a crash without repeating finished effects.
//! - [`store`]: the sled store: incidents, step runs, timeline events, notices.
//! - [`notices`]: notice templates and drafting.
//! - [`timeline`]: KPIs and renderers (text, markdown, json, html).
//! - [`plan`]: read-only runs (`drill --plan`) and their reports.
//! - [`server`]: the daemon: REST API, pages, metrics, incident drivers.
//! - [`slack`]: slash commands, buttons and incident threads in Slack.
//! - [`library`]: everything bundled or configured, validated together.
//! - [`cli`]: the command-line interface (`main.rs` only dispatches to it).

pub mod bundled;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod integrations;
pub mod library;
pub mod notices;
pub mod plan;
pub mod runbook;
pub mod server;
pub mod slack;
pub mod store;
pub mod template;
pub mod timeline;

/// Installs the process-wide TLS provider (ring). Idempotent; must run
/// before the first HTTP client is built.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
