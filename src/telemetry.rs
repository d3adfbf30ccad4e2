//! What the work below the daemon measures, for `/metrics`: how long each
//! platform call took, why calls were retried, how long the rate limits
//! held calls back, how long steps ran, how long Slack took to answer a
//! post, and how long the store's flushes took and how many writes each
//! covered.
//!
//! These are process-wide, the way a Prometheus client's default registry
//! is: the executor, the engine and the store are shared by every daemon
//! in a process, and threading a handle through each of them would change
//! every constructor for no gain. The daemon's own counters (requests,
//! events, Slack) are per daemon (`daemon::metrics`); both are rendered
//! by one `prometheus-client` registry.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub integration: String,
    pub action: String,
    /// `2xx` .. `5xx`, or `timeout` / `error` when no status came back.
    pub status_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabels {
    pub integration: String,
    /// `rate_limited` (429), `server_error` (5xx), `no_response`
    /// (timeout, connection), or `status_NNN` for another retriable status.
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemLabels {
    pub integration: String,
    pub action: String,
    /// `succeeded`, `already_done`, `failed` or `skipped`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub integration: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub runbook: String,
    /// The step's phase (`contain`, `notify`, ...), or `none`.
    pub phase: String,
    /// How the step ended: `succeeded`, `failed`, `skipped`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SlackPostLabels {
    /// The Web API method (`chat.postMessage`, ...).
    pub method: String,
    pub outcome: String,
}

/// Builds each labelled histogram with its family's buckets.
#[derive(Clone)]
pub struct Buckets {
    start: f64,
    factor: f64,
    count: u16,
}

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(self.start, self.factor, self.count))
    }
}

/// 5 ms to about 10 s: platform calls, Slack posts.
const CALL: Buckets = Buckets {
    start: 0.005,
    factor: 2.0,
    count: 12,
};
/// 1 ms to about 30 s: time held back by a rate limit.
const WAIT: Buckets = Buckets {
    start: 0.001,
    factor: 2.0,
    count: 16,
};
/// 50 ms to about 2.5 hours: steps, waits for people included.
const STEP: Buckets = Buckets {
    start: 0.05,
    factor: 3.0,
    count: 12,
};

/// How a platform call ended, for its status class.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    TimedOut,
    NoAnswer,
}

pub struct Telemetry {
    pub calls: Family<CallLabels, Histogram, Buckets>,
    pub retries: Family<RetryLabels, Counter>,
    pub items: Family<ItemLabels, Counter>,
    pub rate_limit_waits: Family<IntegrationLabels, Histogram, Buckets>,
    pub steps: Family<StepLabels, Histogram, Buckets>,
    pub slack_posts: Family<SlackPostLabels, Histogram, Buckets>,
    pub flush_seconds: Histogram,
    pub flush_writes: Histogram,
}

static GLOBAL: LazyLock<Telemetry> = LazyLock::new(|| Telemetry {
    calls: Family::new_with_constructor(CALL),
    retries: Family::default(),
    items: Family::default(),
    rate_limit_waits: Family::new_with_constructor(WAIT),
    steps: Family::new_with_constructor(STEP),
    slack_posts: Family::new_with_constructor(CALL),
    // 100 µs to about 3 s.
    flush_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 15)),
    // 1 to 4096 writes made durable by one flush.
    flush_writes: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
});

pub fn global() -> &'static Telemetry {
    &GLOBAL
}

impl Telemetry {
    /// One HTTP exchange with a platform.
    pub fn call(&self, integration: &str, action: &str, answer: Answer, took: Duration) {
        let status_class = match answer {
            Answer::Status(s) => format!("{}xx", s / 100),
            Answer::TimedOut => "timeout".into(),
            Answer::NoAnswer => "error".into(),
        };
        self.calls
            .get_or_create(&CallLabels {
                integration: integration.into(),
                action: action.into(),
                status_class,
            })
            .observe(took.as_secs_f64());
    }

    /// An item's call that will be tried again, by why.
    pub fn retry(&self, integration: &str, status: Option<u16>) {
        let cause = match status {
            Some(429) => "rate_limited".to_string(),
            Some(s) if (500..600).contains(&s) => "server_error".to_string(),
            Some(s) => format!("status_{s}"),
            None => "no_response".to_string(),
        };
        self.retries
            .get_or_create(&RetryLabels {
                integration: integration.into(),
                cause,
            })
            .inc();
    }

    /// An item of an action step reached its outcome. A fan-out records
    /// no event per item that succeeds, so this is containment's progress
    /// as a rate.
    pub fn item(&self, integration: &str, action: &str, outcome: &str) {
        self.items
            .get_or_create(&ItemLabels {
                integration: integration.into(),
                action: action.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn rate_limit_wait(&self, integration: &str, waited: Duration) {
        self.rate_limit_waits
            .get_or_create(&IntegrationLabels {
                integration: integration.into(),
            })
            .observe(waited.as_secs_f64());
    }

    pub fn step(&self, runbook: &str, phase: Option<&str>, status: &str, took: Duration) {
        self.steps
            .get_or_create(&StepLabels {
                runbook: runbook.into(),
                phase: phase.unwrap_or("none").into(),
                status: status.into(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn slack_post(&self, method: &str, outcome: &str, took: Duration) {
        self.slack_posts
            .get_or_create(&SlackPostLabels {
                method: method.into(),
                outcome: outcome.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// One store flush, and how many writes it made durable.
    pub fn flush(&self, took: Duration, writes: u64) {
        self.flush_seconds.observe(took.as_secs_f64());
        self.flush_writes.observe(writes as f64);
    }

    /// Adds every series to `reg` (names as scraped: `quench_*`).
    pub fn register(&self, reg: &mut Registry) {
        reg.register(
            "quench_integration_call_seconds",
            "Platform calls (one HTTP exchange each, pages included), by integration, action and status class",
            self.calls.clone(),
        );
        reg.register(
            "quench_integration_retries",
            "Item calls tried again, by integration and cause",
            self.retries.clone(),
        );
        reg.register(
            "quench_items",
            "Items of action steps that reached their outcome, by integration, action and outcome",
            self.items.clone(),
        );
        reg.register(
            "quench_rate_limit_wait_seconds",
            "Time calls waited for an integration's rate limit",
            self.rate_limit_waits.clone(),
        );
        reg.register(
            "quench_step_seconds",
            "Steps from start to end, by runbook, phase and outcome",
            self.steps.clone(),
        );
        reg.register(
            "quench_slack_post_seconds",
            "Slack Web API posts, by method and outcome",
            self.slack_posts.clone(),
        );
        reg.register(
            "quench_store_flush_seconds",
            "Store flushes to disk",
            self.flush_seconds.clone(),
        );
        reg.register(
            "quench_store_flush_writes",
            "Writes made durable by one store flush (the group commit's batch)",
            self.flush_writes.clone(),
        );
    }
}
