//! The daemon (`quench serve`): the REST API, the timeline pages for
//! people, `/metrics`, `/healthz`, and the Slack endpoints, over one
//! [`Daemon`] that runs incidents and records what people decide.

mod api;
mod auth;
mod error;
mod headers;
mod metrics;
mod pages;

pub use crate::daemon::access;
use crate::daemon::{Daemon, DeclareRequest, OpError, PlanRequest};

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// Request bodies above this get 413 (DESIGN.md, "Daemon endpoints").
pub const MAX_BODY: usize = 1 << 20;

/// Every route the daemon serves; `adapters` are the channels' own
/// (Slack's `/slack/*`), behind the same limits, headers and metrics. An
/// adapter proves who sent a request its own way (Slack's signature), so
/// it refuses writes on a standby itself, after that proof
/// (`Daemon::standby_reason`).
pub fn router(daemon: Daemon, adapters: Router<Daemon>) -> Router {
    let api = Router::new()
        .route(
            "/api/v1/incidents",
            post(api::create_incident).get(api::list_incidents),
        )
        .route("/api/v1/incidents/{id}", get(api::get_incident))
        .route("/api/v1/kpis", get(api::kpis))
        .route("/api/v1/incidents/{id}/timeline", get(api::timeline))
        .route("/api/v1/incidents/{id}/audit", get(api::audit))
        .route(
            "/api/v1/incidents/{id}/approvals/{step}",
            post(api::approval),
        )
        .route("/api/v1/incidents/{id}/steps/{step}/done", post(api::done))
        .route("/api/v1/incidents/{id}/notes", post(api::note))
        .route("/api/v1/incidents/{id}/notices", get(api::notices))
        .route("/api/v1/plans", post(api::create_plan))
        .route("/api/v1/plans/{id}", get(api::get_plan))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route(
            "/api/v1/incidents/{id}/notices/{key}",
            post(api::edit_notice),
        )
        .route(
            "/api/v1/incidents/{id}/notices/{key}/sent",
            post(api::notice_sent),
        )
        // Layers run outside in: the token is checked before a standby
        // says who leads, so a caller without one learns nothing.
        .route_layer(middleware::from_fn_with_state(daemon.clone(), standby))
        .route_layer(middleware::from_fn_with_state(
            daemon.clone(),
            auth::require_api_token,
        ));
    let pages = Router::new()
        .route("/", get(pages::index))
        .route("/incidents/{id}", get(pages::incident))
        .route("/incidents/{id}/review.html", get(pages::standalone))
        .route("/incidents/{id}/postmortem.md", get(pages::postmortem))
        .route("/plans/{id}", get(pages::plan))
        .route_layer(middleware::from_fn_with_state(
            daemon.clone(),
            auth::require_page_token,
        ));
    let open = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(metrics::endpoint));
    Router::new()
        .merge(api)
        .merge(pages)
        .merge(open)
        .merge(adapters)
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(headers::security))
        .layer(middleware::from_fn_with_state(daemon.clone(), observe))
        .with_state(daemon)
}

/// A standby on a shared store serves reads (GETs: the API, pages,
/// /metrics, /healthz) and refuses every API write with 503 naming the
/// leader, after the token check and before any handler could touch its
/// copy of the store.
async fn standby(State(d): State<Daemon>, req: Request, next: Next) -> Response {
    let reads = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if reads {
        return next.run(req).await;
    }
    match d.standby_reason().await {
        None => next.run(req).await,
        Some(why) => {
            error::ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, "standby", why)
                .into_response()
        }
    }
}

/// Counts and logs every request. Only the path is logged: bodies and
/// headers carry tokens and customer data.
async fn observe(State(d): State<Daemon>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    d.metrics().inc(
        crate::daemon::metrics::Count::HttpRequests,
        &[
            ("method", method.as_str()),
            ("route", &route),
            ("status", &status.to_string()),
        ],
    );
    tracing::info!(
        method = %method,
        path = %path,
        status,
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

/// Serves until `shutdown` resolves, then stops the incident drivers and
/// flushes the store: what was running resumes at the next start.
pub async fn serve(
    daemon: Daemon,
    adapters: Router<Daemon>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(daemon.clone(), adapters);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    daemon.stop().await;
    served
}
