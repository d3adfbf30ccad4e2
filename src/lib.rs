//! quench: incident-response runbooks for marketing teams.
//!
//! A map of the crate, from the inside out (no module imports one that
//! imports it back: `.ci/house.py` lists any cycle):
//! - [`source`]: located YAML for every file kind: parsing with positions
//!   and limits, checked reading, `file:line:col` diagnostics, durations.
//! - [`clock`]: time, injectable: the system clock, and a fake for tests.
//! - [`registry`]: the approved-tools registry and its verdict on a name.
//! - [`bundled`]: files compiled in, overlaid by the user's folders.
//! - [`template`]: handlebars in one place: analysis at load (variables,
//!   helpers), each source compiled once, strict rendering, the helpers
//!   (`verdict` holding its registry), Markdown escaping.
//! - [`runbook`]: the YAML runbook format, loading, and validation with
//!   `file:line:col` diagnostics; input vocabularies (`values:`).
//! - [`integrations`]: platform manifests (data), the HTTP executor with
//!   retries classification and per-integration rate limits, secrets, and
//!   the built-in simulator drills run against.
//! - [`store`]: the sled store: incidents, step runs, timeline events
//!   (their closed set of kinds, `EventKind`), notices, the audit chain.
//! - [`engine`]: runs an incident's step graph. Its rules are pure
//!   (`engine::schedule`: what starts, what is skipped, the outcome;
//!   `engine::attempt`: an item's next state from an attempt's result);
//!   the driver records each transition durably before its effect starts.
//!   Its effects sit behind two ports (`engine::journal`): a `Journal` the
//!   store implements and `Actions` the HTTP executor implements, so the
//!   driver's own tests run on memory and a scripted platform.
//! - [`notices`]: notice templates, the rule table, deadlines.
//! - [`timeline`]: KPIs and renderers (text, markdown, json, html).
//! - [`plan`]: read-only runs (`drill --plan`) and their reports.
//! - [`daemon`]: the application service the API, Slack and the CLI call:
//!   declare, decide, note, plan; access (tokens, scopes), the incident
//!   drivers, counters; its channels (Slack) behind the `Channel` trait.
//! - [`server`]: the HTTP adapter: REST API, pages, `/metrics`,
//!   `/healthz`, security headers, JSON errors.
//! - [`slack`]: the Slack adapter: slash commands, buttons, modals and
//!   incident threads; implements `daemon::Channel`, serves `/slack/*`.
//! - [`library`]: everything bundled or configured, validated together.
//! - [`cli`]: the command-line interface (`main.rs` only dispatches to it);
//!   `cli::remote` is the one client of a daemon.

pub mod bundled;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod integrations;
pub mod library;
pub mod notices;
pub mod plan;
pub mod registry;
pub mod runbook;
pub mod server;
pub mod slack;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod timeline;

/// Installs the process-wide TLS provider (ring). Idempotent; must run
/// before the first HTTP client is built.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
