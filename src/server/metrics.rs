//! `/metrics`: the daemon's series with the store's gauges, read now.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::daemon::metrics::{Deadline, Gauges, Metrics};
use crate::daemon::Daemon;

pub(super) async fn endpoint(State(d): State<Daemon>) -> impl IntoResponse {
    let mut by_status: Vec<(&str, u64)> = ["running", "waiting", "completed", "failed"]
        .map(|s| (s, 0))
        .into();
    let now = d.engine().now();
    let mut deadlines = Vec::new();
    if let Ok(list) = d.store().incidents() {
        for i in list {
            if let Some(n) = by_status.iter_mut().find(|(s, _)| *s == i.status.name()) {
                n.1 += 1;
            }
            if i.status.is_open() {
                deadlines.extend(deadlines_of(&d, &i, now));
            }
        }
    }
    let text = d.metrics().render(&Gauges {
        incidents_by_status: &by_status,
        drivers: d.active_drivers() as u64,
        uptime_seconds: d.uptime().as_secs_f64(),
        leader: d.store().leads(),
        epoch: d.store().epoch().unwrap_or(0),
        deadlines: &deadlines,
    });
    ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], text)
}

/// The open incident's clocks that have a due time.
fn deadlines_of(
    d: &Daemon,
    inc: &crate::store::Incident,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Deadline> {
    let events = d.store().events(&inc.id).unwrap_or_default();
    crate::timeline::clocks::clocks_json(inc, &events, now)
        .into_iter()
        .filter_map(|c| {
            let due = c["due"]
                .as_str()?
                .parse::<chrono::DateTime<chrono::Utc>>()
                .ok()?;
            Some(Deadline {
                incident: inc.id.clone(),
                rule: c["rule"].as_str()?.to_string(),
                jurisdiction: c["jurisdiction"].as_str().unwrap_or_default().to_string(),
                status: c["status"].as_str().unwrap_or_default().to_string(),
                seconds_left: (due - now).num_milliseconds() as f64 / 1000.0,
            })
        })
        .collect()
}
