//! The pages for people: the index (incidents, KPIs over time) and one
//! incident's recovery review, which refreshes itself in place while the
//! incident runs. Rendering lives in `timeline::page`; these handlers only
//! read and answer.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::error::ApiError;
use super::{Daemon, OpError};
use crate::timeline::overview::Filter;
use crate::timeline::page::{self, PageMode};
use crate::timeline::review::EVENTS_SHOWN;

fn rendered(r: Result<String, handlebars::RenderError>) -> Result<String, ApiError> {
    r.map_err(|e| OpError::Internal(format!("rendering the page: {e}")).into())
}

pub(super) async fn index(
    State(d): State<Daemon>,
    Query(filter): Query<Filter>,
) -> Result<Html<String>, ApiError> {
    let overview = d.overview(&filter)?;
    Ok(Html(rendered(page::index(&overview))?))
}

pub(super) async fn incident(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let review = d.review(&id, EVENTS_SHOWN)?;
    let html = rendered(page::incident(&review, PageMode::LIVE))?;
    Ok(Html(html).into_response())
}

/// The same page as a file to pass on: no links back into the daemon.
pub(super) async fn standalone(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let review = d.review(&id, EVENTS_SHOWN)?;
    let html = rendered(page::incident(&review, PageMode::STANDALONE))?;
    Ok(download(
        "text/html; charset=utf-8",
        &format!("{id}-review.html"),
        html,
    ))
}

/// The postmortem draft, to edit and circulate.
pub(super) async fn postmortem(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let review = d.review(&id, usize::MAX)?;
    let md = crate::timeline::postmortem::render(&review)
        .map_err(|e| OpError::Internal(format!("rendering the postmortem: {e}")))?;
    Ok(download(
        "text/markdown; charset=utf-8",
        &format!("{id}-postmortem.md"),
        md,
    ))
}

fn download(ctype: &'static str, name: &str, body: String) -> Response {
    // Incident ids are [A-Z0-9-]; anything else is dropped from the name.
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    (
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A plan's report; refreshes itself while the plan runs.
pub(super) async fn plan(
    State(d): State<Daemon>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let report = d
        .store()
        .plan(&id)
        .map_err(OpError::from)?
        .ok_or_else(|| OpError::NotFound(format!("no plan {id}")))?;
    Ok(Html(crate::plan::report::render_html(&report)).into_response())
}
