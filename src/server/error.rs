//! API errors as `{"error": {"code", "message"}}` with a 4xx/5xx status,
//! and a JSON body extractor whose rejections (too large, not JSON, wrong
//! shape) come back the same way.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::OpError;

pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
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

/// `Json<T>` whose rejections are API errors.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(r) => {
                let status = r.status();
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
                    r.body_text()
                };
                Err(ApiError::new(status, code, message))
            }
        }
    }
}
