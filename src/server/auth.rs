//! The API token: a bearer token on `/api/*`; the pages take it as a bearer
//! token or as the password of HTTP basic auth, so a browser can open them.
//! Compared in constant time; never logged.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::Daemon;

fn token_matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

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

pub async fn require_api_token(State(d): State<Daemon>, req: Request, next: Next) -> Response {
    match bearer(req.headers()) {
        Some(t) if token_matches(d.api_token(), t) => next.run(req).await,
        given => {
            let msg = if given.is_some() {
                "the bearer token is not this daemon's API token"
            } else {
                "this endpoint needs `Authorization: Bearer <token>`, the value of the daemon's api_token_env variable (default QUENCH_API_TOKEN)"
            };
            let mut resp =
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"quench\""),
            );
            resp
        }
    }
}

pub async fn require_page_token(State(d): State<Daemon>, req: Request, next: Next) -> Response {
    let ok = bearer(req.headers()).is_some_and(|t| token_matches(d.api_token(), t))
        || basic_password(req.headers()).is_some_and(|p| token_matches(d.api_token(), &p));
    if ok {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"quench\", charset=\"UTF-8\"",
        )],
        "quench: sign in with any user name and the API token as the password\n",
    )
        .into_response()
}
