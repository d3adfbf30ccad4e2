//! Tokens on `/api/*` (bearer) and the pages (bearer, or the password of
//! HTTP basic auth, so a browser can open them): who is calling
//! (`access::Identity`, handed to the handlers as an extension) and whether
//! the token's scopes allow the request. Never logged.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::access::{Identity, Scope};
use super::error::ApiError;
use super::Daemon;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn basic_password(headers: &HeaderMap) -> Option<String> {
    let v = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

/// The scope a request needs: reads need `read`; each write its own.
fn needed(method: &axum::http::Method, path: &str) -> Scope {
    use axum::http::Method;
    if method == Method::GET || method == Method::HEAD {
        return Scope::Read;
    }
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "api", "v1", "incidents"] | ["", "api", "v1", "plans"] => Scope::Declare,
        ["", "api", "v1", "incidents", _, "notes"] => Scope::Note,
        ["", "api", "v1", "incidents", _, "approvals", _]
        | ["", "api", "v1", "incidents", _, "steps", _, "done"]
        | ["", "api", "v1", "incidents", _, "notices", ..] => Scope::Decide,
        _ => Scope::Admin,
    }
}

fn unauthorized(given: bool) -> Response {
    let msg = if given {
        "the bearer token is not one of this daemon's tokens (the API token, or one listed under `access:`)"
    } else {
        "this endpoint needs `Authorization: Bearer <token>`: a token from `quench token new` listed under `access:`, or the value of the daemon's api_token_env variable (default QUENCH_API_TOKEN)"
    };
    let mut resp = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"quench\""),
    );
    resp
}

pub(super) async fn require_api_token(
    State(d): State<Daemon>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(id) = bearer(req.headers()).and_then(|t| d.access().identify(t)) else {
        return unauthorized(bearer(req.headers()).is_some());
    };
    if let Err(why) = id.require(needed(req.method(), req.uri().path())) {
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden", why).into_response();
    }
    req.extensions_mut().insert(id);
    next.run(req).await
}

pub(super) async fn require_page_token(
    State(d): State<Daemon>,
    mut req: Request,
    next: Next,
) -> Response {
    let id: Option<Identity> = bearer(req.headers())
        .and_then(|t| d.access().identify(t))
        .or_else(|| basic_password(req.headers()).and_then(|p| d.access().identify(&p)));
    match id {
        Some(id) if id.may(Scope::Read) => {
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        Some(id) => (
            StatusCode::FORBIDDEN,
            format!("quench: the token of {} may not read; add `read` to its `can:` under `access:`\n", id.user),
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"quench\", charset=\"UTF-8\"",
            )],
            "quench: sign in with any user name and your token (or the API token) as the password\n",
        )
            .into_response(),
    }
}
