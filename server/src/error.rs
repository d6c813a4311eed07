//! Every error a request or a frame can meet, and the one place where each is mapped to a
//! protocol code (`ErrorCode`) and so to an HTTP status or an `error` frame.

use app::protocol::ErrorCode;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

/// Errors of the hub, the store and the API, typed so callers can tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum LanternError {
    #[error("workflow {0} not found")]
    WorkflowNotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// An invariant of PROTOCOL.md §1 would break; nothing was appended.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    /// No credentials, or credentials that are wrong, expired or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials of the wrong kind for this endpoint (an agent token on a page).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("storage failed: {0}")]
    Storage(String),
    /// The store refused a batch because one of its retry keys is in the log already (nothing
    /// was appended). The hub answers with the logged `seq` instead, so this reaches no caller.
    #[error("an event with this id was appended already")]
    RetryKeyLogged,
    /// The store refused a batch because the log no longer ends where the caller checked it
    /// against (another node appended meanwhile); nothing was appended. The hub folds in the
    /// newer events and tries again, so this reaches no caller unless that keeps failing.
    #[error("the log moved on to seq {last_seq} while this append was checked")]
    LogMoved { last_seq: u64 },
}

impl LanternError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::WorkflowNotFound(_) => ErrorCode::NotFound,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Storage(_) => ErrorCode::Internal,
            Self::RetryKeyLogged => ErrorCode::Conflict,
            Self::LogMoved { .. } => ErrorCode::Internal,
        }
    }
}

/// The JSON body of an HTTP error: `{"error":{"code":"...","message":"..."}}`.
pub fn error_response(code: ErrorCode, message: impl Into<String>) -> Response {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

impl LanternError {
    /// Log what the caller is not told: the detail of a server-side failure.
    fn log_if_internal(&self) {
        if let Self::Storage(detail) = self {
            tracing::error!(%detail, "storage error");
        }
    }
}

impl IntoResponse for LanternError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        error_response(self.code(), self.to_string())
    }
}

/// A failure of the pages' server functions: the same code, so the same HTTP status, as the
/// API would answer with.
impl From<LanternError> for app::backend::BackendError {
    fn from(e: LanternError) -> Self {
        e.log_if_internal();
        Self {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

pub type Result<T, E = LanternError> = std::result::Result<T, E>;
