//! The pages for people: the incident list and one incident's timeline
//! (steps, regulatory clocks with time left, every event). They refresh
//! themselves while the incident is open.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};

use super::error::ApiError;
use super::{Daemon, OpError};
use crate::timeline::html_escape;

pub async fn index(State(d): State<Daemon>) -> Result<Html<String>, ApiError> {
    let list = d.store().incidents().map_err(OpError::from)?;
    let mut rows = String::new();
    for i in list.iter().rev() {
        rows.push_str(&format!(
            "<tr><td><a href=\"/incidents/{id}\">{id}</a></td><td>{st}</td><td>{sev}</td><td>{title}</td><td>{at}</td><td>{drill}</td></tr>\n",
            id = html_escape(&i.id),
            st = i.status.name(),
            sev = html_escape(&i.severity),
            title = html_escape(&i.title),
            at = i.declared_at.to_rfc3339(),
            drill = if i.drill { "drill" } else { "" },
        ));
    }
    let kpis = crate::timeline::kpis::render_html_table(&d.kpis(None)?);
    Ok(Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\"><title>quench incidents</title>{style}</head>\
<body><h1>KPIs</h1>{kpis}<h1>Incidents</h1><table><thead><tr><th>Incident</th><th>Status</th><th>Severity</th><th>Runbook</th><th>Declared</th><th></th></tr></thead><tbody>\n{rows}</tbody></table></body></html>\n",
        style = crate::timeline::PAGE_STYLE,
    )))
}

pub async fn incident(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = d.store();
    let snap = store.snapshot(&id).map_err(OpError::from)?;
    let events = store.events(&id).map_err(OpError::from)?;
    let notices = crate::notices::lifecycle::latest(store.notices(&id).map_err(OpError::from)?);
    let page = crate::timeline::render_html_page(
        &snap,
        &events,
        &notices,
        d.engine().now(),
        snap.incident.status.is_open(),
    );
    Ok(Html(page).into_response())
}

/// A plan's report; refreshes itself while the plan runs.
pub async fn plan(State(d): State<Daemon>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let report = d
        .store()
        .plan(&id)
        .map_err(OpError::from)?
        .ok_or_else(|| OpError::NotFound(format!("no plan {id}")))?;
    Ok(Html(crate::plan::report::render_html(&report)).into_response())
}
