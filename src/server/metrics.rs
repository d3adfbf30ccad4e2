//! `/metrics` in the Prometheus text format, every name `quench_*`.
//! Counters are kept here; gauges are read from the store at scrape time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::Daemon;
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

fn labels(pairs: &[(&str, &str)]) -> String {
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

    fn render(&self, gauges: &[(String, String, f64)]) -> String {
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

pub async fn endpoint(State(d): State<Daemon>) -> impl IntoResponse {
    let mut gauges = Vec::new();
    let mut by_status: BTreeMap<&str, u64> = ["running", "waiting", "completed", "failed"]
        .map(|s| (s, 0))
        .into();
    if let Ok(list) = d.store().incidents() {
        for i in list {
            *by_status.entry(i.status.name()).or_default() += 1;
        }
    }
    for (s, n) in by_status {
        gauges.push((
            "quench_incidents".into(),
            labels(&[("status", s)]),
            n as f64,
        ));
    }
    gauges.push((
        "quench_incident_drivers".into(),
        String::new(),
        d.active_drivers() as f64,
    ));
    gauges.push((
        "quench_uptime_seconds".into(),
        String::new(),
        d.uptime().as_secs_f64(),
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        d.metrics().render(&gauges),
    )
}
