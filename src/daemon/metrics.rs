//! The daemon's series for `/metrics` (every name `quench_*`), exposed in
//! the Prometheus text format by `prometheus-client`: its own counters
//! (requests, events, Slack), gauges read at scrape time, and the
//! process-wide histograms of the work below it (`crate::telemetry`).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::TimelineEvent;

/// Label pairs in the order they are shown.
type Labels = Vec<(String, String)>;

/// What the daemon counts.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// `quench_http_requests_total{method, route, status}`
    HttpRequests,
    /// `quench_events_total{kind}`
    Events,
    /// `quench_slack_messages_total{outcome}`
    SlackMessages,
    /// `quench_slack_requests_total{endpoint, outcome}`
    SlackRequests,
}

/// The gauges, as read at scrape time.
pub struct Gauges<'a> {
    pub incidents_by_status: &'a [(&'a str, u64)],
    pub drivers: u64,
    pub uptime_seconds: f64,
    /// Whether this daemon writes the store (always, on the embedded one).
    pub leader: bool,
    /// The shared store's fencing epoch this daemon leads with (0: none).
    pub epoch: i64,
    /// Each regulatory clock of an open incident that has a due time.
    pub deadlines: &'a [Deadline],
}

/// One clock's time left (negative once overdue).
pub struct Deadline {
    pub incident: String,
    pub rule: String,
    pub jurisdiction: String,
    /// `running`, `paused`, `overdue`.
    pub status: String,
    pub seconds_left: f64,
}

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    http: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
    slack_messages: Family<Labels, Counter>,
    slack_requests: Family<Labels, Counter>,
    incidents: Family<Labels, Gauge>,
    drivers: Gauge,
    uptime: Gauge<f64, AtomicU64>,
    leader: Gauge,
    epoch: Gauge,
    deadlines: Family<Labels, Gauge<f64, AtomicU64>>,
    /// One scrape at a time: each sets the gauges it then encodes.
    scraping: std::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let inner = Inner {
            http: Family::default(),
            events: Family::default(),
            slack_messages: Family::default(),
            slack_requests: Family::default(),
            incidents: Family::default(),
            drivers: Gauge::default(),
            uptime: Gauge::default(),
            leader: Gauge::default(),
            epoch: Gauge::default(),
            deadlines: Family::default(),
            scraping: std::sync::Mutex::default(),
            registry: Registry::default(),
        };
        // Help texts without a final period: the encoder adds one.
        registry.register(
            "quench_http_requests",
            "HTTP requests served, by method, route and status",
            inner.http.clone(),
        );
        registry.register(
            "quench_events",
            "Timeline events recorded since start, by kind",
            inner.events.clone(),
        );
        registry.register(
            "quench_slack_messages",
            "Slack Web API posts, by outcome",
            inner.slack_messages.clone(),
        );
        registry.register(
            "quench_slack_requests",
            "Requests from Slack, by endpoint and outcome",
            inner.slack_requests.clone(),
        );
        registry.register(
            "quench_incidents",
            "Incidents in the store, by status",
            inner.incidents.clone(),
        );
        registry.register(
            "quench_incident_drivers",
            "Incidents being driven by this daemon now",
            inner.drivers.clone(),
        );
        registry.register(
            "quench_uptime_seconds",
            "Seconds since the daemon started",
            inner.uptime.clone(),
        );
        registry.register(
            "quench_leader",
            "1 while this daemon leads (writes the store and drives incidents), 0 while it is a standby",
            inner.leader.clone(),
        );
        registry.register(
            "quench_leader_epoch",
            "The shared store's fencing epoch this daemon leads with (0: it does not lead, or the store is embedded)",
            inner.epoch.clone(),
        );
        registry.register(
            "quench_deadline_seconds_left",
            "Time left on each regulatory clock of an open incident, by incident, rule, jurisdiction and status (negative once overdue)",
            inner.deadlines.clone(),
        );
        crate::telemetry::global().register(&mut registry);
        Metrics {
            inner: Arc::new(Inner { registry, ..inner }),
        }
    }
}

impl Metrics {
    pub fn inc(&self, what: Count, pairs: &[(&str, &str)]) {
        let family = match what {
            Count::HttpRequests => &self.inner.http,
            Count::Events => &self.inner.events,
            Count::SlackMessages => &self.inner.slack_messages,
            Count::SlackRequests => &self.inner.slack_requests,
        };
        let labels: Labels = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        family.get_or_create(&labels).inc();
    }

    /// Counts every event the engines announce.
    pub fn follow(&self, mut rx: tokio::sync::broadcast::Receiver<(String, TimelineEvent)>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok((_, ev)) => me.inc(Count::Events, &[("kind", &ev.kind)]),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics fell behind the event feed");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// The exposition, with the gauges set to `now`.
    pub fn render(&self, now: &Gauges) -> String {
        let i = &self.inner;
        let _one = i.scraping.lock().unwrap_or_else(|e| e.into_inner());
        for (status, n) in now.incidents_by_status {
            let labels = vec![("status".to_string(), status.to_string())];
            i.incidents.get_or_create(&labels).set(*n as i64);
        }
        i.drivers.set(now.drivers as i64);
        // Only the clocks that exist now: a closed incident's go away.
        i.deadlines.clear();
        for d in now.deadlines {
            let labels = vec![
                ("incident".to_string(), d.incident.clone()),
                ("rule".to_string(), d.rule.clone()),
                ("jurisdiction".to_string(), d.jurisdiction.clone()),
                ("status".to_string(), d.status.clone()),
            ];
            i.deadlines.get_or_create(&labels).set(d.seconds_left);
        }
        i.uptime.set(now.uptime_seconds);
        i.leader.set(i64::from(now.leader));
        i.epoch.set(now.epoch);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &i.registry);
        out
    }

    /// The `Content-Type` of what `render` returns.
    pub const CONTENT_TYPE: &'static str = prometheus_text::CONTENT_TYPE;
}
