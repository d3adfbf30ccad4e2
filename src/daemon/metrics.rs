//! The daemon's counters, rendered in the Prometheus text format (every
//! name `quench_*`) with gauges read from the store at scrape time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::store::TimelineEvent;

const HELP: &[(&str, &str, &str)] = &[
    (
        "quench_http_requests_total",
        "counter",
        "HTTP requests served, by method, route and status.",
    ),
    (
        "quench_events_total",
        "counter",
        "Timeline events recorded since start, by kind.",
    ),
    (
        "quench_slack_messages_total",
        "counter",
        "Slack Web API posts, by outcome.",
    ),
    (
        "quench_slack_requests_total",
        "counter",
        "Requests from Slack, by endpoint and outcome.",
    ),
    (
        "quench_incidents",
        "gauge",
        "Incidents in the store, by status.",
    ),
    (
        "quench_incident_drivers",
        "gauge",
        "Incidents being driven by this daemon now.",
    ),
    (
        "quench_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    ),
];

#[derive(Default, Clone)]
pub struct Metrics {
    counters: Arc<Mutex<BTreeMap<(String, String), u64>>>,
}

pub fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Metrics {
    pub fn inc(&self, name: &str, pairs: &[(&str, &str)]) {
        *self
            .counters
            .lock()
            .expect("metrics lock")
            .entry((name.to_string(), labels(pairs)))
            .or_default() += 1;
    }

    /// Counts every event the engines announce.
    pub fn follow(&self, mut rx: tokio::sync::broadcast::Receiver<(String, TimelineEvent)>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok((_, ev)) => me.inc("quench_events_total", &[("kind", &ev.kind)]),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "metrics fell behind the event feed");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    pub fn render(&self, gauges: &[(String, String, f64)]) -> String {
        let counters = self.counters.lock().expect("metrics lock").clone();
        let mut out = String::new();
        for (name, kind, help) in HELP {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for ((n, l), v) in counters.iter().filter(|((n, _), _)| n == name) {
                out.push_str(&format!("{n}{{{l}}} {v}\n"));
            }
            for (n, l, v) in gauges.iter().filter(|(n, _, _)| n == name) {
                if l.is_empty() {
                    out.push_str(&format!("{n} {v}\n"));
                } else {
                    out.push_str(&format!("{n}{{{l}}} {v}\n"));
                }
            }
        }
        out
    }
}
