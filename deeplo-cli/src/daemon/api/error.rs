//! The API's one error shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use deeplo_core::ErrorKind;

/// The stable error codes, each with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 401: no token, or one that does not authenticate.
    Unauthenticated,
    /// 403: authenticated, and the role is too low.
    Forbidden,
    /// 404: no such resource, or one of an organization the caller is not in.
    NotFound,
    /// 400: a malformed request.
    InvalidRequest,
    /// 503: the daemon is stopping or its queue is full.
    Unavailable,
    /// 500: anything else.
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::InvalidRequest => "invalid_request",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Forbidden => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answer.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(Code::NotFound, format!("{what} not found"))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        let mut response = (self.code.status(), Json(body)).into_response();
        if self.code == Code::Unauthenticated {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<crate::daemon::admin::ApiError> for Failure {
    fn from(err: crate::daemon::admin::ApiError) -> Self {
        let code = match err.status() {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidRequest,
            StatusCode::NOT_FOUND => Code::NotFound,
            StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
            _ => Code::Internal,
        };
        Self::new(code, err.message())
    }
}

impl From<deeplo_core::Error> for Failure {
    fn from(err: deeplo_core::Error) -> Self {
        let code = match err.kind() {
            ErrorKind::InvalidInput | ErrorKind::Config => Code::InvalidRequest,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::QueueFull | ErrorKind::ShuttingDown => Code::Unavailable,
            _ => Code::Internal,
        };
        Self::new(code, err.to_string())
    }
}
