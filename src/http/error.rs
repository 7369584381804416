//! The error every front-end (native API and the three dialects) shares.
//! The use-cases and `auth` return it; each front-end renders it in its own envelope
//! with its own codes, so the decision "which status" is made once, here.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::http::bounds::UNAVAILABLE_RETRY_AFTER;
use crate::model::TransitionError;
use crate::store::StoreError;

/// A failure to answer a request, independent of any wire format.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No such operation in the caller's reach (also: another scope's).
    #[error("Operation '{id}' was not found.")]
    NoSuchOperation {
        /// The id as the caller wrote it.
        id: String,
    },
    /// The operation existed in the caller's scope but its retention ended.
    #[error("Operation '{id}' has expired and is no longer available.")]
    OperationExpired {
        /// The id as the caller wrote it.
        id: String,
    },
    /// The request is malformed whatever the state.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code, e.g. `InvalidRequestContent`.
        code: &'static str,
        /// What is wrong.
        message: String,
        /// The parameter or field at fault.
        target: Option<String>,
    },
    /// The request conflicts with the operation's current state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code, e.g. `OperationTerminal`.
        code: &'static str,
        /// What conflicts, naming the current state.
        message: String,
    },
    /// `If-Match` named another version.
    #[error("{message}")]
    PreconditionFailed {
        /// Which version is current.
        message: String,
    },
    /// No credentials, or ones that identify nobody.
    #[error("{message}")]
    Unauthenticated {
        /// Why (missing header, unknown key, revoked key).
        message: String,
    },
    /// A known caller lacks the role for this call (never used for scope:
    /// another scope's operations are `NoSuchOperation`).
    #[error("{message}")]
    Forbidden {
        /// Which role is missing.
        message: String,
    },
    /// A resource the demo emulator serves does not exist (yet): the
    /// operation that makes it has not succeeded, or never ran.
    #[error("{message}")]
    NoSuchResource {
        /// The dialect's code, e.g. `PersonGroupNotFound`.
        code: &'static str,
        /// What was looked for.
        message: String,
    },
    /// No route matches the path (under a dialect's prefix).
    #[error("no resource exists at '{path}'")]
    NoSuchRoute {
        /// The request path.
        path: String,
    },
    /// The route exists but not with this method.
    #[error("the method {method} is not allowed on this resource")]
    MethodNotAllowed {
        /// The request method.
        method: String,
    },
    /// The request body is larger than the service accepts.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in full within the body deadline.
    #[error("the request body did not arrive within {timeout_secs} s")]
    BodyTimeout {
        /// The body deadline, counted from the end of the head.
        timeout_secs: u64,
    },
    /// The request head breaks HTTP's rules (a missing or repeated `Host`,
    /// a repeated credential header); answered before any routing.
    #[error("{0}")]
    BadHead(&'static str),
    /// The request head is larger than the service accepts.
    #[error("the request head is larger than {limit} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The caller went over a rate or stream limit; retry after this long.
    #[error("too many requests; retry after {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a retry can succeed.
        retry_after_secs: u64,
    },
    /// The disk under the store is full: writes are refused (507) until
    /// space returns, reads still work; the client should retry later.
    #[error("the service cannot store more data right now; retry later")]
    InsufficientStorage,
    /// Storage cannot take the request now; the client should retry.
    #[error("the service is temporarily unavailable: {0}")]
    Unavailable(String),
    /// A bug or broken dependency; logged, never shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl CoreError {
    /// The one place mapping failures to HTTP statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            CoreError::NoSuchOperation { .. } | CoreError::OperationExpired { .. } => StatusCode::NOT_FOUND,
            CoreError::NoSuchRoute { .. } | CoreError::NoSuchResource { .. } => StatusCode::NOT_FOUND,
            CoreError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            CoreError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            CoreError::Conflict { .. } => StatusCode::CONFLICT,
            CoreError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            CoreError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            CoreError::Forbidden { .. } => StatusCode::FORBIDDEN,
            CoreError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            CoreError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            CoreError::BadHead(_) => StatusCode::BAD_REQUEST,
            CoreError::HeadTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            CoreError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
            CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The Azure-style error code (`x-ms-error-code`, `error.code`).
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::NoSuchOperation { .. } => "OperationNotFound",
            CoreError::OperationExpired { .. } => "OperationExpired",
            CoreError::BadRequest { code, .. }
            | CoreError::Conflict { code, .. }
            | CoreError::NoSuchResource { code, .. } => code,
            CoreError::NoSuchRoute { .. } => "NotFound",
            CoreError::MethodNotAllowed { .. } => "MethodNotAllowed",
            CoreError::PreconditionFailed { .. } => "PreconditionFailed",
            CoreError::Unauthenticated { .. } => "Unauthorized",
            CoreError::Forbidden { .. } => "Forbidden",
            CoreError::PayloadTooLarge { .. } => "RequestBodyTooLarge",
            CoreError::BodyTimeout { .. } => "RequestTimeout",
            CoreError::BadHead(_) => "InvalidRequestHead",
            CoreError::HeadTooLarge { .. } => "RequestHeaderFieldsTooLarge",
            CoreError::TooManyRequests { .. } => "TooManyRequests",
            CoreError::Unavailable(_) => "ServiceUnavailable",
            CoreError::InsufficientStorage => "InsufficientStorage",
            CoreError::Internal(_) => "InternalServerError",
        }
    }

    /// What a client may be told: internals stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            CoreError::Internal(_) => {
                "An internal error occurred. Retry later; if it persists, report the x-ms-request-id.".into()
            }
            other => other.to_string(),
        }
    }

    /// The parameter or field at fault, if one is.
    pub fn target(&self) -> Option<&str> {
        match self {
            CoreError::BadRequest { target, .. } => target.as_deref(),
            _ => None,
        }
    }

    /// Shorthand for a 400 naming its parameter.
    pub fn bad_request(code: &'static str, target: &str, message: impl Into<String>) -> CoreError {
        CoreError::BadRequest { code, message: message.into(), target: Some(target.to_owned()) }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> CoreError {
        match e {
            StoreError::Unavailable(why) => CoreError::Unavailable(why),
            StoreError::Full => CoreError::InsufficientStorage,
            other => CoreError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<TransitionError> for CoreError {
    fn from(e: TransitionError) -> CoreError {
        let message = e.to_string();
        match e {
            TransitionError::AlreadyTerminal { .. } => CoreError::Conflict { code: "OperationTerminal", message },
            TransitionError::IllegalTransition { .. } => {
                CoreError::Conflict { code: "InvalidStateTransition", message }
            }
            TransitionError::ProgressDecreased { .. } => CoreError::Conflict { code: "ProgressDecreased", message },
            TransitionError::InvalidValue { field, .. } => {
                CoreError::BadRequest { code: "InvalidRequestContent", message, target: Some(field.to_owned()) }
            }
        }
    }
}

/// The full text of a server-side error, carried in response extensions
/// from the renderer to the logging middleware (never to the client).
#[derive(Clone, Debug)]
pub struct LoggedError(Arc<String>);

impl LoggedError {
    /// Attaches `core` to `response` when it is a server error.
    pub fn attach(response: &mut Response, core: CoreError) {
        if core.status().is_server_error() {
            response.extensions_mut().insert(LoggedError(Arc::new(format!("{core:#}"))));
        }
    }

    /// The error's full text.
    pub fn text(&self) -> &str {
        &self.0
    }
}

/// Headers every error envelope carries: `Retry-After` when the failure is
/// temporary (503, 429, or 507 while the disk is full), so clients back off
/// instead of giving up or hammering.
pub fn error_headers(core: &CoreError) -> HeaderMap {
    let mut headers = HeaderMap::new();
    match core {
        CoreError::Unavailable(_) | CoreError::InsufficientStorage => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(UNAVAILABLE_RETRY_AFTER));
        }
        CoreError::TooManyRequests { retry_after_secs } => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        _ => {}
    }
    headers
}
