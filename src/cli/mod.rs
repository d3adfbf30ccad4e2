//! The command line: one module per subcommand. This is the binary's edge,
//! so errors are `anyhow` here and typed everywhere below, and the wall
//! clock may be read here (the engine below takes a `Clock`).
#![allow(clippy::disallowed_methods)]

mod drill;
mod integrations;
mod notices;
mod people;
mod remote;
mod serve;
mod store;
mod timeline;
mod token;
mod validate;
mod wiring;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::library::{Folders, Library};
use crate::runbook::Diagnostics;

#[derive(Debug, Parser)]
#[command(
    name = "quench",
    version,
    about = "Incident-response runbooks for marketing teams: contain shadow-AI data exposures across the marketing stack"
)]
pub struct Cli {
    /// Config file (default: ./quench.yaml if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store directory (default: data_dir from the config, else .quench).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Extra runbooks folder (default: runbooks_dir, else ./runbooks).
    #[arg(long, global = true, value_name = "DIR")]
    pub runbooks: Option<PathBuf>,
    /// Extra integrations folder (default: integrations_dir, else ./integrations).
    #[arg(long, global = true, value_name = "DIR")]
    pub integrations: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// A running daemon (`quench serve`) to work through, from any machine
    /// and folder: every command that reads or changes incidents goes
    /// through its API, with the token in QUENCH_TOKEN (else api_token_env's).
    #[arg(long, global = true, env = "QUENCH_SERVER", value_name = "URL")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks, manifests and templates; exit 1 with file:line:col errors.
    Validate {
        /// Files to check (default: everything bundled and configured).
        paths: Vec<PathBuf>,
    },
    /// Rehearse a runbook against the built-in simulator.
    Drill(drill::DrillArgs),
    /// Run the daemon: REST API, timeline pages, Slack, /metrics, /healthz.
    Serve {
        /// Address to listen on (default: `listen` from the config, else 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Log lines as text or JSON (on stderr; level from QUENCH_LOG, default info).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Declare a real incident and run it here until it completes or waits
    /// on people (live platforms; approvals and manual steps wait); with
    /// --server, declare it on a running daemon instead.
    Declare(drill::DrillArgs),
    /// List incidents in the store.
    Incidents,
    /// Show one incident and its steps.
    Status { id: String },
    /// Print an incident's recorded events.
    Timeline {
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        format: timeline::Format,
    },
    /// List integrations, their actions and whether their secrets are set;
    /// `integrations check` makes one harmless read call to each configured one.
    Integrations {
        #[command(subcommand)]
        check: Option<IntegrationsCommand>,
    },
    /// Governance KPIs: time to contain and to notify (median, p90, worst),
    /// outcomes, overdue clocks; incidents and drills apart.
    Kpis {
        /// Only incidents declared on or after this date (YYYY-MM-DD, UTC) or time (RFC 3339).
        #[arg(long, value_name = "DATE", value_parser = crate::timeline::kpis::parse_since)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, value_enum, default_value = "text")]
        format: timeline::KpiFormat,
    },
    /// Check an incident's record: the audit chain over its timeline and
    /// the hashes of its notices.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The store itself: `store migrate` copies an embedded store into
    /// PostgreSQL, or back.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Per-person API tokens for `access:` in the config.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// List connected apps, OAuth grants and API keys on the configured
    /// platforms, marked approved, unapproved or unknown.
    Inventory {
        /// Ask the built-in simulator instead of the real platforms.
        #[arg(long)]
        simulated: bool,
    },
    /// Approve (or with --reject, reject) a waiting approval step.
    Approve {
        id: String,
        step: String,
        /// Who decides (a member of one of the step's approver roles); default $USER.
        #[arg(long)]
        by: Option<String>,
        /// Record a "no" decision instead.
        #[arg(long)]
        reject: bool,
        #[arg(long)]
        note: Option<String>,
    },
    /// Continue incidents a stopped process left running (one, or all).
    Resume { id: Option<String> },
    /// Mark a waiting manual step done.
    Done {
        id: String,
        step: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Add a note to an incident's timeline; with --moment, --pause,
    /// --resume or --exception it also feeds the regulatory clocks.
    Note {
        id: String,
        text: String,
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        facts: people::NoteFacts,
    },
    /// List an incident's notice drafts, or export them.
    Notices {
        id: String,
        /// Write the latest version of each notice into DIR (created).
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "markdown")]
        format: notices::NoticeFormat,
        #[command(flatten)]
        change: notices::NoticeChange,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random token once, and the `access:` line to paste
    /// (it holds only the token's SHA-256).
    New {
        /// Whose token: a Slack user id or a name (what the timeline records).
        user: String,
        /// What it may do: read, declare, decide, note, admin.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        can: Vec<String>,
        /// A display name for the `access:` line.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the chain; exit 1 and name every event or notice that
    /// changed after it was recorded.
    Verify { id: String },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every record from one store to another, which must be empty:
    /// a data dir into PostgreSQL or back. Stop the daemon first. The
    /// copy is one transaction, and `audit verify` is run on every
    /// incident it copied.
    Migrate {
        /// A data dir, or a postgres:// URL.
        #[arg(long, value_name = "DIR|URL")]
        from: String,
        /// A data dir, or a postgres:// URL.
        #[arg(long, value_name = "DIR|URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IntegrationsCommand {
    /// One harmless read per configured integration: reachability and auth.
    Check {
        /// Ask the built-in simulator instead of the real platforms.
        #[arg(long)]
        simulated: bool,
    },
}

/// Settings every command shares, resolved from flags and the config.
pub struct Env {
    pub config: Config,
    pub folders: Folders,
    pub data_dir: PathBuf,
    pub json: bool,
    /// `--server` / QUENCH_SERVER.
    pub server: Option<String>,
}

/// The token the CLI sends to a daemon, and where it came from.
pub struct CliToken {
    pub value: String,
    /// The variable it was read from, for messages.
    pub source: String,
    /// A person's own token (QUENCH_TOKEN): the daemon knows who it is, so
    /// `by` is sent only when asked for. The shared API token names no one.
    pub personal: bool,
}

impl Env {
    fn new(cli: &Cli) -> anyhow::Result<Env> {
        let config = Config::load(cli.config.as_deref()).map_err(|d| anyhow::anyhow!("{d}"))?;
        let pick =
            |flag: &Option<PathBuf>, cfg: &Option<PathBuf>, default: &str| -> Option<PathBuf> {
                flag.clone()
                    .or_else(|| cfg.clone())
                    .or_else(|| Some(PathBuf::from(default)))
            };
        let folders = Folders {
            runbooks: pick(&cli.runbooks, &config.runbooks_dir, "runbooks"),
            integrations: pick(&cli.integrations, &config.integrations_dir, "integrations"),
        };
        let data_dir = cli
            .data_dir
            .clone()
            .or_else(|| config.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(".quench"));
        Ok(Env {
            config,
            folders,
            data_dir,
            json: cli.json,
            server: cli
                .server
                .clone()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }

    /// The approved-tools registry (config `approved_tools`, default
    /// ./approved-tools.yaml; none means every app is unknown).
    pub fn registry(&self) -> Result<crate::registry::Registry, Diagnostics> {
        let path = self
            .config
            .approved_tools
            .clone()
            .unwrap_or_else(|| "approved-tools.yaml".into());
        crate::registry::Registry::load(&path)
    }

    /// The API token's variable name (api_token_env, default
    /// QUENCH_API_TOKEN) and its value, if set.
    pub fn api_token(&self) -> (String, Option<String>) {
        let name = self
            .config
            .api_token_env
            .clone()
            .unwrap_or_else(|| "QUENCH_API_TOKEN".into());
        let value = std::env::var(&name).ok().filter(|t| !t.is_empty());
        (name, value)
    }

    /// What the CLI authenticates to a daemon with: the person's own
    /// QUENCH_TOKEN first, else the shared API token.
    pub fn cli_token(&self) -> Result<CliToken, String> {
        if let Some(t) = std::env::var("QUENCH_TOKEN").ok().filter(|t| !t.is_empty()) {
            return Ok(CliToken {
                value: t,
                source: "QUENCH_TOKEN".into(),
                personal: true,
            });
        }
        match self.api_token() {
            (name, Some(t)) => Ok(CliToken {
                value: t,
                source: name,
                personal: false,
            }),
            (name, None) => Err(format!(
                "set QUENCH_TOKEN to your token from `quench token new` (or {name} to the daemon's shared API token)"
            )),
        }
    }

    pub fn library(&self) -> Result<Library, Diagnostics> {
        Library::load(&self.folders)
    }

    /// Whether the config puts the store on PostgreSQL. There, the daemon
    /// is the one process that writes it, and the CLI goes through it.
    pub fn shared_store(&self) -> anyhow::Result<bool> {
        Ok(self
            .config
            .shared_store_url()
            .map_err(|e| anyhow::anyhow!(e))?
            .is_some())
    }

    /// The daemon on this machine: `listen` from the config.
    pub fn daemon_url(&self) -> String {
        format!(
            "http://{}",
            self.config.listen.as_deref().unwrap_or("127.0.0.1:8080")
        )
    }

    /// The store `serve` runs on: PostgreSQL when the config says so,
    /// else the data dir.
    pub async fn open_store(&self) -> anyhow::Result<crate::store::Store> {
        match self
            .config
            .shared_store_url()
            .map_err(|e| anyhow::anyhow!(e))?
        {
            Some(url) => Ok(crate::store::Store::open_shared(
                &url,
                Some(&self.data_dir.join("postgres-copy")),
            )
            .await?),
            None => Ok(crate::store::Store::open(&self.data_dir)?),
        }
    }
}

/// Prints diagnostics the way compilers do and returns exit code 1.
pub fn report_diagnostics(d: &Diagnostics) -> ExitCode {
    eprintln!("{d}");
    let n = d.0.len();
    eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
    ExitCode::from(1)
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env = Env::new(&cli)?;
    match cli.command {
        Command::Validate { paths } => validate::run(&env, &paths),
        Command::Drill(args) => match env.server.clone() {
            Some(_) if args.plan => {
                eprintln!("error: --plan runs here against the platforms; to plan on the daemon, POST /api/v1/plans or use `/quench plan` in Slack (unset QUENCH_SERVER or drop --server)");
                Ok(std::process::ExitCode::from(2))
            }
            Some(url) => drill::declare_remote(&env, args, &url, true).await,
            None if args.plan && env.shared_store()? => {
                eprintln!("error: with `store: {{backend: postgres}}` plans are kept by the daemon: POST /api/v1/plans or use `/quench plan` in Slack");
                Ok(std::process::ExitCode::from(2))
            }
            None if args.plan => drill::plan(&env, args).await,
            None if env.shared_store()? => {
                drill::declare_remote(&env, args, &env.daemon_url(), true).await
            }
            None => drill::run(&env, args, true).await,
        },
        Command::Declare(args) => match env.server.clone() {
            Some(url) => drill::declare_remote(&env, args, &url, false).await,
            None if args.plan => {
                eprintln!("error: a plan is a rehearsal, not an incident: run `quench drill RUNBOOK --plan`");
                Ok(std::process::ExitCode::from(2))
            }
            None if env.shared_store()? => {
                drill::declare_remote(&env, args, &env.daemon_url(), false).await
            }
            None => drill::run(&env, args, false).await,
        },
        Command::Serve { listen, .. } => serve::run(&env, listen).await,
        Command::Incidents => timeline::incidents(&env).await,
        Command::Status { id } => timeline::status(&env, &id).await,
        Command::Timeline { id, format } => timeline::timeline(&env, &id, format).await,
        Command::Kpis { since, format } => timeline::kpis(&env, since, format).await,
        Command::Audit {
            command: AuditCommand::Verify { id },
        } => timeline::audit_verify(&env, &id).await,
        Command::Store {
            command: StoreCommand::Migrate { from, to },
        } => store::migrate(&from, &to).await,
        Command::Token {
            command: TokenCommand::New { user, can, name },
        } => token::new(&env, &user, &can, name.as_deref()),
        Command::Integrations { check: None } => integrations::list(&env),
        Command::Integrations {
            check: Some(IntegrationsCommand::Check { simulated }),
        } => integrations::check(&env, simulated).await,
        Command::Inventory { simulated } => integrations::inventory(&env, simulated).await,
        Command::Approve {
            id,
            step,
            by,
            reject,
            note,
        } => {
            let d = if reject {
                crate::engine::Decision::Reject
            } else {
                crate::engine::Decision::Approve
            };
            people::resolve(&env, &id, &step, d, by, note).await
        }
        Command::Done { id, step, by, note } => {
            people::resolve(&env, &id, &step, crate::engine::Decision::Done, by, note).await
        }
        Command::Resume { id } => people::resume(&env, id).await,
        Command::Note {
            id,
            text,
            by,
            facts,
        } => people::note(&env, &id, &text, by, facts).await,
        Command::Notices {
            id,
            export,
            format,
            change,
        } => notices::run(&env, &id, export, format, change).await,
    }
}
