//! `/metrics`: the daemon's counters and the store's gauges, as text.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::daemon::metrics::labels;
use crate::daemon::Daemon;

pub(super) async fn endpoint(State(d): State<Daemon>) -> impl IntoResponse {
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
