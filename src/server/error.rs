//! API errors as `{"error": {"code", "message"}}` with a 4xx/5xx status,
//! and a JSON body extractor whose rejections (too large, not JSON, wrong
//! shape) come back the same way.

use axum::body::{Body, Bytes};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OpError;

pub(super) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let (status, code) = match &e {
            OpError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            OpError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            OpError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            OpError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            OpError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            OpError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

/// `Json<T>` whose rejections are API errors, and which takes only a JSON
/// object: serde reads a JSON array into a struct field by field, so
/// `[true]` would otherwise be a declaration whose first field is `true`.
pub(super) struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|r| rejected(r.status(), r.body_text()))?;
        let is_object = bytes
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{');
        let req = Request::from_parts(parts, Body::from(bytes));
        if !is_object {
            // A wrong content type or broken JSON is told as such first.
            return match axum::Json::<serde::de::IgnoredAny>::from_request(req, state).await {
                Ok(_) => Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "bad_request",
                    "the body must be a JSON object; nothing was recorded",
                )),
                Err(r) => Err(rejected(r.status(), r.body_text())),
            };
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(rejected(r.status(), r.body_text())),
        }
    }
}

fn rejected(status: StatusCode, text: String) -> ApiError {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_request",
    };
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the request body is over {} bytes; nothing was recorded",
            super::MAX_BODY
        )
    } else {
        text
    };
    ApiError::new(status, code, message)
}

/// The longest request URI answered: longer ones get 414 here, in the
/// API's shape (hyper answers far longer ones itself, with no body).
pub(super) const MAX_URI: usize = 8 * 1024;

/// Errors that axum answers on its own (405, a path segment that does not
/// decode, a query that does not parse) come back in the API's shape too,
/// as does a URI over `MAX_URI`.
pub(super) async fn json_errors(req: Request, next: axum::middleware::Next) -> Response {
    let uri_len = req.uri().to_string().len();
    if uri_len > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is {uri_len} bytes; at most {MAX_URI}"),
        )
        .into_response();
    }
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(200).collect();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(axum::http::header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            (
                "method_not_allowed",
                format!("{method} is not allowed on {path}; allowed: {allowed}"),
            )
        }
        StatusCode::BAD_REQUEST => ("bad_request", text),
        StatusCode::NOT_FOUND => ("not_found", text),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", text),
        _ => ("error", text),
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    let mut out = ApiError::new(status, code, message).into_response();
    for (k, v) in parts.headers.iter() {
        out.headers_mut().entry(k).or_insert(v.clone());
    }
    out
}
