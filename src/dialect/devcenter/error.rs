//! Azure.Core's error envelope, with the code also in `x-ms-error-code`.
//! The native `/v1` API speaks the same envelope and reuses this.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::wire;
use crate::auth::BEARER_CHALLENGE;
use crate::dialect::json;
use crate::error::CoreError;
use crate::http::LoggedError;

/// A core error rendered as an Azure.Core `ErrorResponse`.
#[derive(Debug)]
pub struct Error(pub CoreError);

impl From<CoreError> for Error {
    fn from(core: CoreError) -> Error {
        Error(core)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let core = self.0;
        let code = core.code();
        let body = wire::ErrorResponse {
            error: wire::Error {
                code: code.into(),
                message: core.public_message(),
                target: core.target().map(str::to_owned),
                details: None,
            },
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-ms-error-code", HeaderValue::from_static(code));
        match &core {
            CoreError::Unauthenticated { .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BEARER_CHALLENGE),
                );
            }
            CoreError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        let mut response = json(core.status(), headers, &body);
        LoggedError::attach(&mut response, core);
        response
    }
}
